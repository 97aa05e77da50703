/**
 * What a failed bench workload says instead of a stack trace: what failed and what to do, in one
 * line (`bench <workload>` prints it after "<workload> failed: ", `bench all` keeps it as the run's
 * `error`).
 */
import { notRedisReply } from '../plain-failure.ts';
import type { Workload } from './options.ts';

/**
 * The command timeout of the clients a workload's failing command most likely ran on: bench's
 * clients have the default (src/adapters/redis/client.ts), audit's, replay's and cluster's 60 s.
 */
const TIMEOUT_MS: Partial<Record<Workload, number>> = { audit: 60_000, replay: 60_000, cluster: 60_000 };
const DEFAULT_TIMEOUT_MS = 2000;

/** The option that makes each workload's run smaller (less work per command, fewer commands). */
const SMALLER: Record<Workload, string> = {
  seed: '--contacts',
  floor: '--count',
  contract: '--contacts',
  decision: '--queues',
  e2e: '--rate',
  ingest: '--connections',
  fanout: '--subscribers',
  split: '--sizes',
  wide: '--sizes',
  large: '--sizes',
  policy: '--sizes',
  twin: '--sizes',
  steps: '--rounds',
  audit: '--events',
  replay: '--events',
  reference: '--contacts',
  cluster: '--contacts',
  timers: '--timers',
  idle: '--decisions',
};

/** Why `workload` failed with `err`, and what to do, in one line. */
export function failureReason(workload: Workload, err: unknown): string {
  const given = err instanceof Error ? err.message : String(err);
  const first = given.split('\n')[0] ?? given;
  const smaller = SMALLER[workload];
  if (/^Command timed out/.test(first))
    return `Redis did not answer within ${TIMEOUT_MS[workload] ?? DEFAULT_TIMEOUT_MS} ms (${first}): the machine may be overloaded, or Redis stopped answering; run again, or with a smaller ${smaller}`;
  // ioredis's "Protocol error ... Please report this." is no bug to report: what answers is not Redis.
  const notRedis = notRedisReply(first);
  if (notRedis !== undefined)
    return `what answers at the Redis address is not Redis (${notRedis}): check that --redis-url names the host and port of a Redis (or leave it out: a private redis-server), then run again`;
  if (/^NOPERM /.test(first))
    return `Redis refused a command (${first}): run bench as a Redis user allowed every command, or without --redis-url (on a private redis-server)`;
  if (/^OOM /.test(first))
    return `Redis ran out of memory (${first}): give it more (maxmemory) or run with a smaller ${smaller}`;
  if (
    /Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|Stream isn't writeable|Reached the max retries/.test(
      first,
    )
  )
    return `lost the connection to Redis (${first}): check that Redis is still running (a private redis-server may have been killed, e.g. out of memory), then run again`;
  // Anything else: the whole message (a process's output it quotes on the lines after the first
  // says why), never the stack.
  return given.includes('\n')
    ? `${given.trimEnd()}\n(run again; if it fails the same way, report it with this message)`
    : `${given}: run again; if it fails the same way, report it with this message`;
}
