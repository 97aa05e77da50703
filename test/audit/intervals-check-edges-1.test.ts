/**
 * The audit's comparison of the live interval tallies read 4 intervals per transaction, sized for
 * 100 queues: at 1000 queues an interval holds about 9000 fields, and one transaction read about
 * 36,000, holding Redis (and every workspace on it) well past 5 ms. A transaction now reads
 * intervals up to a number of fields; the comparison is the same.
 */
import { describe, expect, it } from 'vitest';
import { type WorkspaceKeys, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { checkIntervals } from '../../src/audit/intervals-check.ts';
import { INTERVAL_MS, IntervalStats, intervalStart, TALLY_FIELDS } from '../../src/domain/intervals.ts';
import {
  checkpointAtOneEvent,
  endedIntervalsAtCheckpoint,
  writeIntervalTallies,
} from '../support/interval-checkpoint.ts';
import { suiteRedis } from '../support/redis.ts';
import { commandsDuring } from '../support/slowlog.ts';

type SlowlogEntry = [id: number, at: number, us: number, args: string[]];

describe("the audit's read of the interval tallies at 1000 queues", () => {
  const suite = suiteRedis();

  /**
   * `ws`'s one interval of 1000 queues starting at `start`, and the log's one event with the
   * projection's checkpoint at it, of the generation `generation`.
   */
  async function oneIntervalAtCheckpoint(ws: string, start: number, generation: string) {
    const k = workspaceKeys(ws);
    await writeIntervalTallies(suite.redis, k, [start], 1000);
    const { event, last } = await checkpointAtOneEvent(suite.redis, ws, { more: ['generation', generation] });
    return { k, key: `${k.intervalPrefix}${start}`, event, last };
  }

  /**
   * `checkIntervals` of `k` at `last`, with `afterFirstPage` run once the first page of HSCAN was
   * read (the hook removed after): its result, and how many pages HSCAN read.
   */
  async function checkWithFirstPageHook(
    k: WorkspaceKeys,
    last: string,
    now: number,
    afterFirstPage: () => Promise<void>,
  ) {
    const hscan = suite.redis.hscan.bind(suite.redis);
    let pages = 0;
    const hooked = suite.redis as unknown as Record<string, unknown>;
    hooked.hscan = async (...args: Parameters<typeof hscan>) => {
      const got = await hscan(...args);
      if (++pages === 1) await afterFirstPage();
      return got;
    };
    try {
      const found = await checkIntervals(suite.redis, k, new IntervalStats(20_000), 20_000, last, now);
      return { found, pages };
    } finally {
      delete hooked.hscan;
    }
  }

  it('reads 24 intervals of 1000 queues in transactions of under 5 ms each', async () => {
    const now = Date.now();
    const { k, last } = await endedIntervalsAtCheckpoint(suite.redis, 'intervals-check-wide', 24, 1000, now);

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
    const now = Date.now();
    const start = intervalStart(now) - 2 * INTERVAL_MS;
    const { k, key, last } = await oneIntervalAtCheckpoint('intervals-check-rebuilt', start, 'first');
    // After the first page: dropped, and built again to the same checkpoint, the interval partway.
    const { found, pages } = await checkWithFirstPageHook(k, last, now, async () => {
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
    });
    expect(pages).toBeGreaterThan(1);
    expect(found.status).toMatch(/^not compared past 0 intervals: the projection was dropped or rebuilt/);
    expect(found.violations).toEqual([]);
  }, 60_000);

  it('compares no open interval read in pages that a step added to meanwhile', async () => {
    const now = Date.now();
    // The current interval: the projection has caught up with the log, so it counts as covered.
    const start = intervalStart(now);
    const { k, key, event, last } = await oneIntervalAtCheckpoint('intervals-check-open', start, 'one');
    // After the first page, a step applies a new event: it adds to the open interval. The replay
    // counted nothing: compared, the interval would differ (a violation).
    const { found, pages } = await checkWithFirstPageHook(k, last, now, async () => {
      const next = (await suite.admin.xadd(k.events, '*', 'type', 'ContactQueued', 'event', event))!;
      await suite.admin.hincrby(key, 'queued', 1);
      await suite.admin.hset(k.intervals, 'checkpoint', next);
    });
    expect(pages).toBeGreaterThan(1);
    expect(found.status).toMatch(/^compared 0 intervals/);
    expect(found.violations).toEqual([]);
  }, 60_000);
});
