import { hashEntries } from '../adapters/redis/hash-scan.ts';
import { INTERVAL_GENERATION, type WorkspaceKeys } from '../adapters/redis/keys.ts';
import type { RedisClient } from '../adapters/redis/scripts.ts';
import {
  INTERVAL_MS,
  INTERVALS_KEPT_MS,
  type IntervalStats,
  TALLY_FIELDS,
  type Tally,
  talliesOfHash,
} from '../domain/intervals.ts';
import { positionMs } from './entries.ts';
import type { Violation } from './violations.ts';

/**
 * The live interval projection (src/projections/intervals.ts) held to the log: the auditor counts
 * every event it replays into an IntervalStats (src/domain/intervals.ts, the rule the projection
 * follows too), with the service-level threshold the projection counts within; then the
 * projection's tallies in Redis must be those counts, field by field (the workspace's and each
 * queue's), for every interval both have counted whole:
 * - the projection's checkpoint P covers an interval whose end is at or before P's time (every
 *   later event has a later time), and the replay's last event L likewise; so an interval is
 *   compared when its end is at or before the earlier of the two times, and every interval when P
 *   is L (both counted the same events);
 * - an interval past the projection's retention (ended more than INTERVALS_KEPT_MS ago, less a
 *   minute for the clocks) is not compared: the projection no longer keeps it.
 * A difference is an `interval` violation (one per interval, its first few fields).
 */

/**
 * How many intervals' fields one transaction reads at most. Redis runs a transaction whole, every
 * workspace on it waiting: 200 intervals of 100 queues (900 fields each) held it about 60 ms, 4 of
 * 1000 queues (9000 fields each) 15 – 36 ms; 4000 fields hold it about 1.5 ms. An interval with
 * more is read on its own in pages (hashEntries), between two reads of the projection's build.
 */
const FIELDS_PER_READ = 4000;
/** Clock slack, ms, at the retention edge (the projection's Lua reads Redis's clock). */
const RETENTION_SLACK_MS = 60_000;

export interface IntervalCheck {
  /** `compared N intervals ...`, or why not. */
  readonly status: string;
  readonly violations: readonly Violation[];
}

/** The fields where `live` and `log` differ, as "<field>[ <queue>]: live X, log Y". */
export function tallyDifferences(
  live: { all: Tally; queues: ReadonlyMap<string, Tally> } | undefined,
  log: { all: Tally; queues: ReadonlyMap<string, Tally> } | undefined,
): string[] {
  const out: string[] = [];
  const compare = (name: string, a: Tally | undefined, b: Tally | undefined) => {
    for (const f of TALLY_FIELDS) {
      const x = a?.[f] ?? 0;
      const y = b?.[f] ?? 0;
      if (x !== y) out.push(`${name ? `${f} ${name}` : f}: live ${x}, log ${y}`);
    }
  };
  compare('', live?.all, log?.all);
  const queues = new Set([...(live?.queues.keys() ?? []), ...(log?.queues.keys() ?? [])]);
  for (const q of [...queues].sort()) compare(q, live?.queues.get(q), log?.queues.get(q));
  return out;
}

/**
 * Which intervals (by start) the projection at `checkpoint` and the replay up to `lastEvent` have
 * both counted whole, among `starts`, and still kept at `now`.
 */
export function comparable(
  starts: Iterable<number>,
  checkpoint: string,
  lastEvent: string,
  now: number,
  keptMs: number = INTERVALS_KEPT_MS,
): number[] {
  const limit =
    checkpoint === lastEvent
      ? Number.POSITIVE_INFINITY
      : Math.min(positionMs(checkpoint), positionMs(lastEvent));
  const out = new Set<number>();
  for (const s of starts)
    if (s + INTERVAL_MS <= limit && s + INTERVAL_MS + keptMs > now + RETENTION_SLACK_MS) out.add(s);
  return [...out].sort((a, b) => a - b);
}

/**
 * Reads the live projection's tallies and compares them with `stats` (the replay's counts up to
 * `lastEvent`, within `serviceLevelMs`). Each transaction reads the checkpoint with the hashes it
 * reads, so each interval is compared at a checkpoint that covers it, however the projection moves.
 */
