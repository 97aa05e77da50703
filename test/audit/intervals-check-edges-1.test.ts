/**
 * The audit's comparison of the live interval tallies read 4 intervals per transaction, sized for
 * 100 queues: at 1000 queues an interval holds about 9000 fields, and one transaction read about
 * 36,000, holding Redis (and every workspace on it) well past 5 ms. A transaction now reads
 * intervals up to a number of fields; the comparison is the same.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { checkIntervals } from '../../src/audit/intervals-check.ts';
import { INTERVAL_MS, IntervalStats, intervalStart, TALLY_FIELDS } from '../../src/domain/intervals.ts';
import { tallyFields } from '../support/interval-tallies.ts';
import { suiteRedis } from '../support/redis.ts';
import { commandsDuring } from '../support/slowlog.ts';

type SlowlogEntry = [id: number, at: number, us: number, args: string[]];

describe("the audit's read of the interval tallies at 1000 queues", () => {
  const suite = suiteRedis();

  it('reads 24 intervals of 1000 queues in transactions of under 5 ms each', async () => {
    const k = workspaceKeys('intervals-check-wide');
    const now = Date.now();
    const end = intervalStart(now);
    const starts = Array.from({ length: 24 }, (_, i) => end - (24 - i) * INTERVAL_MS);
    for (const s of starts) {
      const fields = tallyFields(1000);
      await suite.redis.hset(`${k.intervalPrefix}${s}`, ...fields);
      await suite.redis.zadd(k.intervalIndex, s, String(s));
    }
    const event = JSON.stringify({
      type: 'ContactQueued',
      workspace: 'intervals-check-wide',
      at: '',
      data: {},
    });
    const last = (await suite.redis.xadd(k.events, '*', 'type', 'ContactQueued', 'event', event))!;
    await suite.redis.hset(k.intervals, 'checkpoint', last, 'serviceLevelMs', 20_000);

    const longest: number[] = [];
    let mostFields = 0;
    for (let run = 0; run < 3; run++) {
      const { result: found } = await commandsDuring(suite.admin, async () => {
        const r = await checkIntervals(suite.redis, k, new IntervalStats(20_000), 20_000, last, now);
        const log = ((await suite.admin.slowlog('GET', '-1')) as SlowlogEntry[])
          .reverse()
          .filter(([, , , args]) => !/^(slowlog|config)$/i.test(args[0] ?? ''));
        // Each transaction: MULTI and the reads queued in it (EXEC itself is not logged); any other
        // command (a page of HSCAN, HLEN) runs on its own.
        let tx = 0;
        let most = 0;
        let hashes = 0;
        let inTx = false;
        for (const [, , us, args] of log) {
          const name = (args[0] ?? '').toLowerCase();
          if (name === 'multi') {
            inTx = true;
            tx = 0;
            hashes = 0;
          } else if (!inTx || !['hmget', 'hgetall', 'zrange'].includes(name)) {
            inTx = false;
            tx = 0;
            hashes = 0;
          }
          if (name === 'hgetall') hashes++;
          tx += us;
          most = Math.max(most, tx);
          mostFields = Math.max(mostFields, hashes * TALLY_FIELDS.length * 1001);
        }
        longest.push(most);
        return r;
      });
      // The log's replay counted nothing: every interval differs, and each is read.
      expect(found.status).toMatch(/^compared 24 intervals/);
      expect(found.violations).toHaveLength(24);
    }
    // The fastest of three: the machine is shared.
    expect(Math.min(...longest), `longest transaction µs ${longest.join(', ')}`).toBeLessThan(5000);
    expect(mostFields, 'most fields one transaction read').toBeLessThanOrEqual(TALLY_FIELDS.length * 1001);
  }, 60_000);

  it('compares no interval read in pages across a drop and rebuild of the projection', async () => {
    const k = workspaceKeys('intervals-check-rebuilt');
    const now = Date.now();
    const start = intervalStart(now) - 2 * INTERVAL_MS;
    const fields = tallyFields(1000);
    const key = `${k.intervalPrefix}${start}`;
    await suite.redis.hset(key, ...fields);
    await suite.redis.zadd(k.intervalIndex, start, String(start));
    const event = JSON.stringify({
      type: 'ContactQueued',
      workspace: 'intervals-check-rebuilt',
      at: '',
      data: {},
    });
    const last = (await suite.redis.xadd(k.events, '*', 'type', 'ContactQueued', 'event', event))!;
    await suite.redis.hset(k.intervals, 'checkpoint', last, 'serviceLevelMs', 20_000, 'generation', 'first');
    // After the first page: dropped, and built again to the same checkpoint, the interval partway.
    const hscan = suite.redis.hscan.bind(suite.redis);
    let pages = 0;
    const hooked = suite.redis as unknown as Record<string, unknown>;
    hooked.hscan = async (...args: Parameters<typeof hscan>) => {
      const got = await hscan(...args);
      if (++pages === 1) {
        await suite.admin.del(k.intervals, key);
        await suite.admin.hset(key, 'queued', 3);
        await suite.admin.hset(
          k.intervals,
          'checkpoint',
          last,
          'serviceLevelMs',
          20_000,
          'generation',
          'second',
        );
      }
      return got;
    };
    let found: Awaited<ReturnType<typeof checkIntervals>>;
    try {
      found = await checkIntervals(suite.redis, k, new IntervalStats(20_000), 20_000, last, now);
    } finally {
      delete hooked.hscan;
    }
    expect(pages).toBeGreaterThan(1);
    expect(found.status).toMatch(/^not compared past 0 intervals: the projection was dropped or rebuilt/);
    expect(found.violations).toEqual([]);
  }, 60_000);

  it('compares no open interval read in pages that a step added to meanwhile', async () => {
    const k = workspaceKeys('intervals-check-open');
    const now = Date.now();
    // The current interval: the projection has caught up with the log, so it counts as covered.
    const start = intervalStart(now);
    const fields = tallyFields(1000);
    const key = `${k.intervalPrefix}${start}`;
    await suite.redis.hset(key, ...fields);
    await suite.redis.zadd(k.intervalIndex, start, String(start));
    const event = JSON.stringify({
      type: 'ContactQueued',
      workspace: 'intervals-check-open',
      at: '',
      data: {},
    });
    const last = (await suite.redis.xadd(k.events, '*', 'type', 'ContactQueued', 'event', event))!;
    await suite.redis.hset(k.intervals, 'checkpoint', last, 'serviceLevelMs', 20_000, 'generation', 'one');
    // After the first page, a step applies a new event: it adds to the open interval.
    const hscan = suite.redis.hscan.bind(suite.redis);
    let pages = 0;
    const hooked = suite.redis as unknown as Record<string, unknown>;
    hooked.hscan = async (...args: Parameters<typeof hscan>) => {
      const got = await hscan(...args);
      if (++pages === 1) {
        const next = (await suite.admin.xadd(k.events, '*', 'type', 'ContactQueued', 'event', event))!;
        await suite.admin.hincrby(key, 'queued', 1);
        await suite.admin.hset(k.intervals, 'checkpoint', next);
      }
      return got;
    };
    let found: Awaited<ReturnType<typeof checkIntervals>>;
    try {
      // The replay counted nothing: compared, the interval would differ (a violation).
      found = await checkIntervals(suite.redis, k, new IntervalStats(20_000), 20_000, last, now);
    } finally {
      delete hooked.hscan;
    }
    expect(pages).toBeGreaterThan(1);
    expect(found.status).toMatch(/^compared 0 intervals/);
    expect(found.violations).toEqual([]);
  }, 60_000);
});
