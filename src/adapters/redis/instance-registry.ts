/**
 * The API instances' registry in Redis (it runs inside every API process):
 * `registerInstance(redis, { host, port })` writes the instance's heartbeat into the sorted set
 * `sb:instances` (member `host:port`, score = Redis server time in ms) every second. Scores come
 * from Redis' own clock (TIME inside a script), so API hosts with skewed clocks still agree on
 * what "3 s old" means. `liveInstances` reads the instances whose heartbeat is younger than 3 s:
 * the HAProxy backend sync (src/topology/haproxy/backend-sync.ts) keeps HAProxy in step with it.
 * Entries older than PRUNE_AFTER_MS are removed by the sync and by every registered instance as
 * it heartbeats, so instances that never left (killed) do not accumulate without a sync running.
 */
import type { Cluster, Redis as SingleRedis } from 'ioredis';
import { globalKeys } from './keys.ts';
import { luaScript, runLua } from './scripts.ts';

/** A single Redis or a Redis Cluster client (the registry uses one key: any node serves it). */
export type Redis = SingleRedis | Cluster;

export const INSTANCES_KEY = globalKeys.instances;
export const HEARTBEAT_INTERVAL_MS = 1000;
export const LIVE_WINDOW_MS = 3000;
/** Entries older than this are deleted from the set, by the sync loop and by each registered instance. */
export const PRUNE_AFTER_MS = 60_000;

const HEARTBEAT = luaScript('instanceHeartbeat', new URL('./lua/instance-heartbeat-1.lua', import.meta.url));
const LIVE = luaScript('instancesLive', new URL('./lua/instances-live-1.lua', import.meta.url));

export interface Instance {
  host: string;
  port: number;
}

export function instanceMember(i: Instance): string {
  return `${i.host}:${i.port}`;
}

export function parseMember(member: string): Instance | undefined {
  const m = /^\[?([A-Za-z0-9_.:-]+?)\]?:(\d{1,5})$/.exec(member);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (!m[1] || port < 1 || port > 65535) return undefined;
  return { host: m[1], port };
}

/**
 * A registered instance prunes the registry every this many heartbeats (its first too): the
 * entries of instances gone for good (SIGKILLed, their host lost) would otherwise stay unless a
 * backend sync runs, one per start at a new address (PORT=0, a new pod's address).
 */
export const PRUNE_EVERY_BEATS = 30;

/** Removes the entries whose last heartbeat is older than `pruneAfterMs` before `nowMs` (Redis time). */
export async function pruneInstances(
  redis: Redis,
  nowMs: number,
  key = INSTANCES_KEY,
  pruneAfterMs = PRUNE_AFTER_MS,
): Promise<number> {
  return redis.zremrangebyscore(key, '-inf', `(${nowMs - pruneAfterMs}`);
}

/** Write one heartbeat now; returns the score (Redis time, ms). */
export async function heartbeat(redis: Redis, instance: Instance, key = INSTANCES_KEY): Promise<number> {
  return Number(await runLua(redis, HEARTBEAT, [key], [instanceMember(instance)]));
}

export async function deregisterInstance(
  redis: Redis,
  instance: Instance,
  key = INSTANCES_KEY,
): Promise<void> {
  await redis.zrem(key, instanceMember(instance));
}

/** Instances whose heartbeat is younger than `windowMs` (Redis clock). */
export async function liveInstances(
  redis: Redis,
  opts: { windowMs?: number; pruneAfterMs?: number; key?: string } = {},
): Promise<Instance[]> {
  const members = (await runLua(
    redis,
    LIVE,
    [opts.key ?? INSTANCES_KEY],
    [opts.windowMs ?? LIVE_WINDOW_MS, opts.pruneAfterMs ?? 0],
  )) as string[];
  const out: Instance[] = [];
  for (const m of members) {
    const i = parseMember(m);
    if (i) out.push(i);
  }
  return out;
}

export interface Registration {
  readonly instance: Instance;
  /** Stop the heartbeat; by default also remove the entry (graceful shutdown). */
  stop(opts?: { deregister?: boolean }): Promise<void>;
}

/**
 * Heartbeat `instance` into `sb:instances` now and every `intervalMs` (default 1 s) until stop().
 * A failed heartbeat (Redis unreachable) is reported to `onError` and retried on the next tick,
 * the first one too: an instance started while Redis does not answer (a failover) starts paused
 * and joins the load balancer once its heartbeat lands, as one whose Redis went away later does.
 * `onRegistered` is told when the first heartbeat lands (before this returns, when it is the first
 * one tried); `onError` is told whether one had landed before the failure.
 *
 * A run of failures is told once as it starts and then once every `reportEveryMs` (default 30 s)
 * with how many failed so far, not at every tick: a Redis away for a minute is three lines in
 * each instance's log, not sixty. `onRecovered` hears how many failed once one lands again.
 */
export async function registerInstance(
  redis: Redis,
  instance: Instance,
  opts: {
    intervalMs?: number;
    key?: string;
    reportEveryMs?: number;
    onRegistered?: () => void;
    onError?: (err: unknown, registered: boolean, failures: number) => void;
    onRecovered?: (failures: number) => void;
  } = {},
): Promise<Registration> {
  const key = opts.key ?? INSTANCES_KEY;
  let stopped = false;
  let registered = false;
  // The run of failed heartbeats going on: how many, and when one was last told.
  let failures = 0;
  let toldAt = 0;
  let beats = 0;
  const beat = () =>
    heartbeat(redis, instance, key).then(
      (at) => {
        // By the score just written (Redis's clock): hosts with skewed clocks prune alike. A
        // failed prune is tried again at a later beat.
        if (beats++ % PRUNE_EVERY_BEATS === 0) pruneInstances(redis, at, key).catch(() => {});
        if (failures > 0 && registered && !stopped) opts.onRecovered?.(failures);
        failures = 0;
        if (registered || stopped) return;
        registered = true;
        opts.onRegistered?.();
      },
      (err: unknown) => {
        failures++;
        const now = Date.now();
        if (failures > 1 && now - toldAt < (opts.reportEveryMs ?? 30_000)) return;
        toldAt = now;
        opts.onError?.(err, registered, failures);
      },
    );
  let inFlight: Promise<unknown> = beat();
  await inFlight;
  const timer = setInterval(() => {
    if (stopped) return;
    inFlight = beat();
  }, opts.intervalMs ?? HEARTBEAT_INTERVAL_MS);
  timer.unref();
  return {
    instance,
    async stop(o = {}) {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await inFlight;
      if (o.deregister ?? true) await deregisterInstance(redis, instance, key);
    },
  };
}
