/**
 * The routing policy, as the auditor holds decisions to it: in a real log (commands appended,
 * projected, decisions by the real dispatcher), an AssignmentMade written as a router ignoring the
 * policy would have made it (XADD, based on the projector's checkpoint) is reported as a `decision`
 * violation naming the pair the policy gives:
 * - `most-skilled`: the contact given to a less skilled agent while a more skilled one is available;
 * - `least-occupied`: given to a busier agent while an idler one is available;
 * - priority aging: a later contact of higher priority decided while one whose aged key is earlier
 *   waits;
 * - preferred agents: given to another agent while the preference lasts and a preferred agent is
 *   available (also an impossible `assignment`).
 * In each case the forged pair is the one rule 1 gives without the policy (longest available, strict
 * priority, no preference), so an auditor that ignored the policy would find nothing to report; and
 * the log before the forgery audits clean.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { forgeAssignment } from '../support/tamper.ts';
import { sleep } from '../support/wait.ts';

const settings = (more: Partial<Extract<Command, { type: 'ChangeSettings' }>>): Command => ({
  type: 'ChangeSettings',
  offerTimeoutMs: 0,
  wrapUpMs: 0,
  missedOfferPresence: 'away',
  maxWaitMs: null,
  ...more,
});
const available = (agentId: string): Command => ({ type: 'ChangeAgentState', agentId, state: 'available' });

describe('the auditor holds decisions to the routing policy', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  let n = 0;

  async function workspace(): Promise<string> {
    const ws = `policy-tamper-${run}-${++n}`;
    await ensureGroup(suite.redis, ws);
    return ws;
  }

  /** Appends and projects the commands (no dispatch unless asked). */
  async function send(ws: string, ...commands: Command[]): Promise<void> {
    for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws);
  }

  const forge = (ws: string, contactId: string, agentId: string) =>
    forgeAssignment(suite.redis, ws, contactId, agentId);

  /** The audit's violations as "kind message", the documents left out (Redis never made the forgery). */
  async function violations(ws: string): Promise<{ kind: string; position: string; message: string }[]> {
    const report = await auditWorkspace(suite.redis, ws, { compareState: false });
    return report.violations.map(({ kind, position, message }) => ({ kind, position, message }));
  }

  it('most-skilled: a less skilled agent chosen while a more skilled one was available', async () => {
    const ws = await workspace();
    await send(
      ws,
      settings({ agentSelection: 'most-skilled' }),
      // junior holds Billing at level 1 and is available longest; senior holds it at level 4.
      { type: 'RegisterAgent', agentId: 'junior', skills: ['Billing'], capacity: 1 },
      {
        type: 'RegisterAgent',
        agentId: 'senior',
        skills: ['Billing', 'Billing#2', 'Billing#3', 'Billing#4'],
        capacity: 1,
      },
      available('junior'),
    );
    await sleep(5);
    await send(ws, available('senior'), {
      type: 'QueueContact',
      contactId: 'c1',
      skills: ['Billing'],
      priority: 0,
    });
    expect(await violations(ws)).toEqual([]);

    const position = await forge(ws, 'c1', 'junior');
    expect(await violations(ws)).toEqual([
      {
        kind: 'decision',
        position,
        message: expect.stringMatching(/AssignmentMade c1->junior based on .*: rule 1 gives c1->senior$/),
      },
    ]);
  });

  it('least-occupied: a busier agent chosen while a less occupied one was available', async () => {
    const ws = await workspace();
    await send(
      ws,
      settings({ agentSelection: 'least-occupied' }),
      { type: 'RegisterAgent', agentId: 'first', skills: ['Chat'], capacity: 3 },
      { type: 'RegisterAgent', agentId: 'second', skills: ['Chat'], capacity: 3 },
      available('first'),
    );
    await sleep(5);
    await send(ws, available('second'), {
      type: 'QueueContact',
      contactId: 'c1',
      skills: ['Chat'],
      priority: 0,
    });
    // Both idle: the longest available (first) takes c1, and holds 1 of 3 from then on.
    expect(await dispatchPending(suite.redis, ws)).toBe(1);
    const c1 = JSON.parse((await suite.redis.hget(workspaceKeys(ws).contacts, 'c1'))!) as { agentId: string };
    expect(c1.agentId).toBe('first');
    await send(ws, { type: 'QueueContact', contactId: 'c2', skills: ['Chat'], priority: 0 });
    expect(await violations(ws)).toEqual([]);

    // first is still available longest (it kept its place), but second holds nothing.
    const position = await forge(ws, 'c2', 'first');
    expect(await violations(ws)).toEqual([
      {
        kind: 'decision',
        position,
        message: expect.stringMatching(/AssignmentMade c2->first based on .*: rule 1 gives c2->second$/),
      },
    ]);
  });

  it('priority aging: a contact decided before one whose aged key is earlier', async () => {
    const ws = await workspace();
    // One priority point is worth 1 ms of waiting: a priority-0 contact that waited 30 ms is ahead.
    await send(
      ws,
      settings({ priorityWeightMs: 1 }),
      { type: 'RegisterAgent', agentId: 'a1', skills: ['Sales'], capacity: 1 },
      { type: 'QueueContact', contactId: 'early', skills: ['Sales'], priority: 0 },
    );
    await sleep(30);
    await send(
      ws,
      { type: 'QueueContact', contactId: 'urgent', skills: ['Sales'], priority: 1 },
      available('a1'),
    );
    expect(await violations(ws)).toEqual([]);

    // Strict priority would give urgent first.
    const position = await forge(ws, 'urgent', 'a1');
    expect(await violations(ws)).toEqual([
      {
        kind: 'decision',
        position,
        message: expect.stringMatching(/AssignmentMade urgent->a1 based on .*: rule 1 gives early->a1$/),
      },
    ]);
  });

  it('preferred agents: another agent chosen while the preference lasts and a preferred one was available', async () => {
    const ws = await workspace();
    await send(
      ws,
      { type: 'RegisterAgent', agentId: 'anyone', skills: ['Support'], capacity: 1 },
      { type: 'RegisterAgent', agentId: 'usual', skills: ['Support'], capacity: 1 },
      available('anyone'),
    );
    await sleep(5);
    await send(ws, available('usual'), {
      type: 'QueueContact',
      contactId: 'back',
      skills: ['Support'],
      priority: 0,
      preferredAgents: ['usual'],
      preferredForMs: 600_000,
    });
    expect(await violations(ws)).toEqual([]);

    // anyone is available longest: without the preference it would take the contact.
    const position = await forge(ws, 'back', 'anyone');
    expect(await violations(ws)).toEqual([
      {
        kind: 'decision',
        position,
        message: expect.stringMatching(/AssignmentMade back->anyone based on .*: rule 1 gives back->usual$/),
      },
      {
        kind: 'assignment',
        position,
        message: expect.stringMatching(/back->anyone: the contact waits for its preferred agents \(usual\)/),
      },
    ]);
  });
});
