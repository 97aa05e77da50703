/**
 * A command entry the projector cannot apply (an unknown type, a body of the wrong shape, text
 * that is not JSON) becomes one CommandRejected with nothing else written, and the stream goes
 * on: the commands after it apply, the checkpoint moves past it, and a second run repeats nothing.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { readEvents } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { appliedPosition } from '../../src/adapters/redis/projection-reads.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

describe('the projector never stops on one entry', () => {
  const suite = suiteRedis();

  /** Every key of the workspace but the streams, as text, to see that nothing else was written. */
  async function state(ws: string): Promise<Record<string, unknown>> {
    const k = workspaceKeys(ws);
    return {
      agents: await suite.redis.hgetall(k.agents),
      contacts: await suite.redis.hgetall(k.contacts),
      pools: await suite.redis.zrange(k.pools, 0, -1),
      heads: await suite.redis.zrange(k.poolHeads, 0, -1),
      sets: await suite.redis.hgetall(k.agentSkillSets),
      queues: await suite.redis.zrange(k.skillSetQueues, 0, -1),
      candidates: await suite.redis.zrange(k.candidates, 0, -1),
      stats: await suite.redis.hgetall(k.stats),
    };
  }

  it('rejects malformed entries alone and applies what follows', async () => {
    const ws = `malformed-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    await appendCommand(suite.redis, {
      workspace: ws,
      command: { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 1 },
    });
    await projectPending(suite.redis, ws);
    const before = await state(ws);

    const bad: [string, string][] = [
      ['RegisterAgent', JSON.stringify({ agentId: 5, skills: 'A', capacity: 1 })],
      ['RegisterAgent', JSON.stringify({ agentId: 'bob', skills: ['B', 'A'], capacity: 1 })],
      ['QueueContact', JSON.stringify({ contactId: 'c1', skills: ['A'], priority: 'high' })],
      ['ChangeAgentState', JSON.stringify({ agentId: 'ana', state: 'asleep' })],
      ['UpdateAgent', JSON.stringify({ agentId: 'ana', skills: [] })],
      ['CompleteContact', '{not json'],
      ['Teleport', JSON.stringify({ agentId: 'ana' })],
    ];
    for (const [type, command] of bad)
      await suite.redis.xadd(k.commands, '*', 'type', type, 'commandId', `bad-${type}`, 'command', command);
    await projectPending(suite.redis, ws);
    expect(await state(ws), 'nothing but the rejections was written').toEqual(before);

    const good = await appendCommand(suite.redis, {
      workspace: ws,
      command: { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
    });
    await projectPending(suite.redis, ws);
    await projectPending(suite.redis, ws);
    expect(await appliedPosition(suite.redis, ws)).toBe(good.position);

    const events = (await readEvents(suite.redis, ws, { limit: 100 })).events;
    const rejected = events.filter((e) => e.type === 'CommandRejected');
    expect(rejected.map((e) => [e.data.command, e.data.status])).toEqual(bad.map(([type]) => [type, 422]));
    expect(rejected.slice(0, 6).every((e) => String(e.data.title) === 'Malformed command')).toBe(true);
    expect(rejected[6]?.data.title).toBe('Unknown command');
    expect(events.filter((e) => e.type === 'AgentStateChanged')).toHaveLength(1);
    expect(await suite.redis.xlen(k.outcomes)).toBe(1 + bad.length + 1);

    await appendCommand(suite.redis, {
      workspace: ws,
      command: { type: 'QueueContact', contactId: 'c2', skills: ['A'], priority: 0 },
    });
    await projectPending(suite.redis, ws);
    expect(await dispatchPending(suite.redis, ws)).toBe(1);
  });
});
