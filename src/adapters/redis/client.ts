import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { defineDeclared, type RedisClient } from './scripts.ts';

/** A single Redis by URL, or a Redis Cluster by its seed nodes: chosen by configuration alone. */
export interface RedisTarget {
  readonly url?: string;
  readonly clusterNodes?: readonly string[];
}

const commonOptions: RedisOptions = {
  maxRetriesPerRequest: 2,
  // A Redis that hangs (frozen, partitioned) fails requests instead of holding them: 503, retry.
  commandTimeout: 2000,
  retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
};

/**
 * A client for commands. Commands queue while disconnected (bounded by `maxRetriesPerRequest`),
 * and the client reconnects by itself with a capped backoff. On a cluster it follows MOVED/ASK
 * and refreshes its slot map after a failover.
 */
export function connectRedis(target: RedisTarget, options: RedisOptions = {}): RedisClient {
  let redis: RedisClient;
  if (target.clusterNodes && target.clusterNodes.length > 0) {
    const seeds = target.clusterNodes.map((n) => {
      const [host = '127.0.0.1', port = '6379'] = n.split(':');
      return { host, port: Number(port) };
    });
    const clusterOptions: ClusterOptions = {
      enableAutoPipelining: true,
      // XGROUP has no key ioredis can route a pipeline by: sent alone, it goes to its stream's node.
      autoPipeliningIgnoredCommands: ['xgroup'],
      scaleReads: 'master',
      slotsRefreshTimeout: 2000,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 300,
      retryDelayOnTryAgain: 200,
      clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
      redisOptions: { ...commonOptions, ...options },
    };
    redis = new Cluster(seeds, clusterOptions);
  } else {
    redis = new Redis(target.url ?? 'redis://127.0.0.1:6379', {
      enableAutoPipelining: true,
      ...commonOptions,
      ...options,
    });
  }
  // Errors surface on the commands that fail; the client keeps reconnecting.
  redis.on('error', () => {});
  defineDeclared(redis);
  return redis;
}

/** A connection of its own for blocking reads (BZPOPMIN, XREAD BLOCK), which hold it while they wait. */
export function blockingConnection(redis: RedisClient): RedisClient {
  const options: RedisOptions = {
    enableAutoPipelining: false,
    maxRetriesPerRequest: null,
    commandTimeout: undefined,
  };
  const dup: RedisClient =
    redis instanceof Redis
      ? redis.duplicate(options)
      : redis.duplicate(undefined, {
          enableAutoPipelining: false,
          redisOptions: { ...commonOptions, ...options },
        });
  dup.on('error', () => {});
  defineDeclared(dup);
  return dup;
}

export function isCluster(redis: RedisClient): redis is Cluster {
  return redis instanceof Cluster;
}

/**
 * Waits until `replicas` replicas of the node that holds `key` have every write made so far on
 * that connection (WAIT). On a cluster the WAIT goes to the key's node: it is pipelined behind a
 * command on that key, so both take the same connection. Returns the replicas reached.
 */
export async function waitForReplicas(
  redis: RedisClient,
  key: string,
  replicas: number,
  timeoutMs: number,
): Promise<number> {
  const reply = await redis.pipeline().exists(key).call('WAIT', replicas, timeoutMs).exec();
  const wait = reply?.[1];
  if (!wait || wait[0]) throw wait?.[0] ?? new Error('WAIT gave no reply');
  return Number(wait[1]);
}

export const STOPPED = Symbol('stopped');

export function stopSignal(): { promise: Promise<typeof STOPPED>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<typeof STOPPED>((r) => {
    fire = () => r(STOPPED);
  });
  return { promise, fire };
}

/**
 * Per-workspace loops that block on Redis: each gets a connection of its own and a stop signal,
 * and `interrupt` ends one at once (disconnecting its connection ends its blocking read).
 */
export class BlockingLoops {
  private readonly loops = new Map<string, { conn: RedisClient; stop: () => void }>();

  constructor(private readonly redis: RedisClient) {}

  async run<T>(
    workspace: string,
    body: (conn: RedisClient, stopped: Promise<typeof STOPPED>) => Promise<T>,
  ): Promise<T> {
    const conn = blockingConnection(this.redis);
    const stop = stopSignal();
    this.loops.set(workspace, { conn, stop: stop.fire });
    try {
      return await body(conn, stop.promise);
    } finally {
      conn.disconnect();
      if (this.loops.get(workspace)?.conn === conn) this.loops.delete(workspace);
    }
  }

  interrupt(workspace: string): void {
    const b = this.loops.get(workspace);
    b?.stop();
    b?.conn.disconnect();
    this.loops.delete(workspace);
  }
}

/** A blocking read raced with a stop signal and a deadline (the deadline rejects). */
export async function raceBlocking<T>(
  read: Promise<T>,
  stopped: Promise<typeof STOPPED>,
  deadlineMs: number,
): Promise<T | typeof STOPPED> {
  read.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`blocking read gave no answer in ${deadlineMs} ms`)),
      deadlineMs,
    );
  });
  try {
    return await Promise.race([read, stopped, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
