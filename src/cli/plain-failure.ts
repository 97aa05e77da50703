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

/** A Redis that did not answer in time, as ioredis says it: "Command timed out". */
const TIMED_OUT = /^Command timed out/;
/** A connection to Redis lost (closed, refused, reset), or ioredis's giving up reconnecting for a command. */
const CONNECTION_LOST =
  /Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|Stream isn't writeable|Reached the max retries/;

const firstLine = (err: unknown): string => {
  const given = (err instanceof Error ? err.message : String(err)).trimEnd() || String(err);
  return given.split('\n')[0] ?? given;
};

/**
 * Whether `err` says the tool's Redis is gone: it did not answer in time, or the connection was
 * lost. Anything more sent to it fails the same way, after as long again (the command timeout, or
 * the client's reconnections): a tool's cleanup after such a failure is skipped, not waited for.
 */
export function redisLost(err: unknown): boolean {
  // A reply (a refusal, a script's error) is Redis answering, whatever its text.
  if (err instanceof Error && err.name === 'ReplyError') return false;
  const first = firstLine(err);
  return TIMED_OUT.test(first) || CONNECTION_LOST.test(first);
}

/**
 * An error that was not expected, as plain lines for a user (its message, never its stack): a
 * Redis that did not answer in time or a connection lost are said so, with what to check.
 */
export function plainFailure(err: unknown): string {
  const given = (err instanceof Error ? err.message : String(err)).trimEnd() || String(err);
  const first = firstLine(err);
  const notRedis = notRedisReply(first);
  if (notRedis !== undefined)
    return `what answers at the Redis address is not Redis (${notRedis}): check that --redis-url / REDIS_URL (or --cluster-nodes / REDIS_CLUSTER_NODES) names a Redis, then run again`;
  if (TIMED_OUT.test(first))
    return `Redis did not answer in time (${first}): it may be overloaded, paused (a failover) or stopped, or it dropped the connection (a client-output-buffer-limit); check it, then run again`;
  if (CONNECTION_LOST.test(first))
    return `lost the connection to Redis (${first}): check that Redis is still running and reachable, then run again`;
  return `${given} (run again; if it fails the same way, report it with this message)`;
}
