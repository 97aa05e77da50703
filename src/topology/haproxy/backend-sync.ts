/**
 * The loop that makes an HAProxy backend match the API instances' registry
 * (src/adapters/redis/instance-registry.ts). Next to each HAProxy, `syncBackends(redis, runtime)`
 * reads the instances whose heartbeat is younger than 3 s and adds/removes servers in backend
 * `api` through the runtime API so the backend matches. Only servers whose name starts with `sb_`
 * are managed: servers written in the configuration file are left alone.
 */
import {
  INSTANCES_KEY,
  type Instance,
  LIVE_WINDOW_MS,
  liveInstances,
  PRUNE_AFTER_MS,
  type Redis,
} from '../../adapters/redis/instance-registry.ts';
import type { AddServerOptions, HaproxyRuntime } from './runtime.ts';

export const MANAGED_PREFIX = 'sb_';

/** HAProxy server name for an instance: `sb_127.0.0.1_3001` (HAProxy names allow [A-Za-z0-9_.:-]). */
export function serverName(i: Instance): string {
  return `${MANAGED_PREFIX}${i.host.replace(/[^A-Za-z0-9_.-]/g, '_')}_${i.port}`;
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
