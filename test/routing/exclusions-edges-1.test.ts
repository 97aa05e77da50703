/**
 * A contact remembers the last 100 agents who turned it down (MAX_EXCLUDED_AGENTS). Before, it
 * kept every one: a contact bounced between many agents (offers missed by agents left available,
 * rejected by an agent application gone wrong) made each decision for it read one pool member per
 * agent who ever turned it down, and each rejection rewrite the whole list, up to every agent of
 * the workspace. Now the 101st agent to turn it down pushes the first out: that one may be offered
 * it again (by rule 1, when it is the longest available), the others still not; the model decides the same,
 * so the audit of the whole log is clean; and a document written with a longer list (before the
 * bound) is read by its last 100.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { defaultDispatcherOptions, dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { MAX_EXCLUDED_AGENTS } from '../../src/domain/model.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

describe('the agents a contact remembers as having turned it down', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);

  async function apply(ws: string, commands: readonly Command[]): Promise<void> {
    await Promise.all(commands.map((command) => appendCommand(suite.redis, { workspace: ws, command })));
    await projectPending(suite.redis, ws, [], defaultProjectorOptions);
  }

  async function contact(ws: string, id: string): Promise<{ agentId?: string; excludedAgents?: string[] }> {
    return JSON.parse((await suite.redis.hget(workspaceKeys(ws).contacts, id)) ?? '{}');
  }

  /** n agents with skill s, available in order e1..en, offers held for a minute. */
  async function setUp(ws: string, n: number): Promise<string[]> {
    await ensureGroup(suite.redis, ws);
    const agents = Array.from({ length: n }, (_, i) => `e${String(i + 1).padStart(3, '0')}`);
    await apply(ws, [
      {
        type: 'ChangeSettings',
        offerTimeoutMs: 60_000,
        wrapUpMs: 0,
        missedOfferPresence: 'available',
        maxWaitMs: null,
        channels: ['voice'],
      },
      ...agents.map((id): Command => ({ type: 'RegisterAgent', agentId: id, skills: ['s'], capacity: 1 })),
    ]);
    // Available one at a time, so e001 has been available longest.
    for (const id of agents) await apply(ws, [{ type: 'ChangeAgentState', agentId: id, state: 'available' }]);
    await apply(ws, [{ type: 'QueueContact', contactId: 'r1', skills: ['s'], priority: 0 }]);
    return agents;
  }

  /** The contact offered to the next agent, who rejects it; the agent it was offered to. */
  async function offerAndReject(ws: string): Promise<string | undefined> {
    expect(await dispatchPending(suite.redis, ws, defaultDispatcherOptions)).toBe(1);
    const agentId = (await contact(ws, 'r1')).agentId;
    await apply(ws, [{ type: 'RejectOffer', contactId: 'r1', agentId: String(agentId) }]);
    return agentId;
  }

  it('offers the contact again to the agent the 101st rejection pushed out, and to no other', async () => {
    const ws = `excl-${run}`;
    const agents = await setUp(ws, MAX_EXCLUDED_AGENTS + 1);
    const offered: (string | undefined)[] = [];
    for (let i = 0; i < MAX_EXCLUDED_AGENTS + 1; i++) offered.push(await offerAndReject(ws));
    // Longest available first, each agent who turned it down available again behind the others
    // (ROUTING.md: able again, a new since).
    expect(offered).toEqual(agents);
    const doc = await contact(ws, 'r1');
    expect(doc.excludedAgents).toEqual(agents.slice(1));
    // Every agent has turned it down; e001 is no longer remembered: it is offered the contact again.
    expect(await dispatchPending(suite.redis, ws, defaultDispatcherOptions)).toBe(1);
    expect((await contact(ws, 'r1')).agentId).toBe(agents[0]);
    const audit = await auditWorkspace(suite.redis, ws, { idle: true });
    expect(audit.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
  }, 60_000);

  it('reads a document written with a longer list by its last 100', async () => {
    const ws = `excl-old-${run}`;
    const agents = await setUp(ws, 4);
    // Turned down once, as the workspace counts it; then its list as a document written before the
    // bound holds it: e001..e003 first, then 150 agents gone since, so only those are among its
    // last 100. Read whole, e004 would be the only agent left for it.
    expect(await offerAndReject(ws)).toBe(agents[0]);
    const k = workspaceKeys(ws);
    const doc = JSON.parse((await suite.redis.hget(k.contacts, 'r1'))!);
    const gone = Array.from({ length: 150 }, (_, i) => `gone${i}`);
    doc.excludedAgents = [...agents.slice(0, 3), ...gone];
    await suite.redis.hset(k.contacts, 'r1', JSON.stringify(doc));
    // e001 is available again behind the others: e002 is the longest available now.
    expect(await dispatchPending(suite.redis, ws, defaultDispatcherOptions)).toBe(1);
    expect((await contact(ws, 'r1')).agentId).toBe(agents[1]);
  });
});
