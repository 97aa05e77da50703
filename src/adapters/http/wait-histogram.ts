import { randomUUID } from 'node:crypto';
import type { Metric, MetricObjectWithValues, MetricValueWithName, Registry } from 'prom-client';
import { durationOf, loggedEventOf } from '../../domain/intervals.ts';
import { entryType, parseFields, READ_PAGE } from '../redis/event-log.ts';
import { workspaceKeys } from '../redis/keys.ts';
import { luaScript, type RedisClient, runLua } from '../redis/scripts.ts';

/**
 * The wait-time histogram of each workspace (docs/METRICS.md): how long each contact had waited
 * when it was assigned or offered (an `AssignmentMade` event's `waitedMs`). Its counts are kept in
 * Redis, in one hash per workspace, not in this process: a scrape folds the events appended since
 * the hash's cursor into it, so every decision is counted once whichever instance scrapes, and the
 * figures survive restarts and are the same on every instance (like the workspace counters).
 *
 * Each fold adds its counts and moves the cursor in one step that applies only while the cursor is
 * still the one the fold read from (lua/wait-fold-1.lua), so no event is ever counted twice, whatever
 * the timing. A short lock (SET NX PX) keeps instances from doing the same reading twice: a scrape
 * that finds another's fold under way waits for it within its budget, and past the budget reports
 * the counts as they stand. The counts start at the events' end when a workspace is first folded
 * (its earlier decisions are not counted).
 */
export const FOLD = luaScript('waitFold', new URL('../redis/lua/wait-fold-1.lua', import.meta.url));

/** Upper bounds of the buckets, seconds: contact-center waits, from answered at once to 10 minutes. */
export const WAIT_BUCKETS_S = [1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600] as const;
export const WAIT_HISTOGRAM = 'switchboard_wait_seconds';
/** Events read per round trip of a fold. */
const PAGE = READ_PAGE;
/** The fold's lock lives this long: a fold ends well within the scrape's budget (1 s). */
const LOCK_MS = 10_000;
/** How often a scrape looks whether another's fold is over. */
const LOCK_RETRY_MS = 20;
/** A fold stops this long after taking its lock, so its lock rarely runs out under it. */
const WRITE_WITHIN_MS = 5_000;

/** A workspace's counts as the hash holds them: per bucket (not cumulative), +Inf last. */
export interface WaitCounts {
  readonly buckets: readonly number[];
  readonly count: number;
  readonly sumMs: number;
}

const hashKey = (ws: string) => `${workspaceKeys(ws).prefix}metrics:wait`;
const lockKey = (ws: string) => `${workspaceKeys(ws).prefix}metrics:wait:lock`;
const field = (i: number) => (i < WAIT_BUCKETS_S.length ? `le:${WAIT_BUCKETS_S[i]}` : 'le:+Inf');

function countsOf(h: Record<string, string>): WaitCounts {
  const buckets = Array.from({ length: WAIT_BUCKETS_S.length + 1 }, (_, i) => Number(h[field(i)] ?? 0));
  return { buckets, count: Number(h.count ?? 0), sumMs: Number(h.sum_ms ?? 0) };
}

/** The bucket a wait of `ms` falls in (its index; WAIT_BUCKETS_S.length: +Inf). */
export function bucketOf(ms: number): number {
  const s = ms / 1000;
  const i = WAIT_BUCKETS_S.findIndex((le) => s <= le);
  return i < 0 ? WAIT_BUCKETS_S.length : i;
}

/**
 * Folds the workspace's events since the cursor into its hash (while `deadline` allows) and
 * returns the counts. Without the lock (another instance is folding) it only reads them.
 */
