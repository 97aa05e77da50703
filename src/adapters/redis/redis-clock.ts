import calculateSlot from 'cluster-key-slot';
import { callOnNodeOf } from './client.ts';
import { globalKeys } from './keys.ts';
import type { RedisClient } from './scripts.ts';

/** How often a process reads Redis's clock again for the registry of active workspaces. */
export const REDIS_CLOCK_EVERY_MS = 60_000;

/**
 * Most round trips one reading takes (it stops at the first of 5 ms or less): the shortest is
 * kept, its middle off by half its length at most.
 */
const SAMPLES = 3;

export interface Reading {
  /** Redis's clock at `perfAt`, ms. */
  readonly redisAt: number;
  /** `performance.now()` then. */
  readonly perfAt: number;
  /** `Date.now() - performance.now()` then: a change of it over CLOCK_DRIFT_MS is a jump. */
  readonly drift: number;
}

/**
 * How far the host's clock may move against the monotonic clock before the reading is taken again
 * and waited for: a step of the host's clock, or a paused VM whose monotonic clock did not count
 * the pause (the reading carried forward would then be behind by the pause).
 */
export const CLOCK_DRIFT_MS = 1000;

interface Clock {
  reading: Reading | undefined;
  pending: Promise<void> | undefined;
}

/** Each client's readings: one per slot read on a cluster (its node's clock), one on a single Redis. */
const clocks = new WeakMap<RedisClient, Map<number, Clock>>();

/**
 * Redis's clock as the node holding `key` tells it, at the middle of the round trip: up to
 * `samples` round trips, stopping at one of 5 ms or less, the shortest's kept. A round trip held up
 * on this side (the event loop busy when the reply came: a start, a GC pause) would read Redis's
 * clock as behind by half its length (test/workers/timers-clock-offset.test.ts).
 */
export async function readRedisClock(redis: RedisClient, key: string, samples = SAMPLES): Promise<Reading> {
  let best: { redisAt: number; perfAt: number; roundTrip: number } | undefined;
  for (let i = 0; i < samples && (best === undefined || best.roundTrip > 5); i++) {
    const before = performance.now();
    const [s, us] = (await callOnNodeOf(redis, key, 'TIME')) as [string, string];
    const after = performance.now();
    const redisAt = Number(s) * 1000 + Math.floor(Number(us) / 1000);
    if (!Number.isFinite(redisAt)) throw new Error(`TIME gave ${JSON.stringify([s, us])}`);
    if (best === undefined || after - before < best.roundTrip)
      best = { redisAt, perfAt: (before + after) / 2, roundTrip: after - before };
  }
  return { redisAt: best!.redisAt, perfAt: best!.perfAt, drift: Date.now() - performance.now() };
}

/**
 * Now by the clock of the Redis node that holds `key` (by default `sb:workspaces:active`), ms: the
 * clock the Lua steps on that node time what they record by. Every process marks a workspace
 * active in that registry (an API instance with each command, a dispatcher until its last pending
 * timer) and the workers discover the workspaces marked in the last `idleAfterMs`; by each host's
 * own clock, an API host behind the workers' by more than that marked every workspace as long idle
 * and no worker served it (its commands were never applied), and one ahead kept them marked for as
 * long as it was ahead (test/e2e/clocks-edges-1.test.ts). A workspace's waits are measured by the
 * clock of its own keys' node (pass one of its keys), which stamped its arrivals and decisions. The
 * reading is kept and carried forward by this process's monotonic clock, so a jump of the host's
 * clock changes nothing; it is read again every REDIS_CLOCK_EVERY_MS (beside the callers, who go
 * on with the last reading). Throws when that clock was never read and cannot be.
 */
export async function redisClockNow(
  redis: RedisClient,
  key: string = globalKeys.activeWorkspaces,
): Promise<number> {
  const c = clockOf(redis, key);
  const last = c.reading;
  const stale = refresh(c, redis, key);
  // The first reading, and one after a jump, is waited for (its failure is the caller's); later
  // ones go on aside.
  if (stale === 'wait') await c.pending;
  const r = c.reading ?? last;
  if (r === undefined) throw new Error(`the clock of the Redis node of ${key} was not read`);
  return Math.round(r.redisAt + (performance.now() - r.perfAt));
}

/**
 * redisClockNow without waiting: the reading carried forward, or undefined when there is none to
 * trust yet (never read, or the host's clock jumped since), a read then started aside. For a loop
 * that must not wait on the shared connection (the event tail).
 */
export function redisClockIfRead(redis: RedisClient, key: string): number | undefined {
  const c = clockOf(redis, key);
  if (refresh(c, redis, key) === 'wait') {
    c.pending?.catch(() => {});
    return undefined;
  }
  const r = c.reading;
  return r === undefined ? undefined : Math.round(r.redisAt + (performance.now() - r.perfAt));
}

function clockOf(redis: RedisClient, key: string): Clock {
  let bySlot = clocks.get(redis);
  if (bySlot === undefined) {
    bySlot = new Map();
    clocks.set(redis, bySlot);
  }
  const slot = redis.isCluster ? calculateSlot(key) : 0;
  let clock = bySlot.get(slot);
  if (clock === undefined) {
    clock = { reading: undefined, pending: undefined };
    bySlot.set(slot, clock);
  }
  return clock;
}

/**
 * Starts a read of the clock when the reading is missing, stale or from before a jump of the
 * host's clock: 'wait' when the reading cannot be used meanwhile, 'aside' when it can.
 */
function refresh(c: Clock, redis: RedisClient, key: string): 'fresh' | 'aside' | 'wait' {
  const last = c.reading;
  const jumped = last !== undefined && Math.abs(Date.now() - performance.now() - last.drift) > CLOCK_DRIFT_MS;
  if (last !== undefined && !jumped && performance.now() - last.perfAt < REDIS_CLOCK_EVERY_MS) return 'fresh';
  c.pending ??= readRedisClock(redis, key)
    .then((r) => {
      c.reading = r;
    })
    .finally(() => {
      c.pending = undefined;
    });
  if (last === undefined || jumped) return 'wait';
  c.pending.catch(() => {});
  return 'aside';
}
