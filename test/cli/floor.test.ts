/**
 * The floor workload's Lua step (src/cli/bench/lua/floor-any.lua) on its own: it takes the
 * availability set of each of a contact's two skills from the keys it is given (looked up by the
 * skills in ARGV), assigns the agent with the lowest score in both, records it and appends one
 * stream entry, and puts the agent back in both sets at once.
 */
import { describe, expect, it } from 'vitest';
import { KEY_ROOT } from '../../src/adapters/redis/keys.ts';
import { runLua } from '../../src/adapters/redis/scripts.ts';
import { FLOOR } from '../../src/cli/bench/floor.ts';
import { startTestRedis } from '../support/redis.ts';

describe('the floor step', () => {
  it('assigns the lowest-scored agent holding both skills, records it and makes the agent available again', async () => {
    const server = await startTestRedis();
    const redis = server.client();
    try {
      const tag = `${KEY_ROOT}:{floor-test-${Date.now()}}`;
      const [queue, assignments, stream] = [`${tag}:queue`, `${tag}:assignments`, `${tag}:events`];
      const skills = ['A', 'B', 'C'];
      const avail = skills.map((s) => `${tag}:avail:${s}`);
      const keys = [queue, assignments, stream, ...avail];
      await redis.zadd(avail[0]!, 5, 'a1', 1, 'a2', 3, 'a3');
      await redis.zadd(avail[1]!, 1, 'a1', 2, 'a3');
      await redis.zadd(queue, 1, 'c1|A|B', 2, 'c2|A|C', 3, 'c3|A|Z');
      const before = Date.now();

      // a1 and a3 hold A and B (a2 only A); ZINTER ... AGGREGATE MIN scores them 1 and 2.
      expect(await runLua(redis, FLOOR, keys, skills)).toBe(1);
      expect(await redis.hget(assignments, 'c1')).toBe('a1');
      const entries = (await redis.xrange(stream, '-', '+')) as [string, string[]][];
      expect(entries.map(([, fields]) => fields)).toEqual([['contact', 'c1', 'agent', 'a1']]);
      for (const key of avail.slice(0, 2))
        expect(Number(await redis.zscore(key, 'a1'))).toBeGreaterThanOrEqual(before);

      // Nobody holds C: the contact is popped and nothing else changes.
      expect(await runLua(redis, FLOOR, keys, skills)).toBe(0);
      expect(await redis.hlen(assignments)).toBe(1);
      expect(await redis.xlen(stream)).toBe(1);

      // A skill with no declared availability set is an error, not a key built inside the script.
      await expect(runLua(redis, FLOOR, keys, skills)).rejects.toThrow(/no availability set declared/);
      expect(await runLua(redis, FLOOR, keys, skills)).toBe(-1);
      await redis.unlink(...keys);
    } finally {
      redis.disconnect();
      await server.stop();
    }
  });
});
