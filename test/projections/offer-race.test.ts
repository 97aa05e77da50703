/**
 * An accept racing its offer's timeout has exactly one winner: both commands are appended, the
 * projector applies them in log order, and the one applied second finds the offer settled — a
 * late accept is refused with 409 saying the contact is no longer offered, a late timer changes
 * nothing. Two clocks firing the same timers append each once.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { readEvents } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { fireTimers } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { sendAndSettle } from '../support/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

const TIMEOUT_MS = 30;
const TRIALS = 40;

describe('offers settled once', () => {
  const suite = suiteRedis();

  const send = (ws: string, ...commands: Command[]) => sendAndSettle(suite.redis, ws, ...commands);

  async function all(ws: string, type: string) {
    const out = [];
    let after: string | undefined;
    for (;;) {
      const page = await readEvents(suite.redis, ws, {
        limit: 1000,
        types: new Set([type]),
        ...(after ? { after } : {}),
      });
      out.push(...page.events);
      if (page.next === null || page.events.length === 0) return out;
      after = page.next;
    }
  }

  it(`an accept racing the timeout: one winner in each of ${TRIALS} races, the loser told why`, async () => {
    const ws = `race-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    await send(
      ws,
      {
        type: 'ChangeSettings',
        offerTimeoutMs: TIMEOUT_MS,
        wrapUpMs: 0,
        missedOfferPresence: 'available',
        maxWaitMs: null,
      },
      { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
    );
    const accepts = new Map<string, string>();
    let acceptWon = 0;
    let timerWon = 0;
    let trials = 0;
    // At least TRIALS races, and on until each side has won one (a loaded machine skews the odds).
    for (let i = 0; trials < TRIALS || ((acceptWon === 0 || timerWon === 0) && trials < 10 * TRIALS); i++) {
      trials++;
      const contactId = `c${i}`;
      await send(ws, { type: 'QueueContact', contactId, skills: ['A'], priority: 0 });
      // Both sides near the due time, in either order.
      await sleep(TIMEOUT_MS - 4 + (i % 9));
      const [accepted] = await Promise.all([
        sleep(i % 3).then(() =>
          appendCommand(suite.redis, {
            workspace: ws,
            command: { type: 'AcceptOffer', contactId, agentId: 'ana' },
          }),
        ),
        sleep((i + 1) % 3).then(() => fireTimers(suite.redis, ws)),
      ]);
      accepts.set(accepted.commandId, contactId);
      await projectPending(suite.redis, ws);
      // Whatever happened, the contact is settled before the next one: completed or taken back.
      const doc = JSON.parse((await suite.redis.hget(workspaceKeys(ws).contacts, contactId))!);
      if (doc.state === 'assigned') {
        acceptWon++;
        await send(ws, { type: 'CompleteContact', contactId });
      } else {
        timerWon++;
        await send(ws, { type: 'AbandonContact', contactId });
      }
    }
    const won = new Map<string, string[]>();
    for (const type of ['AssignmentAccepted', 'AssignmentExpired'])
      for (const e of await all(ws, type)) {
        const id = e.data.contactId as string;
        won.set(id, [...(won.get(id) ?? []), type]);
      }
    const rejected = (await all(ws, 'CommandRejected')).filter((e) =>
      accepts.has(e.data.commandId as string),
    );
    for (let i = 0; i < trials; i++) {
      const id = `c${i}`;
      const w = won.get(id) ?? [];
      expect(w, `one winner for ${id}`).toHaveLength(1);
      const loser = rejected.find((e) => accepts.get(e.data.commandId as string) === id);
      if (w[0] === 'AssignmentAccepted') expect(loser, `the accept of ${id} won`).toBeUndefined();
      else {
        expect(loser?.data, `the late accept of ${id}`).toMatchObject({
          status: 409,
          title: 'Contact is not offered',
        });
        expect(loser?.data.detail).toMatch(/is queued; only an offered contact can be accepted/);
      }
    }
    // Both sides won some races.
    expect(acceptWon).toBeGreaterThan(0);
    expect(timerWon).toBeGreaterThan(0);
    const audit = await auditWorkspace(suite.redis, ws);
    expect(audit.violations).toEqual([]);
  }, 60_000);

  it('two clocks racing append each timer once', async () => {
    const ws = `clocks-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    const agents = Array.from({ length: 30 }, (_, i) => `a${i}`);
    await send(
      ws,
      {
        type: 'ChangeSettings',
        offerTimeoutMs: 20,
        wrapUpMs: 0,
        missedOfferPresence: 'away',
        maxWaitMs: null,
      },
      ...agents.map((agentId): Command => ({ type: 'RegisterAgent', agentId, skills: ['A'], capacity: 1 })),
      ...agents.map((agentId): Command => ({ type: 'ChangeAgentState', agentId, state: 'available' })),
      ...agents.map(
        (_, i): Command => ({ type: 'QueueContact', contactId: `c${i}`, skills: ['A'], priority: 0 }),
      ),
    );
    const other = suite.server.client();
    try {
      const deadline = Date.now() + 200;
      const clock = async (r: typeof suite.redis) => {
        while (Date.now() < deadline) await fireTimers(r, ws);
      };
      await Promise.all([clock(suite.redis), clock(other)]);
    } finally {
      other.disconnect();
    }
    await projectPending(suite.redis, ws);
    const cmds = (await suite.redis.xrange(workspaceKeys(ws).commands, '-', '+')) as [string, string[]][];
    const timerIds = cmds
      .map(([, f]) => f[f.indexOf('commandId') + 1]!)
      .filter((id) => id.startsWith('timer:'));
    expect(timerIds).toHaveLength(30);
    expect(new Set(timerIds).size).toBe(30);
    expect(await all(ws, 'AssignmentExpired')).toHaveLength(30);
    expect((await auditWorkspace(suite.redis, ws)).violations).toEqual([]);
  }, 60_000);
});