export async function checkIntervals(
  redis: RedisClient,
  k: WorkspaceKeys,
  stats: IntervalStats,
  serviceLevelMs: number,
  lastEvent: string | undefined,
  /** Now by the clock of the workspace's node (redisClockNow), which expires the interval hashes. */
  now: number,
): Promise<IntervalCheck> {
  const head = await redis
    .multi()
    .hmget(k.intervals, 'checkpoint', 'serviceLevelMs')
    .zrange(k.intervalIndex, 0, -1)
    .exec();
  if (!head) throw new Error('the read of the interval projection was aborted');
  for (const [err] of head) if (err) throw err;
  const [checkpoint, threshold] = head[0]![1] as (string | null)[];
  if (!checkpoint || lastEvent === undefined)
    return { status: 'not compared (no live interval projection)', violations: [] };
  if (Number(threshold) !== serviceLevelMs)
    return {
      status: `not compared: the projection counts within ${String(threshold)} ms, the replay within ${serviceLevelMs} ms (rebuilt during the audit)`,
      violations: [],
    };
  // Every interval either counted and still kept; each read below says which it covers.
  const candidates = comparable(
    [...stats.starts(), ...(head[1]![1] as string[]).map(Number)],
    lastEvent,
    lastEvent,
    now,
  );
  // The intervals in groups of at most FIELDS_PER_READ fields; a larger one alone, read in pages.
  const sizes = await Promise.all(candidates.map((s) => redis.hlen(`${k.intervalPrefix}${s}`)));
  const groups: { starts: number[]; paged: boolean }[] = [];
  let fields = 0;
  candidates.forEach((s, i) => {
    const size = sizes[i]!;
    const open = groups.at(-1);
    if (size > FIELDS_PER_READ) groups.push({ starts: [s], paged: true });
    else if (open && !open.paged && fields + size <= FIELDS_PER_READ) {
      open.starts.push(s);
      fields += size;
    } else {
      groups.push({ starts: [s], paged: false });
      fields = size;
    }
  });
  const meta = (tx: ReturnType<RedisClient['multi']>) =>
    tx.hmget(k.intervals, 'checkpoint', 'serviceLevelMs', INTERVAL_GENERATION);
  const violations: Violation[] = [];
  let compared = 0;
  let upTo = checkpoint;
  const gone = () => ({
    status: `not compared past ${compared} intervals: the projection was dropped or rebuilt during the audit`,
    violations,
  });
  for (const { starts: chunk, paged } of groups) {
    const tx = meta(redis.multi());
    if (!paged) for (const s of chunk) tx.hgetall(`${k.intervalPrefix}${s}`);
    const replies = await tx.exec();
    if (!replies) throw new Error('the read of the interval tallies was aborted');
    for (const [err] of replies) if (err) throw err;
    // Dropped, or rebuilt with another threshold, since the first read: nothing more to compare with.
    const [at, within, build] = replies[0]![1] as (string | null)[];
    if (!at || Number(within) !== serviceLevelMs) return gone();
    upTo = at;
    const covered = new Set(comparable(chunk, at, lastEvent, now));
    const hashes: Record<string, string>[] = [];
    if (!paged) for (const j of chunk.keys()) hashes.push(replies[j + 1]![1] as Record<string, string>);
    else if (covered.has(chunk[0]!)) {
      // Covered at `at` and ended by then: no step changes it any more (every later event is later
      // than its end), unless the projection is dropped; the same build after the pages says it
      // was not.
      hashes.push(Object.fromEntries(await hashEntries(redis, `${k.intervalPrefix}${chunk[0]!}`)));
      const after = await meta(redis.multi()).exec();
      if (!after) throw new Error('the read of the interval tallies was aborted');
      if (after[0]![0]) throw after[0]![0];
      const [still, stillWithin, stillBuild] = after[0]![1] as (string | null)[];
      if (!still || Number(stillWithin) !== serviceLevelMs || stillBuild !== build) return gone();
      // Still open at `at` (covered because the projection had caught up with the log): a step
      // during the pages may have added to it, so it is compared only if none ran.
      if (still !== at && chunk[0]! + INTERVAL_MS > positionMs(at)) covered.delete(chunk[0]!);
    }
    chunk.forEach((s, j) => {
      if (!covered.has(s)) return;
      compared++;
      const diff = tallyDifferences(talliesOfHash(hashes[j]!), stats.tallies(s));
      if (diff.length === 0) return;
      const shown = diff.length > 4 ? [...diff.slice(0, 4), `and ${diff.length - 4} more`] : diff;
      violations.push({
        kind: 'interval',
        stream: 'state',
        position: lastEvent,
        message: `interval ${new Date(s).toISOString()}: the live projection (at ${at}) differs from the log: ${shown.join('; ')}`,
      });
    });
  }
  return {
    status: `compared ${compared} interval${compared === 1 ? '' : 's'} (the projection at ${upTo}, within ${serviceLevelMs} ms)`,
    violations,
  };
}
