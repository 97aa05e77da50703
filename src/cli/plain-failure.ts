/** How the command-line tools tell a user about an error they did not expect. */

/**
 * ioredis's message for a reply that is not RESP ("Protocol error, got "H" as reply type byte.
 * Please report this."): what answers is not Redis (an HTTP server, another service at that port).
 * Returns what it got, without the advice to report it; undefined for any other message.
 */
export function notRedisReply(message: string): string | undefined {
  const first = message.split('\n')[0] ?? message;
  if (!/^Protocol error\b/.test(first)) return undefined;
  return first.replace(/\s*Please report this\.?\s*$/, '').replace(/\.$/, '');
}

/**
 * An error that was not expected, as plain lines for a user (its message, never its stack): a
 * Redis that did not answer in time or a connection lost are said so, with what to check.
 */
export function plainFailure(err: unknown): string {
  const given = (err instanceof Error ? err.message : String(err)).trimEnd() || String(err);
  const first = given.split('\n')[0] ?? given;
  const notRedis = notRedisReply(first);
  if (notRedis !== undefined)
    return `what answers at the Redis address is not Redis (${notRedis}): check that --redis-url / REDIS_URL (or --cluster-nodes / REDIS_CLUSTER_NODES) names a Redis, then run again`;
  if (/^Command timed out/.test(first))
    return `Redis did not answer in time (${first}): it may be overloaded, paused (a failover) or stopped, or it dropped the connection (a client-output-buffer-limit); check it, then run again`;
  if (
    /Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|Stream isn't writeable|Reached the max retries/.test(
      first,
    )
  )
    return `lost the connection to Redis (${first}): check that Redis is still running and reachable, then run again`;
  return `${given} (run again; if it fails the same way, report it with this message)`;
}
