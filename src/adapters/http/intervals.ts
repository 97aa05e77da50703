import type { FastifyInstance } from 'fastify';
import * as t from 'io-ts';
import {
  INTERVAL_MS,
  INTERVALS_KEPT_MS,
  type Interval,
  IntervalStats,
  type IntervalTallies,
  intervalStart,
  intervalsOf,
  loggedEventOf,
  talliesOfHash,
} from '../../domain/intervals.ts';
import { strict } from '../../domain/strict.ts';
import { MAX_POSITION_PART, Position, positionBefore, withMessage } from '../../domain/values.ts';
import {
  type EventHistory,
  entryType,
  parseFields,
  READ_PAGE,
  type StreamEntry,
  streamHistory,
} from '../redis/event-log.ts';
import { hashEntries } from '../redis/hash-scan.ts';
import { INTERVAL_GENERATION, workspaceKeys } from '../redis/keys.ts';
import { DEFAULT_SERVICE_LEVEL_MS } from '../redis/projection-reads.ts';
import { redisClockNow } from '../redis/redis-clock.ts';
import type { RedisClient } from '../redis/scripts.ts';
import { positionWaiter } from './min-position.ts';
import { isIntegerIn, workspaceOf } from './params.ts';
import { decodeOr400, ProblemError, problem } from './problem.ts';

/** The longest range one request reads, and how far before it the contacts' queues are learnt. */
const MAX_RANGE_MS = 24 * 3600_000;
const LOOKBACK_MS = 2 * 3600_000;
/** How many settled intervals' tallies are read at once (each a read of at most READ_PAGE fields). */
const SETTLED_READS = 4;
/** How many times the intervals still open are read in pages before they are read in the transaction. */
const RETRIES_PAGED = 3;

/** The most events one request reads: a busier range is refused (ask for a shorter one). */
const MAX_EVENTS = 2_000_000;
const PAGE = 10_000;
/**
 * A range that reaches past now is answered from the live projection while it is at most this far
 * behind the log's last event (the answer says the position it is current to).
 */
const LIVE_LAG_MS = 10_000;

/**
 * The instant of an ISO 8601 time; one without an offset (`Z`, `+hh:mm`) is read as UTC, as the
 * answer's times are written. Date.parse would read it in the server's time zone, so the same
 * request answered for another range on each server.
 */
function instantOf(s: string): number {
  return Date.parse(/(?:Z|[+-]\d\d:\d\d)$/i.test(s) ? s : `${s}Z`);
}

/**
 * An ISO 8601 time on a calendar day that exists: Date.parse reads 2026-02-30 as March 2 and
 * April 31 as May 1, which would answer for a day not asked for. The month's length is that of
 * the year as written (setUTCFullYear: Date.UTC reads years 0..99 as 1900..1999, and refused
 * February 29th of 0000, a leap year).
 */
function isTime(s: string): boolean {
  const m = /^(\d{4})-(\d\d)-(\d\d)T/.exec(s);
  if (!m || !Number.isFinite(instantOf(s))) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const last = new Date(0);
  last.setUTCFullYear(year, month, 0);
  return day >= 1 && day <= last.getUTCDate();
}
const Time = withMessage(
  t.refinement(t.string, isTime, 'Time'),
  'an ISO 8601 time such as 2026-11-30T08:00:00Z (UTC when it has no offset)',
);
const IntervalsQuery = strict(
  { from: Time, to: Time },
  {
    serviceLevelMs: withMessage(
      t.refinement(
        t.string,
        // As /stats reads it (queries.ts): by its value, leading zeros and all.
        (s) => isIntegerIn(s, 1, 86_400_000),
        'serviceLevelMs',
      ),
      'an integer number of milliseconds from 1 to 86400000',
    ),
    source: withMessage(
      t.literal('log'),
      '"log" (computed from the log even when the live projection covers the range)',
    ),
    minPosition: Position,
  },
  'IntervalsQuery',
);

/**
 * GET /stats/intervals?from&to: the event log's statistics in 15-minute intervals
 * (src/domain/intervals.ts). From the live projection (src/projections/intervals.ts) when it
 * covers the range exactly with the threshold asked for; otherwise read from the history (the
 * archive, then the stream) for this request. Both give the same figures (test/projections/intervals-live.test.ts).
 */
