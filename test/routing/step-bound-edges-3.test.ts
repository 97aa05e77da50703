/**
 * The audit's comparison of the live interval tallies (src/audit/intervals-check.ts) read 200
 * intervals in one transaction: of 100 queues each, that held Redis about 50 ms, and an audit run
 * against a live Redis stalled every workspace on it that long, again and again. Each transaction
 * now reads a few intervals, with the checkpoint it checks them at.
 */
import { describe, expect, it } from 'vitest';
import { checkIntervals } from '../../src/audit/intervals-check.ts';
import { IntervalStats } from '../../src/domain/intervals.ts';
import { endedIntervalsAtCheckpoint } from '../support/interval-checkpoint.ts';
import { suiteRedis } from '../support/redis.ts';

type SlowlogEntry = [id: number, at: number, us: number, args: string[]];

describe("the audit's read of the interval tallies", () => {
  const suite = suiteRedis();

  it('reads 400 intervals of 100 queues in transactions of under 5 ms each', async () => {
    const now = Date.now();
    const { k, last } = await endedIntervalsAtCheckpoint(suite.redis, 'step-bound-audit', 400, 100, now);

    await suite.admin.config('SET', 'slowlog-log-slower-than', '0');
    await suite.admin.config('SET', 'slowlog-max-len', '100000');
    const longest: number[] = [];
    try {
      for (let run = 0; run < 3; run++) {
        await suite.admin.slowlog('RESET');
        // The log's replay counted nothing: every interval differs, and each is read.
        const found = await checkIntervals(suite.redis, k, new IntervalStats(20_000), 20_000, last, now);
        expect(found.status).toMatch(/^compared 400 intervals/);
        expect(found.violations).toHaveLength(400);
        const log = ((await suite.admin.slowlog('GET', '-1')) as SlowlogEntry[])
          .reverse()
          .filter(([, , , args]) => !/^(slowlog|config)$/i.test(args[0] ?? ''));
        // Each transaction: MULTI and the commands up to the next MULTI (EXEC itself is not logged).
        let tx = 0;
        let most = 0;
        for (const [, , us, args] of log) {
          if (/^multi$/i.test(args[0] ?? '')) tx = 0;
          tx += us;
          most = Math.max(most, tx);
        }
        longest.push(most);
      }
    } finally {
      await suite.admin.config('SET', 'slowlog-log-slower-than', '10000');
    }
    // The fastest of three: the machine is shared.
    expect(Math.min(...longest), `longest transaction µs ${longest.join(', ')}`).toBeLessThan(5000);
  }, 60_000);
});
