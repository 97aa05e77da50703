/**
 * API instance registry in Redis, and the loop that makes an HAProxy backend match it.
 *
 * - Every API instance calls `registerInstance(redis, { host, port })`: it writes its heartbeat
 *   into the sorted set `sb:instances` (member `host:port`, score = Redis server time in ms) every
 *   second. Scores come from Redis' own clock (TIME inside a script), so API hosts with skewed
 *   clocks still agree on what "3 s old" means.
 * - Next to each HAProxy, `syncBackends(redis, runtime)` reads the instances whose heartbeat
 *   is younger than 3 s and adds/removes servers in backend `api` through the runtime API so the
 *   backend matches. Only servers whose name starts with `sb_` are managed: servers written in
 *   the configuration file are left alone.
 */
import type { Cluster, Redis as SingleRedis } from 'ioredis';
import { globalKeys } from '../redis/keys.ts';
import type { AddServerOptions, HaproxyRuntime } from './runtime.ts';

/** A single Redis or a Redis Cluster client (the registry uses one key: any node serves it). */
export type Redis = SingleRedis | Cluster;

export const INSTANCES_KEY = globalKeys.instances;
export const HEARTBEAT_INTERVAL_MS = 1000;
export const LIVE_WINDOW_MS = 3000;
/** Entries older than this are deleted from the set by the sync loop. */
export const PRUNE_AFTER_MS = 60_000;
export const MANAGED_PREFIX = 'sb_';

// Heartbeat: ZADD with the server's clock. Returns the score written.
const HEARTBEAT_LUA = `
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], ms, ARGV[1])
return ms`;

// Live members: score >= now - window. Prunes members older than ARGV[2] ms.
const LIVE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prune = tonumber(ARGV[2])
if prune > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - prune)) end
return redis.call('ZRANGE', KEYS[1], now - tonumber(ARGV[1]), '+inf', 'BYSCORE')`;

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

/** HAProxy server name for an instance: `sb_127.0.0.1_3001` (HAProxy names allow [A-Za-z0-9_.:-]). */
export function serverName(i: Instance): string {
  return `${MANAGED_PREFIX}${i.host.replace(/[^A-Za-z0-9_.-]/g, '_')}_${i.port}`;
}

/** Write one heartbeat now; returns the score (Redis time, ms). */
export async function heartbeat(redis: Redis, instance: Instance, key = INSTANCES_KEY): Promise<number> {
  return Number(await redis.eval(HEARTBEAT_LUA, 1, key, instanceMember(instance)));
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
  const members = (await redis.eval(
    LIVE_LUA,
    1,
    opts.key ?? INSTANCES_KEY,
    String(opts.windowMs ?? LIVE_WINDOW_MS),
    String(opts.pruneAfterMs ?? 0),
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
 * A failed heartbeat (Redis unreachable) is reported to `onError` and retried on the next tick.
 */
export async function registerInstance(
  redis: Redis,
  instance: Instance,
  opts: { intervalMs?: number; key?: string; onError?: (err: unknown) => void } = {},
): Promise<Registration> {
  const key = opts.key ?? INSTANCES_KEY;
  await heartbeat(redis, instance, key);
  let stopped = false;
  let inFlight: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    if (stopped) return;
    inFlight = heartbeat(redis, instance, key).catch((err: unknown) => opts.onError?.(err));
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

export interface SyncOptions {
  /** Backend to manage. Default `api`. */
  backend?: string;
  windowMs?: number;
  key?: string;
  /** Options of the servers added (check interval etc.). */
  server?: AddServerOptions;
}

export interface SyncResult {
  added: string[];
  removed: string[];
  live: number;
}

/** One reconciliation: add live instances missing from the backend, remove managed servers that are not live. */
export async function syncBackendsOnce(
  redis: Redis,
  runtime: HaproxyRuntime,
  opts: SyncOptions = {},
): Promise<SyncResult> {
  const backend = opts.backend ?? 'api';
  const live = await liveInstances(redis, {
    windowMs: opts.windowMs ?? LIVE_WINDOW_MS,
    pruneAfterMs: PRUNE_AFTER_MS,
    key: opts.key ?? INSTANCES_KEY,
  });
  const wanted = new Map(live.map((i) => [serverName(i), i]));
  const current = (await runtime.listServers(backend)).filter((s) => s.name.startsWith(MANAGED_PREFIX));
  const result: SyncResult = { added: [], removed: [], live: live.length };

  const errors: unknown[] = [];
  const present = new Set<string>();
  for (const s of current) {
    const want = wanted.get(s.name);
    // Not live any more, or the same name now points elsewhere: remove (re-added below if live).
    if (!want || want.host !== s.host || want.port !== s.port) {
      try {
        await runtime.removeServer(backend, s.name);
        result.removed.push(s.name);
      } catch (err) {
        errors.push(err);
        present.add(s.name);
      }
    } else {
      present.add(s.name);
    }
  }
  for (const [name, i] of wanted) {
    if (present.has(name)) continue;
    try {
      await runtime.addServer(backend, name, i.host, i.port, opts.server);
      result.added.push(name);
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0)
    throw new AggregateError(errors, `syncBackends: ${errors.length} runtime operation(s) failed`);
  return result;
}

export interface BackendSync {
  /** Run one reconciliation now (also serialised with the loop). */
  syncNow(): Promise<SyncResult>;
  stop(): Promise<void>;
}

/**
 * Reconcile every `intervalMs` (default 1 s). Errors (Redis or HAProxy unreachable) go to
 * `onError`; the backend is left as it is until the next successful pass, so HAProxy keeps
 * serving the last known instances (its own health checks still take dead ones out).
 */
export function syncBackends(
  redis: Redis,
  runtime: HaproxyRuntime,
  opts: SyncOptions & {
    intervalMs?: number;
    onSync?: (r: SyncResult) => void;
    onError?: (err: unknown) => void;
  } = {},
): BackendSync {
  let stopped = false;
  let chain: Promise<unknown> = Promise.resolve();
  const run = (): Promise<SyncResult> => {
    const p = chain.then(() => syncBackendsOnce(redis, runtime, opts));
    chain = p.catch(() => undefined);
    return p;
  };
  const tick = () => {
    if (stopped) return;
    run().then(
      (r) => {
        if (r.added.length > 0 || r.removed.length > 0) opts.onSync?.(r);
      },
      (err: unknown) => opts.onError?.(err),
    );
  };
  const timer = setInterval(tick, opts.intervalMs ?? 1000);
  timer.unref();
  tick();
  return {
    syncNow: run,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await chain;
    },
  };
}
