/**
 * bench's first question to its Redis, before any workload: a PING. A single workload (bench.ts)
 * and `all` (all.ts) ask it the same way and say the same line when it fails.
 */
import { mask } from '../../adapters/redis/client.ts';
import type { RedisClient } from '../../adapters/redis/scripts.ts';
import { notRedisReply } from '../plain-failure.ts';

/**
 * Whether `admin` (a client of `url`) answers a PING: undefined when it does, else the one line
 * (with its `bench: ` prefix and newline) that says why not and what to check. `given` says
 * whether the user named the Redis (--redis-url) rather than bench starting a private one.
 */
export async function redisPingProblem(
  admin: RedisClient,
  url: string,
  given: boolean,
): Promise<string | undefined> {
  let lastError: Error | undefined;
  const noted = (err: Error) => {
    lastError = err;
  };
  admin.on('error', noted);
  try {
    await admin.ping();
    return undefined;
  } catch (err) {
    const said = (lastError ?? (err as Error)).message;
    // Something that is not Redis answers there (an HTTP server, another service): ioredis says
    // "Protocol error ... Please report this.", which is no bug to report; say what to check.
    const notRedis = [said, (err as Error).message].map(notRedisReply).find((m) => m !== undefined);
    return notRedis === undefined
      ? `bench: cannot reach Redis at ${mask(url)}: ${said}\n`
      : `bench: what answers at ${mask(url)} is not Redis (${notRedis}): ${
          given
            ? 'check --redis-url, that it names the host and port of a Redis'
            : "another service took the private redis-server's port"
        }, then run again\n`;
  } finally {
    admin.off('error', noted);
  }
}
