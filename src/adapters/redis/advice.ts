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

/** Redis refusing writes because it cannot save its data (MISCONF): it answers, so not CHECK_REDIS. */
export const FIX_PERSISTENCE =
  'Redis refuses writes because it cannot persist its data: see its log (disk full or not writable) and fix that.';

/**
 * Redis refusing a command or a key to the user Switchboard logs in as (NOPERM; inside a Lua step
 * "The user executing the script can't run this command"): it answers, so not CHECK_REDIS.
 */
export const GRANT_ACL =
  'Redis refuses a command or key to the user Switchboard logs in as (see err): give that user Switchboard\'s ACL rule on every node (APP_ACL_RULE in src/adapters/redis/acl.ts; docs/SECURITY.md, "Your own Redis").';

/**
 * Redis refusing the login Switchboard gives (WRONGPASS, NOAUTH): it answers, so not CHECK_REDIS.
 */
export const CHECK_LOGIN =
  'Redis refuses the login Switchboard gives (see err): check the user and password in REDIS_URL or REDIS_CLUSTER_NODES, or REDIS_USERNAME and REDIS_PASSWORD, against the ACL user on every node (docs/SECURITY.md, "Your own Redis").';

/**
 * Redis refusing a new connection (maxclients reached), or this process out of file descriptors
 * (EMFILE): each workspace a process serves holds blocking connections of its own (the projector
 * role two, the dispatcher role one), so it is the number of workspaces that runs into the limit.
 */
export const RAISE_CONNECTION_LIMIT =
  'Redis refuses new connections (maxclients) or this process cannot open more (its open-file limit): each workspace a process serves holds 3 Redis connections of its own with the projector and dispatcher roles (docs/DEPLOYMENT.md, "Many workspaces"): raise Redis\'s maxclients and the process\'s open-file limit (ulimit -n, LimitNOFILE), or spread the workspaces over more Redis masters.';

/**
 * A failure Switchboard has no name for (a request answered 500, a promise nothing awaited): its
 * own fault, or a key of a workspace written by hand with a value of another type.
 */
export const REPORT_DEFECT =
  'A failure Switchboard does not expect: if err says WRONGTYPE, a key was written by other means (redis-cli TYPE on the sb:{<ws>}:* keys of the workspace in the request finds it; restore it from a backup, and stop what wrote it); otherwise it is a defect: report it with this line.';

/** An entry of a workspace's event stream that is no event: Switchboard appends none. */
export const FOREIGN_EVENT =
  "Switchboard appends no such entry: something else wrote to the workspace's event stream (sb:{<ws>}:events; position names the entry). The live feeds, GET /events and the statistics pass it over, and npm run audit reports it with any others; find what writes there and stop it (no client but Switchboard needs to write sb:* keys).";

/** The error's message, with the errors a transaction Redis aborted (EXECABORT) held before it. */
const message = (err: unknown): string => {
  const previous = (err as { previousErrors?: unknown[] } | undefined)?.previousErrors ?? [];
  return [err, ...previous].map((e) => String((e as Error)?.message ?? e)).join('; ');
};
const isOom = (m: string): boolean => /^OOM\b|\bOOM command not allowed/.test(m);
const isMisconf = (m: string): boolean => /^MISCONF\b|\bMISCONF Redis is configured/.test(m);
const isLoginRefused = (m: string): boolean => /\bWRONGPASS\b|\bNOAUTH\b/.test(m);
const isOutOfConnections = (m: string): boolean => /max number of clients reached|\bEMFILE\b/i.test(m);
const isDenied = (m: string): boolean =>
  /\bNOPERM\b|can't run this command|no permissions to (run|access)/i.test(m);

/**
 * Whether `err` is a failure every workspace of a process meets alike (Redis, or the connections
 * to it, not answering or refusing them, its memory or disk), not one of a workspace's own keys.
 */
export function isSharedFailure(err: unknown): boolean {
  const m = message(err);
  return (
    isOom(m) ||
    isMisconf(m) ||
    isLoginRefused(m) ||
    isOutOfConnections(m) ||
    /Command timed out|Connection is closed|ECONNREFUSED|ECONNRESET|Stream isn't writeable|CLUSTERDOWN|TRYAGAIN|LOADING|READONLY|MASTERDOWN|^MOVED \d+ |^ASK \d+ |Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes is available|Reached the max retries per request|blocking read gave no answer/i.test(
      m,
    )
  );
}

/**
 * What to do about `err`, a failed Redis call (or a reason that names its error): FREE_MEMORY,
 * FIX_PERSISTENCE, GRANT_ACL, CHECK_LOGIN, RAISE_CONNECTION_LIMIT, or CHECK_REDIS.
 */
export function redisAdvice(err: unknown): string {
  const m = message(err);
  if (isOom(m)) return FREE_MEMORY;
  if (isMisconf(m)) return FIX_PERSISTENCE;
  if (isDenied(m)) return GRANT_ACL;
  if (isOutOfConnections(m)) return RAISE_CONNECTION_LIMIT;
  return isLoginRefused(m) ? CHECK_LOGIN : CHECK_REDIS;
}

/**
 * IF_IT_GOES_ON, or FREE_MEMORY / FIX_PERSISTENCE / GRANT_ACL / CHECK_LOGIN /
 * RAISE_CONNECTION_LIMIT when `err` is Redis (or the process) refusing.
 */
export function ifItGoesOn(err: unknown): string {
  const m = message(err);
  return isOom(m) || isMisconf(m) || isDenied(m) || isLoginRefused(m) || isOutOfConnections(m)
    ? `${redisAdvice(err)} It is retried.`
    : IF_IT_GOES_ON;
}