export async function intervalRoutes(app: FastifyInstance): Promise<void> {
  const history = app.deps.history ?? streamHistory(app.deps.redis);
  const awaitPosition = positionWaiter(app);
  app.get('/stats/intervals', async (req) => {
    const ws = workspaceOf(req.params);
    const q = decodeOr400(IntervalsQuery, req.query, 'query');
    const from = instantOf(q.from);
    const to = instantOf(q.to);
    if (!(from < to) || to - from > MAX_RANGE_MS)
      throw new ProblemError(
        problem(
          400,
          'invalid-request',
          'Invalid request',
          'to must be after from, and at most 24 hours later.',
          {
            errors: [{ path: 'to', message: 'after from, at most 24 hours later' }],
          },
        ),
      );
    const serviceLevelMs =
      q.serviceLevelMs !== undefined ? Number(q.serviceLevelMs) : DEFAULT_SERVICE_LEVEL_MS;
    await awaitPosition(ws, q.minPosition);
    // Both ends written in UTC, as every time of the answer: `to` as asked (without an offset, or
    // as 24:00) would be read in each reader's own time zone, and is no RFC 3339 date-time.
    const head = { from: new Date(intervalStart(from)).toISOString(), to: new Date(to).toISOString() };
    if (q.source !== 'log') {
      // With minPosition, the live figures only when they hold every event so far (else the log's).
      const live = await fromLive(app.deps.redis, ws, from, to, serviceLevelMs, q.minPosition !== undefined);
      if (live) return { ...head, intervals: live.intervals, source: 'live', position: live.position };
    }
    return { ...head, intervals: await fromLog(history, ws, from, to, serviceLevelMs), source: 'log' };
  });
}

/** The position's time, ms. */
const msOf = (position: string): number => Number(position.slice(0, position.indexOf('-')));

/**
 * The intervals from the live projection, if its tallies give exactly what the log gives for the
 * range: they were counted with this threshold and are still kept, every event before `to` is in
 * them (the checkpoint is at or past `to`, or at the log's last event) and none at or after `to`
 * is (`to` is an interval bound, or the checkpoint is before it). A range reaching past now is
 * answered while the projection is at most LIVE_LAG_MS behind: current up to `position`, unless
 * `exactOnly` (a query with minPosition: its own writes must be in the figures).
 */
