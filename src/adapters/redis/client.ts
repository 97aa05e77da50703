import { Redis, type RedisOptions } from 'ioredis';
import { defineScripts, type RedisClient } from './scripts.ts';

export interface RedisTarget {
  readonly url: string;
}

/**
 * A client for commands. Commands queue while disconnected (bounded by `maxRetriesPerRequest`),
 * and the client reconnects by itself with a capped backoff.
 */
export function connectRedis(target: RedisTarget, options: RedisOptions = {}): RedisClient {
  const redis = new Redis(target.url, {
    maxRetriesPerRequest: 2,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
    ...options,
  });
  // Errors surface on the commands that fail; the client keeps reconnecting.
  redis.on('error', () => {});
  defineScripts(redis);
  return redis;
}

/** A connection of its own for blocking reads (BZPOPMIN, XREAD BLOCK), which hold it while they wait. */
export function blockingConnection(redis: RedisClient): RedisClient {
  const options: RedisOptions = { enableAutoPipelining: false, maxRetriesPerRequest: null };
  const dup: RedisClient =
    redis instanceof Redis ? redis.duplicate(options) : redis.duplicate(undefined, { redisOptions: options });
  dup.on('error', () => {});
  defineScripts(dup);
  return dup;
}
