/**
 * A keeper below its fair share takes free leases, as many at once as it has room for. When the
 * leases it could take are all held by others (two dispatchers and an odd number of workspaces:
 * the second has room for one), it tried them with a SET NX each, one after the other, every round:
 * with 201 workspaces 101 SETs in sequence per round, with 4,001 some 2,000 (700 ms on loopback,
 * and at a few thousand workspaces the round outlasted the lease's lifetime). It finds which are
 * free first (one EXISTS each, at once), then takes only those, up to its room. The SETs are
 * counted on each keeper's own client over the real Redis.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { LeaseKeeper } from '../../src/dispatcher/leases.ts';
import { suiteRedis } from '../support/redis.ts';

/** Counts the SET and EXISTS commands `redis` sends. */
function counted(redis: RedisClient): { sets: number; exists: number } {
  const counts = { sets: 0, exists: 0 };
  const client = redis as unknown as Record<string, (...args: unknown[]) => unknown>;
  const set = client.set!.bind(redis);
  const exists = client.exists!.bind(redis);
  client.set = (...args: unknown[]) => {
    counts.sets++;
    return set(...args);
  };
  client.exists = (...args: unknown[]) => {
    counts.exists++;
    return exists(...args);
  };
  return counts;
}

describe('dispatcher leases with room for fewer than the candidates', () => {
  const suite = suiteRedis();

  it('a keeper with room for one sends at most one SET a round, and takes a free lease in one', async () => {
    const run = Date.now().toString(36);
    const workspaces = Array.from({ length: 201 }, (_, i) => `room-${run}-${String(i).padStart(3, '0')}`);
    const log = pino({ level: 'silent' });
    // Rounds driven by hand, a lifetime long enough for a slow round on a loaded machine.
    const opts = { ttlMs: 10_000, renewEveryMs: 1000 };
    const clients = [suite.server.client(), suite.server.client()];
    const counts = clients.map(counted);
    const keepers = clients.map((c, i) => new LeaseKeeper(c, `${'ab'[i]}-${run}`, log, opts));
    try {
      // The first takes every workspace alone; the second starts, and they settle on 101 and 100.
      await keepers[0]!.tick(workspaces);
      expect(keepers[0]!.count).toBe(201);
      for (let i = 0; i < 20; i++) {
        for (const k of keepers) await k.tick(workspaces);
        if (
          keepers
            .map((k) => k.count)
            .sort()
            .join() === '100,101'
        )
          break;
      }
      expect(keepers.map((k) => k.count).sort(), 'the workspaces shared by the fair share').toEqual([
        100, 101,
      ]);
      const fewer = keepers.findIndex((k) => k.count === 100);
      const more = 1 - fewer;
      // One round of each: the one with room for one finds none free, the other has no room.
      for (const c of counts) {
        c.sets = 0;
        c.exists = 0;
      }
      let started = performance.now();
      await keepers[fewer]!.tick(workspaces);
      const roomRoundMs = Math.round(performance.now() - started);
      await keepers[more]!.tick(workspaces);
      console.log(JSON.stringify({ roomRoundMs, counts }));
      expect(counts[fewer]!.sets, 'SETs of one round of the keeper with room for one').toBeLessThanOrEqual(1);
      expect(counts[more]!.sets, 'SETs of one round of the keeper at its share').toBe(0);
      expect(keepers.map((k) => k.count)).toEqual(fewer === 0 ? [100, 101] : [101, 100]);
      // A workspace more: each has room for one, and the one free is taken in a round, with one SET.
      const added = `room-${run}-201`;
      const all = [...workspaces, added];
      counts[fewer]!.sets = 0;
      started = performance.now();
      await keepers[fewer]!.tick(all);
      const takeRoundMs = Math.round(performance.now() - started);
      console.log(JSON.stringify({ takeRoundMs, sets: counts[fewer]!.sets }));
      expect(keepers[fewer]!.holds(added), 'the free lease taken in one round').toBe(true);
      expect(counts[fewer]!.sets).toBe(1);
      expect(await suite.redis.get(workspaceKeys(added).lease)).toBe(keepers[fewer]!.owner);
      counts[more]!.sets = 0;
      await keepers[more]!.tick(all);
      expect(counts[more]!.sets, 'SETs of the other, none free').toBe(0);
      expect(keepers.map((k) => k.count)).toEqual([101, 101]);
    } finally {
      for (const k of keepers) await k.releaseAll();
      for (const c of clients) c.disconnect();
    }
  }, 60_000);
});
