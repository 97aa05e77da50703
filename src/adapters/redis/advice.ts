/**
 * What a log line about a failed Redis call tells the operator to do (docs/DEPLOYMENT.md, "Logs":
 * errors say what to do): one text, so every such line says it alike.
 */
export const CHECK_REDIS = 'Check that Redis is up and reachable (REDIS_URL or REDIS_CLUSTER_NODES).';

/** For a loop that retries on any error: what to look at if its retries go on. */
export const IF_IT_GOES_ON = `If it goes on, see err: most often Redis does not answer. ${CHECK_REDIS}`;

/** Redis at its memory limit (maxmemory, noeviction) refusing a write: it answers, so not CHECK_REDIS. */
export const FREE_MEMORY =
  'Redis is at its memory limit (maxmemory) and refuses writes: raise maxmemory or free memory (shorter LOG_RETENTION or CONTACT_RETENTION, the archiver running).';

/** IF_IT_GOES_ON, or FREE_MEMORY when `err` is Redis refusing a write for lack of memory. */
export function ifItGoesOn(err: unknown): string {
  return /^OOM\b|\bOOM command not allowed/.test(String((err as Error)?.message ?? err))
    ? `${FREE_MEMORY} It is retried.`
    : IF_IT_GOES_ON;
}
