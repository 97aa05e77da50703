/**
 * Interval tallies as the projection leaves them, for the suites that time or race their reads
 * (the audit's comparison, GET /stats/intervals): intervals written with every tally
 * (`writeIntervalTallies`), the log's one event with the projection's checkpoint at it
 * (`checkpointAtOneEvent`), and both at once for the intervals that ended before now
 * (`endedIntervalsAtCheckpoint`).
 */
import { type WorkspaceKeys, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { INTERVAL_MS, intervalStart } from '../../src/domain/intervals.ts';
import { tallyFields } from './interval-tallies.ts';

/**
 * The intervals starting at each of `starts`, each with every tally of `queues` queues
 * (`tallyFields`), listed in the interval index unless `indexed` is false.
 */
export async function writeIntervalTallies(
  redis: RedisClient,
  k: WorkspaceKeys,
  starts: Iterable<number>,
  queues: number,
  { indexed = true }: { indexed?: boolean } = {},
): Promise<void> {
  for (const s of starts) {
    const fields = tallyFields(queues);
    await redis.hset(`${k.intervalPrefix}${s}`, ...fields);
    if (indexed) await redis.zadd(k.intervalIndex, s, String(s));
  }
}

/**
 * A ContactQueued event of `ws` (at `at`, '' by default) appended to its log, and the interval
 * projection's checkpoint set at it with a service-level threshold of 20 s (and `more` fields of
 * the projection's hash, such as its generation): the event's JSON, to append again, and its
 * position.
 */
export async function checkpointAtOneEvent(
  redis: RedisClient,
  ws: string,
  { at = '', more = [] }: { at?: string; more?: (string | number)[] } = {},
): Promise<{ event: string; last: string }> {
  const k = workspaceKeys(ws);
  const event = JSON.stringify({ type: 'ContactQueued', workspace: ws, at, data: {} });
  const last = (await redis.xadd(k.events, '*', 'type', 'ContactQueued', 'event', event))!;
  await redis.hset(k.intervals, 'checkpoint', last, 'serviceLevelMs', 20_000, ...more);
  return { event, last };
}

/**
 * `ws`'s `count` intervals that ended by the start of the one `now` is in, each with every tally of
 * `queues` queues (`writeIntervalTallies`, indexed), and the projection's checkpoint at the log's
 * one event (`checkpointAtOneEvent`): the workspace's keys and the event's position.
 */
export async function endedIntervalsAtCheckpoint(
  redis: RedisClient,
  ws: string,
  count: number,
  queues: number,
  now: number,
): Promise<{ k: WorkspaceKeys; last: string }> {
  const k = workspaceKeys(ws);
  const end = intervalStart(now);
  const starts = Array.from({ length: count }, (_, i) => end - (count - i) * INTERVAL_MS);
  await writeIntervalTallies(redis, k, starts, queues);
  const { last } = await checkpointAtOneEvent(redis, ws);
  return { k, last };
}
