/**
 * Least-occupied pools order agents by their share of capacity in use, written into each pool
 * member's key. A share is at most 1 while capacity holds what an agent has in hand, but lowering
 * an agent's capacity below its contacts (or moving it to another channel) leaves it over 1, up to
 * 1,600 (16 channels of 100 contacts on a capacity of 1). Such an agent, with room on another
 * channel, must still sort after every agent with a lower share, as rule 1 has it
 * (`occupancy` in src/domain/routing.ts), and the auditor must find every decision rule 1's.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup } from '../../src/projections/projector.ts';
import { appendAt, assignedPairs, plainSettings } from '../support/positions.ts';
import { suiteRedis } from '../support/redis.ts';

describe('least-occupied: an agent holding more than its capacity', () => {
  const suite = suiteRedis();
  let n = 0;

  /** A fresh workspace whose commands go one millisecond apart, each batch then projected. */
  async function workspace(): Promise<{ ws: string; at: (list: Command[]) => Promise<void> }> {
    const ws = `occupancy-keys-${++n}-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    let t = Date.now() - 600_000;
    const at = (list: Command[]) =>
      appendAt(
        suite.redis,
        ws,
        list.map((c) => [`${++t}-0`, c] as const),
      );
    return { ws, at };
  }
  const queue = (id: string, channel: string) =>
    ({ type: 'QueueContact', contactId: id, skills: ['s'], priority: 0, channel }) as Command;

  // X ends with a share of `x` (its contacts over a capacity of 1), Y with a share of `y`.
  const cases = [
    [10, 1],
    [10, 2],
    [15, 9],
    [40, 3],
  ] as const;
  for (const [x, y] of cases) {
    it(`a share of ${x} sorts after a share of ${y}`, async () => {
      const { ws, at } = await workspace();
      const agent = (id: string, capacity: number | Record<string, number>): Command =>
        ({ type: 'RegisterAgent', agentId: id, skills: ['s'], capacity }) as Command;
      const available = (id: string): Command =>
        ({ type: 'ChangeAgentState', agentId: id, state: 'available' }) as Command;
      await at([
        plainSettings({ channels: ['chat', 'voice'], agentSelection: 'least-occupied' }),
        agent('X', x),
        agent('Y', y),
        available('X'),
        ...Array.from({ length: x }, (_, i) => queue(`x${i}`, 'chat')),
      ]);
      expect(await dispatchPending(suite.redis, ws)).toBe(x);
      await at([available('Y'), ...Array.from({ length: y }, (_, i) => queue(`y${i}`, 'chat'))]);
      expect(await dispatchPending(suite.redis, ws)).toBe(y);
      // Both keep their contacts and get room on voice only: X's share is `x`, Y's `y`.
      await at([
        { type: 'UpdateAgent', agentId: 'X', capacity: { voice: 1 } } as Command,
        { type: 'UpdateAgent', agentId: 'Y', capacity: { voice: 1 } } as Command,
        queue('v', 'voice'),
      ]);
      expect(await dispatchPending(suite.redis, ws)).toBe(1);
      expect(await assignedPairs(suite.redis, ws)).toContain('v->Y');
      expect((await auditWorkspace(suite.redis, ws, { idle: true })).violations).toEqual([]);
    });
  }

  // The share leads the pool key, and the dispatcher reads the agent back from the pool heads.
  for (const skills of [['s'], ['s', 't']])
    it(`an agent with a share of 10 is found when it is the only one eligible (${skills.join(', ')})`, async () => {
      const { ws, at } = await workspace();
      const queueOf = (id: string, channel: string) =>
        ({ type: 'QueueContact', contactId: id, skills, priority: 0, channel }) as Command;
      await at([
        plainSettings({ channels: ['chat', 'voice'], agentSelection: 'least-occupied' }),
        { type: 'RegisterAgent', agentId: 'X', skills, capacity: 10 } as Command,
        { type: 'ChangeAgentState', agentId: 'X', state: 'available' } as Command,
        ...Array.from({ length: 10 }, (_, i) => queueOf(`x${i}`, 'chat')),
      ]);
      expect(await dispatchPending(suite.redis, ws)).toBe(10);
      await at([
        { type: 'UpdateAgent', agentId: 'X', capacity: { voice: 1 } } as Command,
        queueOf('v', 'voice'),
      ]);
      expect(await dispatchPending(suite.redis, ws)).toBe(1);
      expect(await assignedPairs(suite.redis, ws)).toContain('v->X');
      expect((await auditWorkspace(suite.redis, ws, { idle: true })).violations).toEqual([]);
    });

  it('a member written before wide shares had their own form leaves its pool when the share changes', async () => {
    const { ws, at } = await workspace();
    const k = workspaceKeys(ws);
    await at([
      plainSettings({ channels: ['chat', 'voice'], agentSelection: 'least-occupied' }),
      { type: 'RegisterAgent', agentId: 'X', skills: ['s'], capacity: 10 } as Command,
      { type: 'ChangeAgentState', agentId: 'X', state: 'available' } as Command,
      ...Array.from({ length: 10 }, (_, i) => queue(`x${i}`, 'chat')),
    ]);
    expect(await dispatchPending(suite.redis, ws)).toBe(10);
    await at([{ type: 'UpdateAgent', agentId: 'X', capacity: { voice: 1 } } as Command]);
    // X (a share of 10) as an earlier version wrote it: 9 digits, in its pool and the pool heads.
    const legacy = (m: string) => m.replace(':000100000000', '100000000');
    for (const key of [k.pools, k.poolHeads]) {
      const members = await suite.redis.zrange(key, 0, -1);
      expect(members.some((m) => m.includes(':000100000000'))).toBe(true);
      for (const m of members) {
        await suite.redis.zrem(key, m);
        await suite.redis.zadd(key, 0, legacy(m));
      }
    }
    // A contact of X's completes: its share goes to 9 and it moves within its pool.
    await at([{ type: 'CompleteContact', contactId: 'x0' } as Command]);
    const members = await suite.redis.zrange(k.pools, 0, -1);
    expect(members.filter((m) => m.endsWith('|X'))).toEqual([
      expect.stringMatching(/^[^|]+\|90000000\d{15}\|X$/),
    ]);
    expect((await auditWorkspace(suite.redis, ws, { idle: true })).violations).toEqual([]);
  });
});
