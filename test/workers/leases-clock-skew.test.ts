/**
 * The registry of live lease holders (`sb:dispatchers`, `sb:archivers`, `sb:interval-projections`)
 * shapes each holder's fair share: a holder counts the entries renewed within a lease lifetime and
 * prunes the older ones. Scored by each host's own clock, a host whose clock was ahead by more than
 * a lease lifetime pruned every other holder's entry as soon as it was written, counted itself
 * alone, and kept every workspace it held: of two dispatchers, one served them all and the other
 * none. Scored by Redis's clock (as the API instances' heartbeats are), the hosts agree. The host's
 * clock is skewed in process (Date.now) only while the keeper of the host ahead runs its round.
 */
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { globalKeys } from '../../src/adapters/redis/keys.ts';
import { LeaseKeeper } from '../../src/dispatcher/leases.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

describe('lease holders on hosts whose clocks differ', () => {
  const suite = suiteRedis();

  it('share the workspaces fairly when one host is ahead by more than a lease lifetime', async () => {
    const run = Date.now().toString(36);
    const workspaces = [1, 2, 3, 4].map((i) => `skew-${run}-${i}`);
    const opts = { ttlMs: 1000, renewEveryMs: 300 };
    const log = pino({ level: 'silent' });
    const realNow = Date.now.bind(Date);
    let skewMs = 0;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + skewMs);
    /** One round of the keeper on the host ahead by 3 s (three lease lifetimes). */
    const ahead = async <T>(round: () => Promise<T>): Promise<T> => {
      skewMs = 3000;
      try {
        return await round();
      } finally {
        skewMs = 0;
      }
    };
    const early = new LeaseKeeper(suite.redis, `ahead-${run}`, log, opts);
    const late = new LeaseKeeper(suite.redis, `on-time-${run}`, log, opts);
    try {
      // The host ahead starts first and takes every workspace (alone, its share is all of them).
      for (let i = 0; i < 3; i++) {
        await ahead(() => early.tick(workspaces));
        await sleep(100);
      }
      expect(early.count).toBe(workspaces.length);
      // The second starts: each should count two live holders and keep two workspaces.
      let live: string[] = [];
      for (let i = 0; i < 20; i++) {
        await ahead(() => early.tick(workspaces));
        await late.tick(workspaces);
        live = await suite.redis.zrange(globalKeys.dispatchers, 0, -1);
        await sleep(100);
      }
      console.log(JSON.stringify({ ahead: early.count, onTime: late.count, live }));
      expect(live.sort(), 'both holders in the registry').toEqual([`ahead-${run}`, `on-time-${run}`].sort());
      expect([early.count, late.count], 'workspaces held by each').toEqual([2, 2]);
    } finally {
      clock.mockRestore();
      await early.releaseAll();
      await late.releaseAll();
    }
  });
});