export async function foldWaits(redis: RedisClient, ws: string, deadline: number): Promise<WaitCounts> {
  const k = workspaceKeys(ws);
  const key = hashKey(ws);
  const token = randomUUID();
  const lock = async () => (await redis.set(lockKey(ws), token, 'PX', LOCK_MS, 'NX')) === 'OK';
  // Another instance folding: wait for it (within the budget), then fold what it left, if anything.
  let locked = await lock();
  while (!locked && Date.now() + LOCK_RETRY_MS < deadline) {
    await new Promise((r) => setTimeout(r, LOCK_RETRY_MS));
    locked = await lock();
  }
  if (!locked) return countsOf(await redis.hgetall(key));
  const took = Date.now();
  try {
    let cursor = await redis.hget(key, 'cursor');
    if (cursor === null) {
      // First sight: count from the events' end on (unless another instance began meanwhile).
      const last = await redis.xrevrange(k.events, '+', '-', 'COUNT', 1);
      await redis.hsetnx(key, 'cursor', last[0]?.[0] ?? '0-0');
      cursor = (await redis.hget(key, 'cursor')) ?? '0-0';
    }
    while (Date.now() < deadline && Date.now() - took < WRITE_WITHIN_MS) {
      const entries: [string, string[]][] = await redis.xrange(k.events, `(${cursor}`, '+', 'COUNT', PAGE);
      if (entries.length === 0) break;
      const add = new Array<number>(WAIT_BUCKETS_S.length + 1).fill(0);
      let n = 0;
      let sumMs = 0;
      for (const entry of entries) {
        if (entryType(entry) !== 'AssignmentMade') continue;
        // Read as every reader of the log reads it: an entry that is no event (something else can
        // write to the stream, docs/API.md), or a wait no Redis increment takes, is passed over,
        // never thrown on (the workspace was reported down at every scrape, its cursor stuck).
        const e = loggedEventOf(entry[0], entryType(entry), parseFields(entry[1]).event);
        const waited = e && durationOf(e.data.waitedMs, e.ms);
        if (waited === undefined) continue;
        const ms = Math.max(0, Math.round(waited));
        add[bucketOf(ms)]! += 1;
        n++;
        sumMs += ms;
      }
      const next = entries[entries.length - 1]![0];
      const increments: (string | number)[] = [];
      add.forEach((c, i) => {
        if (c > 0) increments.push(field(i), c);
      });
      if (n > 0) increments.push('count', n, 'sum_ms', sumMs);
      // Another fold moved the cursor first (its lock ran out under a stalled one): it counted these.
      if ((await runLua(redis, FOLD, [key], [cursor, next, ...increments])) !== 1) break;
      cursor = next;
      if (entries.length < PAGE) break;
    }
  } finally {
    // Only our own lock: one that ran out and was taken by another stays.
    if ((await redis.get(lockKey(ws)).catch(() => null)) === token)
      await redis.del(lockKey(ws)).catch(() => {});
  }
  return countsOf(await redis.hgetall(key));
}

/**
 * The histogram as a prom-client metric whose values are set from the folded counts at each
 * scrape (a prom-client Histogram only counts observations of its own process).
 */
export class WaitHistogramMetric {
  readonly name = WAIT_HISTOGRAM;
  readonly help =
    'How long contacts had waited when assigned or offered (each AssignmentMade event once, counted in Redis)';
  readonly type = 'histogram';
  readonly aggregator = 'omit';
  private counts = new Map<string, WaitCounts>();

  constructor(registry: Registry) {
    registry.registerMetric(this as unknown as Metric);
  }

  set(workspace: string, counts: WaitCounts): void {
    this.counts.set(workspace, counts);
  }

  reset(): void {
    this.counts.clear();
  }

  async get(): Promise<Omit<MetricObjectWithValues<MetricValueWithName<string>>, 'collect'>> {
    const values: MetricValueWithName<string>[] = [];
    for (const [workspace, c] of [...this.counts].sort(([a], [b]) => (a < b ? -1 : 1))) {
      let cumulative = 0;
      c.buckets.forEach((n, i) => {
        cumulative += n;
        values.push({
          metricName: `${WAIT_HISTOGRAM}_bucket`,
          labels: { workspace, le: i < WAIT_BUCKETS_S.length ? WAIT_BUCKETS_S[i]! : '+Inf' },
          value: cumulative,
        });
      });
      values.push({ metricName: `${WAIT_HISTOGRAM}_sum`, labels: { workspace }, value: c.sumMs / 1000 });
      values.push({ metricName: `${WAIT_HISTOGRAM}_count`, labels: { workspace }, value: c.count });
    }
    return { name: this.name, help: this.help, type: 'histogram' as never, aggregator: 'omit', values };
  }
}
