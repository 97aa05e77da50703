/**
 * The live interval projection checked against the log's own computation: IntervalStats fed the
 * event log from its start (the rebuild from history), interval by interval and queue by queue,
 * on the raw tallies (counts and sums) the projection keeps in Redis.
 */
import { expect } from 'vitest';
import {
  entryType,
  parseFields,
  type StreamEntry,
  streamHistory,
} from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { IntervalStats, loggedEventOf, TALLY_FIELDS } from '../../src/domain/intervals.ts';
import { waitFor } from './wait.ts';

/** Whether position `a` is after `b`. */
function after(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am > bm || (am === bm && as > bs);
}

/** IntervalStats fed the event log of `ws` from its start (up to `upTo` when given), and the last position fed. */
export async function intervalsFromLog(
  redis: RedisClient,
  ws: string,
  serviceLevelMs: number,
  upTo?: string,
): Promise<{ stats: IntervalStats; last: string }> {
  const stats = new IntervalStats(serviceLevelMs);
  const history = streamHistory(redis);
  let cursor = '0-0';
  for (;;) {
    const entries = await history(ws, cursor, 5000);
    for (const e of entries) {
      if (upTo !== undefined && after(e[0], upTo)) return { stats, last: cursor };
      const event = loggedEventOf(e[0], entryType(e), parseFields(e[1]).event);
      if (event) stats.add(event);
      cursor = e[0];
    }
    if (entries.length < 5000) return { stats, last: cursor };
  }
}

/** The hash IntervalStats' tallies of one interval make in the projection's layout (zeros left out). */
function expectedHash(stats: IntervalStats, start: number): Record<string, number> {
  const t = stats.tallies(start);
  const out: Record<string, number> = {};
  if (!t) return out;
  for (const f of TALLY_FIELDS) {
    if (t.all[f] !== 0) out[f] = t.all[f];
    for (const [q, qt] of t.queues) if (qt[f] !== 0) out[`${f} ${q}`] = qt[f];
  }
  return out;
}

/**
 * The live projection of `ws` equals the log's computation up to its checkpoint (the whole log
 * unless `whole` is false): every interval's tallies, the workspace's and each queue's. Returns
 * the interval starts and the checkpoint.
 */
export async function expectLiveEqualsLog(
  redis: RedisClient,
  ws: string,
  serviceLevelMs: number,
  whole = true,
): Promise<{ starts: number[]; checkpoint: string }> {
  const k = workspaceKeys(ws);
  const checkpoint = await redis.hget(k.intervals, 'checkpoint');
  expect(checkpoint).not.toBeNull();
  const { stats, last } = await intervalsFromLog(redis, ws, serviceLevelMs, whole ? undefined : checkpoint!);
  expect(checkpoint).toBe(last);
  expect(await redis.hget(k.intervals, 'serviceLevelMs')).toBe(String(serviceLevelMs));
  const starts = stats.starts();
  expect((await redis.zrange(k.intervalIndex, 0, -1)).map(Number)).toEqual(starts);
  for (const start of starts) {
    const live = Object.fromEntries(
      Object.entries(await redis.hgetall(`${k.intervalPrefix}${start}`)).map(([f, v]) => [f, Number(v)]),
    );
    expect(live, `interval ${new Date(start).toISOString()}`).toEqual(expectedHash(stats, start));
  }
  return { starts, checkpoint: checkpoint! };
}

/** The last position of the event stream of `ws`. */
export async function lastEvent(redis: RedisClient, ws: string): Promise<string | undefined> {
  return ((await redis.xrevrange(workspaceKeys(ws).events, '+', '-', 'COUNT', 1)) as StreamEntry[])[0]?.[0];
}

/** Waits until the interval projection of `ws` has applied the last event of its log. */
export async function intervalsCaughtUp(redis: RedisClient, ws: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    `the interval projection of ${ws} at the log's last event`,
    async () => {
      const last = await lastEvent(redis, ws);
      return last !== undefined && (await redis.hget(workspaceKeys(ws).intervals, 'checkpoint')) === last;
    },
    { timeoutMs, everyMs: 20 },
  );
}