async function fromLive(
  redis: RedisClient,
  ws: string,
  from: number,
  to: number,
  serviceLevelMs: number,
  exactOnly = false,
): Promise<{ intervals: Interval[]; position: string } | undefined> {
  const k = workspaceKeys(ws);
  const starts: number[] = [];
  for (let s = intervalStart(from); s < to; s += INTERVAL_MS) starts.push(s);
  // By the clock of the workspace's node, which expires the interval hashes and stamps the events.
  const now = await redisClockNow(redis, k.intervals);
  if (starts[0]! + INTERVAL_MS + INTERVALS_KEPT_MS < now + 60_000) return undefined;
  // An event adds to the interval of its position, and every event after the checkpoint is at or
  // after it: an interval that ended by the checkpoint's time no step changes any more. Those are
  // read first, each on its own (in pages when large), and the rest in one transaction with the
  // checkpoint: the tallies are those of that checkpoint, and no one read holds Redis for long (a
  // day of 96 intervals of 100 queues in one transaction held it about 20 ms).
  const [settledAt, builtWith, build] = await redis.hmget(
    k.intervals,
    'checkpoint',
    'serviceLevelMs',
    INTERVAL_GENERATION,
  );
  // Counted with another threshold: the log answers, nothing here is read.
  if (!settledAt || Number(builtWith) !== serviceLevelMs) return undefined;
  const settled = starts.filter((s) => s + INTERVAL_MS <= msOf(settledAt));
  const read = new Map<number, Record<string, string>>();
  // Each settled interval in a command of its own, a few at a time: Redis runs the commands one
  // client has sent together back to back, so all 96 of a day sent at once would hold it about as
  // long as the one transaction did. One larger than a page, in pages (hashEntries).
  const sizes = await Promise.all(settled.map((s) => redis.hlen(`${k.intervalPrefix}${s}`)));
  for (let i = 0; i < settled.length; i += SETTLED_READS)
    await Promise.all(
      settled.slice(i, i + SETTLED_READS).map(async (s, j) => {
        const key = `${k.intervalPrefix}${s}`;
        if (sizes[i + j]! <= READ_PAGE) read.set(s, await redis.hgetall(key));
        else read.set(s, Object.fromEntries(await hashEntries(redis, key)));
      }),
    );
  const rest = starts.slice(settled.length);
  // The rest with the checkpoint: in the transaction when they are small; one larger than a page
  // (an open interval of about 1,000 queues: some 9,000 fields, 4 - 9 ms in one transaction) is
  // read in pages before it, and taken only if the transaction finds the checkpoint the pages
  // were read at (no step added to it meanwhile), tried again a few times; a workspace whose
  // projection steps faster than that is read in the one transaction after all.
  const restSizes = await Promise.all(rest.map((s) => redis.hlen(`${k.intervalPrefix}${s}`)));
  const paged = rest.some((_, i) => restSizes[i]! > READ_PAGE);
  let found: { checkpoint: string; last: string } | undefined;
  for (let attempt = 0; attempt <= (paged ? RETRIES_PAGED : 0) && !found; attempt++) {
    // The last try: in the transaction, whatever its size.
    const inPages = paged && attempt < RETRIES_PAGED;
    const before = inPages ? await redis.hget(k.intervals, 'checkpoint') : null;
    const pages = new Map<number, Record<string, string>>();
    if (inPages)
      for (const s of rest)
        pages.set(s, Object.fromEntries(await hashEntries(redis, `${k.intervalPrefix}${s}`)));
    const tx = redis
      .multi()
      .hmget(k.intervals, 'checkpoint', 'serviceLevelMs', INTERVAL_GENERATION)
      .xrevrange(k.events, '+', '-', 'COUNT', 1);
    if (!inPages) for (const s of rest) tx.hgetall(`${k.intervalPrefix}${s}`);
    const replies = await tx.exec();
    if (!replies) return undefined;
    for (const [err] of replies) if (err) throw err;
    const [checkpoint, threshold, built] = replies[0]![1] as (string | null)[];
    const last = (replies[1]![1] as StreamEntry[])[0]?.[0];
    if (!checkpoint || !last || Number(threshold) !== serviceLevelMs) return undefined;
    // Another build than the first read's: the projection was dropped and built again meanwhile
    // (a rebuild may be past the first checkpoint already), and the intervals read first may be
    // of a rebuild partway. The log answers.
    if (built !== build || positionBefore(checkpoint, settledAt)) return undefined;
    if (inPages && checkpoint !== before) continue;
    rest.forEach((s, i) => {
      read.set(s, inPages ? pages.get(s)! : (replies[i + 2]![1] as Record<string, string>));
    });
    found = { checkpoint, last };
  }
  if (!found) return undefined;
  const { checkpoint, last } = found;
  const at = msOf(checkpoint);
  const exact = (at >= to || checkpoint === last) && (to % INTERVAL_MS === 0 || at < to);
  const current = !exactOnly && to > now && msOf(last) - at <= LIVE_LAG_MS;
  if (!exact && !current) return undefined;
  const tallies = new Map<number, IntervalTallies>();
  for (const s of starts) tallies.set(s, talliesOfHash(read.get(s) ?? {}));
  return { intervals: intervalsOf(from, to, (s) => tallies.get(s)), position: checkpoint };
}

/** The intervals computed from the history, reading the range (and LOOKBACK_MS before it) now. */
async function fromLog(
  history: EventHistory,
  ws: string,
  from: number,
  to: number,
  serviceLevelMs: number,
): Promise<Interval[]> {
  const stats = new IntervalStats(serviceLevelMs);
  const start = intervalStart(from);
  const learnFrom = Math.max(0, start - LOOKBACK_MS);
  let cursor = learnFrom > 0 ? `${learnFrom - 1}-${MAX_POSITION_PART}` : '0-0';
  let read = 0;
  for (;;) {
    const entries = await history(ws, cursor, PAGE);
    for (const e of entries) {
      cursor = e[0];
      const event = loggedEventOf(e[0], entryType(e), parseFields(e[1]).event);
      if (!event) continue;
      if (event.ms >= to) return stats.result(from, to);
      stats.add(event, event.ms >= start);
    }
    read += entries.length;
    if (entries.length < PAGE) break;
    if (read >= MAX_EVENTS)
      throw new ProblemError(
        problem(
          422,
          'range-too-large',
          'Range too busy',
          `The range holds more than ${MAX_EVENTS} events; ask for a shorter one.`,
        ),
      );
  }
  return stats.result(from, to);
}
