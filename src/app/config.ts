/**
 * Configuration from the environment, checked at start: every bad value is named with what it
 * should be, and the process does not start until all are right.
 */
import { existsSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { sequenceS } from 'fp-ts/lib/Apply.js';
import { isNonEmpty } from 'fp-ts/lib/Array.js';
import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import * as NEA from 'fp-ts/lib/NonEmptyArray.js';
import type { LimitSettings } from '../adapters/http/limits.ts';
import {
  LOGIN_ENCODING,
  mask,
  parseSeed,
  type RedisTarget,
  undecodableLogin,
} from '../adapters/redis/client.ts';
import { ARCHIVE_PAUSE_POINTS, type ArchivePausePoint } from '../archive/archiver.ts';
import {
  DEFAULT_CONTACT_RETENTION,
  DEFAULT_RETENTION,
  parseContactRetention,
  parseRetention,
  type Retention,
} from '../archive/retention.ts';
import { decimalInteger } from '../domain/decimal.ts';
import { IDEMPOTENCY_TTL_S } from '../domain/values.ts';

export type Role = 'api' | 'projector' | 'dispatcher' | 'archiver';
export const ROLES: readonly Role[] = ['api', 'projector', 'dispatcher', 'archiver'];

/**
 * Switchboard's settings, read from the environment (CONFIG_ENTRIES below). The limits (RATE_LIMIT,
 * WS_MAX_PER_KEY, WS_MAX_PER_INSTANCE, the header, URL and timeout bounds, CORS_ORIGINS) are the
 * fields of LimitSettings (src/adapters/http/limits.ts), described there once.
 */
export interface Config extends LimitSettings {
  readonly redisUrl: string | undefined;
  readonly redisClusterNodes: readonly string[];
  /** Login used where REDIS_URL or the seeds carry none (REDIS_USERNAME, REDIS_PASSWORD). */
  readonly redisUsername: string | undefined;
  readonly redisPassword: string | undefined;
  /** PEM files for rediss:// (REDIS_TLS_CA, REDIS_TLS_CERT, REDIS_TLS_KEY). */
  readonly redisTls: { caFile?: string; certFile?: string; keyFile?: string };
  readonly host: string;
  readonly port: number;
  /** A port of its own serving GET /metrics (METRICS_PORT, on HOST); undefined: only the API's /metrics. */
  readonly metricsPort: number | undefined;
  readonly roles: readonly Role[];
  readonly workspaces: readonly string[];
  readonly discoverWorkspaces: boolean;
  readonly commandTimeoutMs: number;
  readonly queryTimeoutMs: number;
  readonly bodyLimit: number;
  readonly logLevel: string;
  /** A request that takes this long logs its line at info (others succeeding at debug). */
  readonly slowRequestMs: number;
  readonly dataDir: string;
  readonly projectBatch: number;
  readonly projectStepMs: number;
  readonly dispatchBatch: number;
  readonly dispatchStepMs: number;
  readonly shutdownTimeoutMs: number;
  /**
   * On a stop, how long an instance registered for the load balancer keeps serving after leaving
   * the registry, so the load balancer takes it out before it closes its connections.
   */
  readonly lbDrainMs: number;
  readonly idempotencyTtlS: number;
  readonly deadConsumerIdleMs: number;
  readonly liveMaxBufferedBytes: number;
  readonly liveMaxHeldEvents: number;
  /** A live feed silent this long gets a heartbeat message (docs/API.md); undefined: LIVE_HEARTBEAT_MS=off. */
  readonly liveHeartbeatMs: number | undefined;
  /** How often a live feed's socket is pinged; one that neither answers nor takes any byte for an interval is dropped. */
  readonly livePingMs: number;
  readonly durability: 'local' | 'replicated';
  readonly replicaWaitMs: number;
  readonly dispatchLeases: boolean;
  /** Run the projector's and dispatcher's steps as Redis Functions where Redis allows it. */
  readonly luaFunctions: boolean;
  readonly leaseTtlMs: number;
  readonly advertise: { host: string; port: number } | undefined;
  readonly archiveDir: string;
  readonly logRetention: Retention;
  /** How long finished contacts' documents are kept (ms); undefined: for ever. */
  readonly contactRetentionMs: number | undefined;
  readonly archiveSegmentEntries: number;
  readonly archiveEveryMs: number;
  readonly archivePauseAt: ArchivePausePoint | undefined;
  /** A state snapshot every this many events (the archiver takes them; GET /state?at= starts from one). */
  readonly snapshotEveryEvents: number;
  /** API keys required on every workspace route (docs/SECURITY.md); off only for local experiments. */
  readonly auth: 'on' | 'off';
  /** Proxies whose X-Forwarded-For is believed (TRUST_PROXY: addresses or CIDRs); empty: none. */
  readonly trustProxy: readonly string[];
}

export interface ConfigEntry {
  readonly name: string;
  readonly default: string;
  readonly description: string;
}

/** Every variable, its default and meaning: the README's configuration table comes from here. */
export const CONFIG_ENTRIES: readonly ConfigEntry[] = [
  {
    name: 'REDIS_URL',
    default: '(unset)',
    description:
      'Redis to use (redis:// or rediss://: TLS; database 0, so no path or /0, and no query), with the login in it or in REDIS_USERNAME/REDIS_PASSWORD. Unset: a private redis-server is started with AOF under DATA_DIR, and Switchboard logs in to it as its least-privilege ACL user.',
  },
  {
    name: 'REDIS_CLUSTER_NODES',
    default: '(unset)',
    description:
      'Comma-separated seeds of a Redis Cluster, instead of REDIS_URL (set one or the other): host:port, user:password@host:port, or redis:// / rediss:// URLs (rediss: TLS); one login for every node.',
  },
  {
    name: 'REDIS_USERNAME',
    default: '(unset)',
    description:
      'Redis ACL user to log in as when REDIS_URL or the seeds carry none (docs/SECURITY.md: the least-privilege user); set beside one that carries a user, refused at start. The private redis-server makes its own.',
  },
  {
    name: 'REDIS_PASSWORD',
    default: '(unset)',
    description:
      "That user's password (keeps it out of the URL); set beside a REDIS_URL or seeds that carry a password, refused at start. The private redis-server keeps its own in DATA_DIR/redis-credentials.json (owner-only).",
  },
  {
    name: 'REDIS_TLS_CA',
    default: '(unset)',
    description:
      "PEM file of the CA that signed the Redis server's certificate, for rediss:// with a private CA (default: the system's CAs). Set with a redis:// target or the private Redis, the REDIS_TLS_* variables are refused at start.",
  },
  {
    name: 'REDIS_TLS_CERT',
    default: '(unset)',
    description:
      'PEM client certificate for rediss:// when the server asks for one (tls-auth-clients yes); with REDIS_TLS_KEY.',
  },
  { name: 'REDIS_TLS_KEY', default: '(unset)', description: "The client certificate's PEM private key." },
  {
    name: 'HOST',
    default: '127.0.0.1',
    description:
      'Address the HTTP API listens on (0.0.0.0 behind a load balancer): a host name (labels of letters, digits, - and _, none empty; the last not a number) or an IPv4 address as four decimal numbers from 0 to 255 (10.0.0.5), or an IPv6 address (::1, no brackets). The other forms the resolver reads as IPv4 are refused: a leading 0 (010.0.0.1, octal), hex (0x7f.0.0.1), fewer parts (127.1) or one number (2130706433); so is a value ending in a number that is no address (4294967296, api.1), and an IPv4 address with letters at the end (10.0.0.1a), which would be looked up as a name.',
  },
  { name: 'PORT', default: '8080', description: 'Port of the HTTP API.' },
  {
    name: 'METRICS_PORT',
    default: '(unset)',
    description:
      'A port of its own (on HOST) serving GET /metrics: the only /metrics of a process without the api role (ROLES=dispatcher, projector or archiver); docs/METRICS.md.',
  },
  {
    name: 'ROLES',
    default: 'api,projector,dispatcher,archiver',
    description:
      'Roles this process runs: any of api, projector, dispatcher, archiver (moves old stream entries to ARCHIVE_DIR; docs/ARCHIVE.md). A setting only roles it does not run read (LB_DRAIN_MS and the other API settings on a worker, DISPATCH_LEASES without dispatcher, LOG_RETENTION without archiver) has no effect: the start warns of it, naming it and the roles that read it.',
  },
  {
    name: 'WORKSPACES',
    default: 'default',
    description:
      'Workspaces served from the start, besides default (always served: the first start makes its admin key); others are found as they appear (DISCOVER_WORKSPACES).',
  },
  {
    name: 'DISCOVER_WORKSPACES',
    default: 'true',
    description: 'Serve workspaces that appear in the registry (true/false).',
  },
  {
    name: 'COMMAND_TIMEOUT_MS',
    default: '2000',
    description: 'How long a command request waits for its outcome before answering 202.',
  },
  {
    name: 'QUERY_TIMEOUT_MS',
    default: '2000',
    description: 'How long a query with minPosition waits for the projections.',
  },
  { name: 'BODY_LIMIT', default: '65536', description: 'Largest request body, bytes (larger: 413).' },
  {
    name: 'LOG_LEVEL',
    default: 'info',
    description: 'pino level: fatal, error, warn, info, debug, trace, silent.',
  },
  {
    name: 'SLOW_REQUEST_MS',
    default: '1000',
    description:
      "A request's log line is at debug, or at info when it took this long (ms), was refused (4xx) or answered 202; 5xx at warn.",
  },
  {
    name: 'DATA_DIR',
    default: './data',
    description:
      'Where the private redis-server keeps its AOF, and the first start stores the admin API key of default (admin-key, 0600); made owner-only (0700) when it does not exist. One process with a private redis-server per DATA_DIR (it holds switchboard.pid while it runs): a second is refused.',
  },
  { name: 'PROJECT_BATCH', default: '200', description: 'Most commands one projector step applies.' },
  {
    name: 'PROJECT_STEP_MS',
    default: '2',
    description:
      'How long one projector step may hold Redis (by its clock): the step looks at the clock every 4 commands and ends once this has run out, and the next step goes on, so a backlog never holds Redis (and every other workspace on it) for a whole PROJECT_BATCH at once. 0: bounded by PROJECT_BATCH only.',
  },
  {
    name: 'DISPATCH_BATCH',
    default: '64',
    description:
      'Most decisions one dispatcher step makes (each step also reads at most about 1,024 entries).',
  },
  {
    name: 'DISPATCH_STEP_MS',
    default: '2',
    description:
      'How long one dispatcher step may hold Redis (by its clock): the step looks at the clock every 4 decisions and ends once this has run out, and the next step goes on, so a backlog never holds Redis (and every other workspace on it) for a whole DISPATCH_BATCH at once. 0: bounded by DISPATCH_BATCH and the reads only.',
  },
  {
    name: 'SHUTDOWN_TIMEOUT_MS',
    default: '10000',
    description:
      'How long SIGTERM waits for in-flight work before forcing exit; requests get the first half, then connections still open are closed.',
  },
  {
    name: 'LB_DRAIN_MS',
    default: '1500',
    description:
      "On SIGTERM, an API instance keeps serving this long before it closes its connections, with GET /health answering 503 shutting-down and /status state stopping, so the load balancer stops sending it requests first: a registered one (ADVERTISE_ADDRESS) also leaves the registry (the HAProxy backend sync runs every second); one that is not (a balancer that finds it by DNS, as the Docker compose) is taken out by the balancer's /health check, so make it at least the check's fall × inter. Past it, the instance serves on while requests other than /health and /metrics still arrive (the balancer has not taken it out yet), until none has for 0.5 s, at most LB_DRAIN_MS more. Then SHUTDOWN_TIMEOUT_MS applies. 0: close at once.",
  },
  {
    name: 'DURABILITY',
    default: 'local (replicated with REDIS_CLUSTER_NODES)',
    description:
      'replicated: a command is acknowledged only once a replica holds it (WAIT), else 503; local: once the primary has it.',
  },
  {
    name: 'REPLICA_WAIT_MS',
    default: '1000',
    description:
      'How long a replicated acknowledgement waits for a replica before answering 503 (at most 1500); refused at start with local durability.',
  },
  {
    name: 'DISPATCH_LEASES',
    default: 'true',
    description: 'One dispatcher per workspace at a time, by lease (true/false).',
  },
  {
    name: 'LUA_FUNCTIONS',
    default: 'true',
    description:
      "Run the projector's and dispatcher's steps as Redis Functions (FUNCTION LOAD once, FCALL), which define their code once instead of on every call; false, or a Redis without functions (before 7.0, or an ACL without FUNCTION LOAD): scripts (EVALSHA) only (true/false).",
  },
  {
    name: 'LEASE_TTL_MS',
    default: '3000',
    description:
      "A dispatcher lease's lifetime: a dead dispatcher's workspaces move to another within about this long.",
  },
  {
    name: 'ADVERTISE_ADDRESS',
    default: '(unset)',
    description:
      'host:port this API instance registers under (a heartbeat in Redis) so HAProxy adds it at run time; auto: HOST:PORT. The host is a host name or an IPv4 address as HOST takes them (four decimal numbers: 127.1 and 10.0.0.1a are refused), or an IPv6 address in brackets ([fd00::5]:8080; ::1:8080 is refused). A wildcard address (0.0.0.0, ::) is refused: it is where to listen, not where to be reached. Refused too on a process without the api role (ROLES): only an API instance registers.',
  },
  {
    name: 'IDEMPOTENCY_TTL_S',
    default: String(IDEMPOTENCY_TTL_S.default),
    description: 'How long an Idempotency-Key is remembered, seconds.',
  },
  {
    name: 'DEAD_CONSUMER_IDLE_MS',
    default: '600000',
    description:
      "A projector consumer idle this long with no pending commands (a stopped or killed projector's) is removed from the consumer group.",
  },
  {
    name: 'RATE_LIMIT',
    default: '5000',
    description:
      'Requests a second per API key, counted in Redis across instances (without a key, AUTH=off: per client address); past it 429 with Retry-After. off: no limit.',
  },
  {
    name: 'RATE_LIMIT_BURST',
    default: '2 x RATE_LIMIT',
    description:
      'Requests a key may send at once after being idle (the bucket of the rate limit); refused at start with RATE_LIMIT=off.',
  },
  {
    name: 'WS_MAX_PER_KEY',
    default: '5000',
    description:
      'Open WebSockets per API key (without a key: per client address), across instances; past it the upgrade answers 429. off: no cap.',
  },
  {
    name: 'WS_MAX_PER_INSTANCE',
    default: '10000',
    description: 'Open WebSockets on one instance; past it the upgrade answers 503. off: no cap.',
  },
  {
    name: 'MAX_HEADER_BYTES',
    default: '16384',
    description: 'Largest request line and headers, bytes (larger: 431).',
  },
  {
    name: 'MAX_URL_BYTES',
    default: '8192',
    description: 'Longest request target (path and query), bytes (longer: 414).',
  },
  {
    name: 'HEADERS_TIMEOUT_MS',
    default: '10000',
    description: 'How long a client may take to send the request line and headers (then 408 and closed).',
  },
  {
    name: 'REQUEST_TIMEOUT_MS',
    default: '30000',
    description: 'How long a client may take to send a whole request, body included (then 408 and closed).',
  },
  {
    name: 'KEEP_ALIVE_TIMEOUT_MS',
    default: '72000',
    description: 'How long a kept-alive connection may sit idle between requests before it is closed.',
  },
  {
    name: 'CORS_ORIGINS',
    default: '(unset)',
    description:
      'Comma-separated browser origins (https://app.example.com) allowed to call the API from a page (CORS). Unset: CORS off, no Access-Control-* header is ever sent.',
  },
  {
    name: 'TRUST_PROXY',
    default: '(unset)',
    description:
      'Comma-separated addresses or CIDRs of the proxies in front (HAProxy): a request from one of them has its client address (logs, rate limit without a key) taken from X-Forwarded-For. Unset: the peer address, X-Forwarded-For ignored.',
  },
  {
    name: 'LIVE_MAX_BUFFERED_BYTES',
    default: '8388608',
    description:
      'A WebSocket subscriber with more than this many bytes of live events unsent is too slow: closed with 1013 and the position to resume from. A replay waits for its subscriber to read below half of it before each page, and after its last one before live events are held to it.',
  },
  {
    name: 'LIVE_MAX_HELD_EVENTS',
    default: '10000',
    description:
      'Most live events held for a WebSocket subscriber while its replay runs (only those its filters keep); past it, closed with 1013 and the position to resume from.',
  },
  {
    name: 'LIVE_HEARTBEAT_MS',
    default: '10000',
    description:
      'A live feed that sent nothing for this long sends a heartbeat message ({"heartbeat":{after,at,everyMs}}) so a client can tell a dead path from a quiet feed, and sends one as it opens, naming where it starts (docs/API.md); off: none (the pages, and the typed client unless given heartbeatMs: 0, then take 20 s of silence for a dead path and reopen a quiet feed that often, losing nothing).',
  },
  {
    name: 'LIVE_PING_MS',
    default: '15000',
    description:
      'How often a live feed is sent a WebSocket ping. A socket that answered no ping by the next one (15 to 30 s with the default) is dropped without a close, unless it is taking the bytes waiting for it (a client reading a long replay over a slow link answers late); a path that died with bytes waiting is dropped one interval later.',
  },
  {
    name: 'ARCHIVE_DIR',
    default: 'DATA_DIR/archive',
    description:
      'Where the archiver keeps segments (one folder per workspace and stream); one place shared by every archiver.',
  },
  {
    name: 'LOG_RETENTION',
    default: DEFAULT_RETENTION,
    description:
      'How long command and event entries stay in Redis before the archiver moves them: an age (24h; ms, s, m, h, d), a count of entries (1000000), or both (24h,1000000: past either).',
  },
  {
    name: 'CONTACT_RETENTION',
    default: DEFAULT_CONTACT_RETENTION,
    description:
      'How long a finished contact (completed, abandoned or expired) stays readable at GET /contacts/{id} before the archiver has its document forgotten (ContactsForgotten; its history stays in the log): an age (1h; ms, s, m, h, d) or off.',
  },
  {
    name: 'ARCHIVE_SEGMENT_ENTRIES',
    default: '10000',
    description:
      'Most entries in one archive segment (one archiver step). The step that marks a segment trims its entries from Redis at once, every workspace on that Redis waiting: about 0.5 ms at 10,000 and 3 ms per 100,000 on a 2-core machine (test/routing/step-bound-edges-1.test.ts holds 10,000 under 5 ms), so keep it at 100,000 or less where workspaces share a Redis.',
  },
  {
    name: 'ARCHIVE_EVERY_MS',
    default: '10000',
    description: 'Pause of the archiver between passes once a pass found less than a full segment to move.',
  },
  {
    name: 'ARCHIVE_PAUSE_AT',
    default: '(unset)',
    description:
      'Test hook: the archiver stops for good at segment-written or trimmed (crash tests kill it there).',
  },
  {
    name: 'SNAPSHOT_EVERY_EVENTS',
    default: '100000',
    description:
      'The archiver writes a state snapshot to the archive every this many archived events; GET /state?at= replays from the latest one at or before its position (at most this many events, in the archived part of the log).',
  },
  {
    name: 'AUTH',
    default: 'on',
    description:
      'on: every /v1/workspaces route needs an API key (Authorization: Bearer; the first start stores an admin key for default at DATA_DIR/admin-key; docs/SECURITY.md). off: no key is asked for, for local experiments only (a warning at start, and /status says auth "off").',
  },
];

/**
 * The settings only some roles read, each with those roles (every other variable is read by any
 * process). ADVERTISE_ADDRESS without api is refused (parseConfig); the others, set for a process
 * that runs none of their roles, are named in a warning at start (unreadSettings): they are often
 * shared by every process of a deployment.
 */
export const ROLE_SETTINGS: Readonly<Record<string, readonly Role[]>> = {
  ADVERTISE_ADDRESS: ['api'],
  LB_DRAIN_MS: ['api'],
  COMMAND_TIMEOUT_MS: ['api'],
  QUERY_TIMEOUT_MS: ['api'],
  BODY_LIMIT: ['api'],
  SLOW_REQUEST_MS: ['api'],
  DURABILITY: ['api'],
  REPLICA_WAIT_MS: ['api'],
  IDEMPOTENCY_TTL_S: ['api'],
  AUTH: ['api'],
  RATE_LIMIT: ['api'],
  RATE_LIMIT_BURST: ['api'],
  WS_MAX_PER_KEY: ['api'],
  WS_MAX_PER_INSTANCE: ['api'],
  MAX_HEADER_BYTES: ['api'],
  MAX_URL_BYTES: ['api'],
  HEADERS_TIMEOUT_MS: ['api'],
  REQUEST_TIMEOUT_MS: ['api'],
  KEEP_ALIVE_TIMEOUT_MS: ['api'],
  CORS_ORIGINS: ['api'],
  TRUST_PROXY: ['api'],
  LIVE_MAX_BUFFERED_BYTES: ['api'],
  LIVE_MAX_HELD_EVENTS: ['api'],
  LIVE_HEARTBEAT_MS: ['api'],
  LIVE_PING_MS: ['api'],
  PROJECT_BATCH: ['projector'],
  PROJECT_STEP_MS: ['projector'],
  DEAD_CONSUMER_IDLE_MS: ['projector'],
  DISPATCH_BATCH: ['dispatcher'],
  DISPATCH_STEP_MS: ['dispatcher'],
  DISPATCH_LEASES: ['dispatcher'],
  // The dispatcher's leases, and those of the archiver and of the projector's interval projection.
  LEASE_TTL_MS: ['projector', 'dispatcher', 'archiver'],
  // The archive is read by the API (history, state at a position) and the interval projection.
  ARCHIVE_DIR: ['api', 'projector', 'archiver'],
  LOG_RETENTION: ['archiver'],
  CONTACT_RETENTION: ['archiver'],
  ARCHIVE_SEGMENT_ENTRIES: ['archiver'],
  ARCHIVE_EVERY_MS: ['archiver'],
  ARCHIVE_PAUSE_AT: ['archiver'],
  SNAPSHOT_EVERY_EVENTS: ['archiver'],
};

/** The variables set in `env` (not blank) that no role in `roles` reads, each with the roles that do. */
export function unreadSettings(
  env: NodeJS.ProcessEnv,
  roles: readonly Role[],
): { name: string; readBy: readonly Role[] }[] {
  return Object.entries(ROLE_SETTINGS)
    .filter(([name, readBy]) => (env[name] ?? '').trim() !== '' && !readBy.some((r) => roles.includes(r)))
    .map(([name, readBy]) => ({ name, readBy }));
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** A variable's value, or every problem found in it (each naming the variable). */
type Checked<T> = E.Either<NEA.NonEmptyArray<string>, T>;

/** Checks every variable and keeps every problem, not only the first. */
const everyVariable = sequenceS(E.getApplicativeValidation(NEA.getSemigroup<string>()));

/** Why `value` is wrong, or undefined when it is right. */
type Check = (value: string) => string | undefined;

/** Readers of the environment: a blank value counts as unset and takes the default. */
function variables(env: NodeJS.ProcessEnv) {
  const raw = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const checked = <T>(name: string, value: T, problems: (string | undefined)[]): Checked<T> => {
    const named = problems.filter((p) => p !== undefined).map((p) => `${name}: ${p}`);
    return isNonEmpty(named) ? E.left(named) : E.right(value);
  };
  const optional = (name: string, check: Check): Checked<string | undefined> => {
    const value = raw(name);
    return checked(name, value, value === undefined ? [] : [check(value)]);
  };
  return {
    text: (name: string, def: string, check?: Check): Checked<string> => {
      const value = raw(name) ?? def;
      return checked(name, value, check ? [check(value)] : []);
    },
    optional,
    int: (name: string, def: number, min: number, max: number): Checked<number> => {
      const value = raw(name);
      const n = value === undefined ? def : decimalInteger(value);
      return checked(name, n ?? def, [
        value === undefined || (n !== undefined && n >= min && n <= max)
          ? undefined
          : `must be an integer from ${min} to ${max} (got "${value}")`,
      ]);
    },
    bool: (name: string, def: boolean): Checked<boolean> => {
      const value = raw(name);
      if (value === undefined) return E.right(def);
      if (/^(true|1|yes)$/i.test(value)) return E.right(true);
      if (/^(false|0|no)$/i.test(value)) return E.right(false);
      return checked(name, def, [`must be true or false (got "${value}")`]);
    },
    /**
     * A comma-separated list; every item is checked, then the list as a whole. An empty item (two
     * commas together, or one at an end) is refused, not dropped: REDIS_CLUSTER_NODES="," read as
     * no cluster, and npm start ran on a private Redis. The value is not shown (seeds may carry a
     * password); the item's place is.
     */
    list: (
      name: string,
      def: string,
      item: Check,
      whole: (items: string[]) => string | undefined = () => undefined,
    ) => {
      const value = raw(name) ?? def;
      const items = value === '' ? [] : value.split(',').map((s) => s.trim());
      const empty = items.indexOf('');
      if (empty >= 0)
        return checked(
          name,
          [],
          [
            `has an empty item (item ${empty + 1} of ${items.length}): two commas together, or one at an end; write the items separated by single commas`,
          ],
        );
      return checked(name, items, [...items.map(item), whole(items)]);
    },
  };
}

/** REDIS_URL's check (the CLIs' --redis-url too); the value is shown with its password masked. */
export const isRedisUrl: Check = (value) => {
  try {
    const { protocol, hostname, port, pathname, search } = new URL(value);
    if (protocol === 'redis:' || protocol === 'rediss:') {
      if (hostname === '') return `must name a host, such as redis://127.0.0.1:6379 (got "${mask(value)}")`;
      // No Redis listens on port 0: the process would start and stay paused.
      if (port === '0') return `must name a port from 1 to 65535, or none for 6379 (got "${mask(value)}")`;
      // Switchboard's keys live in database 0, the only one a Redis Cluster has.
      if (pathname !== '' && pathname !== '/' && pathname !== '/0')
        return `must use database 0 (no path, or /0), as a Redis Cluster has only that one (got "${mask(value)}")`;
      // The client would take a query's parameters as connection options (?db=3 selects database 3).
      if (search !== '')
        return `must have no query (?...): the database is 0 and the login and TLS come from the REDIS_* variables (got "${mask(value)}")`;
      // The client decodes the login: a "%" not written %25 would end the process at its connection.
      if (undecodableLogin(value)) return `${LOGIN_ENCODING} (got "${mask(value)}")`;
      return undefined;
    }
  } catch {
    /* not a URL */
  }
  return `must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379 (got "${mask(value)}")`;
};

/** A label of a host name: letters, digits, - and _, not starting or ending with -. */
const LABEL = '[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?';
const HOST_NAME = new RegExp(`^${LABEL}(\\.${LABEL})*$`);

/** A number as the last label (digits, or 0x and hex digits): the value is read as an IPv4 address. */
const ENDS_IN_NUMBER = /(^|\.)(\d+|0[xX][0-9A-Fa-f]*)$/;
/** An IPv4 address as four decimal numbers from 0 to 255, none with a leading 0. */
const DOTTED_DECIMAL = /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/**
 * The IPv4 address the resolver (inet_aton, behind getaddrinfo) reads `h` as, in dotted decimal, or
 * undefined when it reads none: one to four parts, each decimal, octal (a leading 0) or hex (0x),
 * the last filling the bytes left (127.1 is 127.0.0.1, 2130706433 too).
 */
function resolverIPv4(h: string): string | undefined {
  const parts: number[] = [];
  for (const p of h.split('.')) {
    const n = /^0[xX][0-9A-Fa-f]+$/.test(p)
      ? Number.parseInt(p.slice(2), 16)
      : /^0[0-7]*$/.test(p)
        ? Number.parseInt(p, 8)
        : /^[1-9]\d*$/.test(p)
          ? Number(p)
          : Number.NaN;
    if (!(n <= 0xffffffff)) return undefined;
    parts.push(n);
  }
  const last = parts.pop() as number;
  if (parts.length > 3 || parts.some((n) => n > 255) || last >= 2 ** (8 * (4 - parts.length)))
    return undefined;
  const value = parts.reduce((v, n, i) => v + n * 2 ** (8 * (3 - i)), last);
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/**
 * What is wrong with `h` as a host name or an IPv4 address (HOST, ADVERTISE_ADDRESS's host), as
 * words to put after the value, '' when no more can be said, or undefined when it is right. Labels
 * are not empty (api..1). A value whose last label is a number (digits, or 0x and hex digits) is an
 * IPv4 address, as the resolver and URLs read it, and only four decimal numbers from 0 to 255 are
 * taken: the forms inet_aton reads otherwise than written are refused (a leading 0 is octal, 010 is
 * 8; hex parts, 0x7f.1; fewer parts, 127.1 is 127.0.0.1; a single number, 2130706433), and one no
 * form reads (4294967296, 999.1, api.1) went to a name lookup.
 */
function hostNameProblem(h: string): string | undefined {
  if (h.split('.').includes('')) return 'which has an empty label (nothing between two dots, or at an end)';
  // Numbers, then a last label that starts with a digit and is no number (10.0.0.1a): a typo in
  // an IPv4 address, which would go to a name lookup (no top-level domain starts with a digit).
  if (/^(\d+\.)+\d[A-Za-z0-9_-]*$/.test(h) && !ENDS_IN_NUMBER.test(h))
    return 'which looks like an IPv4 address with letters at the end: write four decimal numbers from 0 to 255, such as 10.0.0.5';
  if (!ENDS_IN_NUMBER.test(h) || DOTTED_DECIMAL.test(h)) return HOST_NAME.test(h) ? undefined : '';
  const read = resolverIPv4(h);
  const write = `write the four decimal numbers (${read ?? '10.0.0.5'})`;
  if (/^[0-9.]+$/.test(h) && h.split('.').some((n) => /^0\d/.test(n))) {
    const decimal = h.replace(/(^|\.)0+(?=\d)/g, '$1');
    return `a number with a leading 0, which the resolver reads as octal (010 is 8${read ? `; this is ${read}` : ''}): ${
      DOTTED_DECIMAL.test(decimal)
        ? `write ${decimal} for the decimal`
        : 'write four decimal numbers from 0 to 255, such as 10.0.0.5'
    }`;
  }
  return read
    ? `which the resolver reads as ${read} (a short, hex or single-number IPv4 form): ${write}`
    : 'which is no IPv4 address: one is four decimal numbers from 0 to 255, such as 10.0.0.5 (and a host name does not end in a number)';
}

/** A host name or an IPv4 or IPv6 address to listen on (hostNameProblem; IPv6 as net.isIP reads it). */
const isHost: Check = (h) => {
  const problem = h.includes(':') ? (isIP(h) === 6 ? undefined : '') : hostNameProblem(h);
  return problem === undefined
    ? undefined
    : `must be a host name or an IP address to listen on, such as 127.0.0.1 or 0.0.0.0 (got "${h}"${problem ? `, ${problem}` : ''})`;
};

/** A directory, or a path where none is yet (it is made at start). */
const directoryOrNone: Check = (dir) =>
  !existsSync(dir) || statSync(dir).isDirectory()
    ? undefined
    : `must be a directory, or a path where none is yet (got "${dir}", which is not a directory)`;

/** REDIS_USERNAME's check (the tools' too). */
export const redisUsernameProblem: Check = (u) =>
  /^[!-~]+$/.test(u) ? undefined : 'must be a user name without spaces';

/** A file there is (REDIS_TLS_*; the tools' too). */
export const readableFile: Check = (file) =>
  existsSync(file) && statSync(file).isFile() ? undefined : `no such file: "${file}"`;

/** The seeds of one cluster share one login and one TLS setting (the tools' seeds too). */
export function sameLoginAndTls(items: string[]): string | undefined {
  const seeds = items.map(parseSeed).filter((s) => typeof s !== 'string');
  const logins = new Set(
    seeds
      .filter((s) => s.username !== undefined || s.password !== undefined)
      .map((s) => `${s.username}:${s.password}`),
  );
  if (logins.size > 1) return 'every seed that carries a login must carry the same one';
  if (new Set(seeds.map((s) => s.tls)).size > 1) return 'use rediss:// for every seed or for none';
  return undefined;
}

type TlsVariables = {
  redisTlsCa: string | undefined;
  redisTlsCert: string | undefined;
  redisTlsKey: string | undefined;
};

/**
 * REDIS_TLS_* apply to a rediss:// target only: set with redis://, with seeds that are not
 * rediss://, or with the private Redis, they would be ignored and the connection made in clear.
 * `set`: the variables given; `url` or `seeds`: the target, each with the name it was given by (a
 * variable, or a tool's flag). The problem, or undefined. The tools share it (src/cli/redis-target.ts).
 */
export function tlsTargetProblem(
  set: readonly string[],
  target: { url?: string; urlName?: string; seeds?: readonly string[]; seedsName?: string },
): string | undefined {
  if (set.length === 0) return undefined;
  const applies = `${set.join(', ')}: ${set.length === 1 ? 'applies' : 'apply'} to rediss:// only`;
  const unset = `unset ${set.join(' and ')}`;
  if (target.url !== undefined)
    return target.url.startsWith('rediss://')
      ? undefined
      : `${applies}; ${target.urlName ?? 'REDIS_URL'} is redis:// (use rediss://, or ${unset})`;
  if (target.seeds && target.seeds.length > 0) {
    const seed = parseSeed(target.seeds[0]!);
    return typeof seed !== 'string' && seed.tls
      ? undefined
      : `${applies}; ${target.seedsName ?? 'REDIS_CLUSTER_NODES'} is not rediss:// (use rediss:// seeds, or ${unset})`;
  }
  return `${applies}; no REDIS_URL or REDIS_CLUSTER_NODES is set, and the private Redis npm start runs takes no TLS (set a rediss:// target, or ${unset})`;
}

function tlsNeedsRediss<
  T extends TlsVariables & { redisUrl: string | undefined; redisClusterNodes: string[] },
>(c: T): Checked<T> {
  const set = (
    [
      ['REDIS_TLS_CA', c.redisTlsCa],
      ['REDIS_TLS_CERT', c.redisTlsCert],
      ['REDIS_TLS_KEY', c.redisTlsKey],
    ] as const
  )
    .filter(([, v]) => v !== undefined)
    .map(([name]) => name);
  const problem = tlsTargetProblem(
    set,
    c.redisUrl !== undefined ? { url: c.redisUrl } : { seeds: c.redisClusterNodes },
  );
  return problem === undefined ? E.right(c) : E.left(NEA.of(problem));
}

/**
 * REDIS_USERNAME and REDIS_PASSWORD fill in what REDIS_URL or the seeds leave out: one the target
 * carries already would be ignored (a password changed in REDIS_PASSWORD alone, and the login
 * still made with the URL's old one), so each part of the login is given in one place. `target`:
 * the URL or the seeds (valid ones), each with the name it was given by (a variable, or a tool's
 * flag). The problems, none when each part is given once. The tools share it (src/cli/redis-target.ts).
 */
export function loginGivenTwice(
  target: { url?: string; urlName?: string; seeds?: readonly string[]; seedsName?: string },
  username: string | undefined,
  password: string | undefined,
): string[] {
  let carried: { username?: string | undefined; password?: string | undefined } = {};
  if (target.url !== undefined) {
    const u = new URL(target.url);
    carried = { username: u.username || undefined, password: u.password || undefined };
  } else {
    const seed = (target.seeds ?? [])
      .map(parseSeed)
      .find((s) => typeof s !== 'string' && (s.username !== undefined || s.password !== undefined));
    if (seed !== undefined && typeof seed !== 'string')
      carried = { username: seed.username, password: seed.password };
  }
  const where =
    target.url !== undefined ? (target.urlName ?? 'REDIS_URL') : (target.seedsName ?? 'REDIS_CLUSTER_NODES');
  return (
    [
      ['REDIS_USERNAME', username, carried.username, 'user'],
      ['REDIS_PASSWORD', password, carried.password, 'password'],
    ] as const
  )
    .filter(([, given, inTarget]) => given !== undefined && inTarget !== undefined)
    .map(
      ([name, , , part]) =>
        `${name}: ${where} carries a ${part} already, which is the one used, so ${name} would be ignored; give the ${part} in one place (remove it from ${where}, or unset ${name})`,
    );
}

function loginGivenOnce<
  T extends {
    redisUrl: string | undefined;
    redisClusterNodes: string[];
    redisUsername: string | undefined;
    redisPassword: string | undefined;
  },
>(c: T): Checked<T> {
  const problems = loginGivenTwice(
    c.redisUrl !== undefined ? { url: c.redisUrl } : { seeds: c.redisClusterNodes },
    c.redisUsername,
    c.redisPassword,
  );
  return isNonEmpty(problems) ? E.left(problems) : E.right(c);
}

/** REDIS_TLS_* as one setting; a client certificate goes with its key. */
function withRedisTls<T extends TlsVariables>({
  redisTlsCa,
  redisTlsCert,
  redisTlsKey,
  ...c
}: T): Checked<Omit<T, keyof TlsVariables> & { redisTls: Config['redisTls'] }> {
  if ((redisTlsCert === undefined) !== (redisTlsKey === undefined))
    return E.left(NEA.of('REDIS_TLS_CERT, REDIS_TLS_KEY: give both or neither'));
  return E.right({
    ...c,
    redisTls: {
      ...(redisTlsCa ? { caFile: redisTlsCa } : {}),
      ...(redisTlsCert ? { certFile: redisTlsCert } : {}),
      ...(redisTlsKey ? { keyFile: redisTlsKey } : {}),
    },
  });
}

/** Where Switchboard's Redis is, with the login and TLS files the configuration gives. */
export function redisTargetOf(
  config: Pick<Config, 'redisUrl' | 'redisClusterNodes' | 'redisUsername' | 'redisPassword' | 'redisTls'>,
  url = config.redisUrl,
): RedisTarget {
  return {
    ...(url ? { url } : { clusterNodes: config.redisClusterNodes }),
    ...(config.redisUsername !== undefined ? { username: config.redisUsername } : {}),
    ...(config.redisPassword !== undefined ? { password: config.redisPassword } : {}),
    tls: config.redisTls,
  };
}

/** Every variable checked, every problem named; Right only when all are right. */
export function parseConfig(env: NodeJS.ProcessEnv): Checked<Config> {
  const v = variables(env);
  return pipe(
    everyVariable({
      redisUrl: v.optional('REDIS_URL', isRedisUrl),
      redisClusterNodes: v.list(
        'REDIS_CLUSTER_NODES',
        '',
        (n) => {
          const seed = parseSeed(n);
          return typeof seed === 'string' ? `each seed ${seed}` : undefined;
        },
        sameLoginAndTls,
      ),
      redisUsername: v.optional('REDIS_USERNAME', redisUsernameProblem),
      redisPassword: v.optional('REDIS_PASSWORD', () => undefined),
      redisTlsCa: v.optional('REDIS_TLS_CA', readableFile),
      redisTlsCert: v.optional('REDIS_TLS_CERT', readableFile),
      redisTlsKey: v.optional('REDIS_TLS_KEY', readableFile),
      host: v.text('HOST', '127.0.0.1', isHost),
      port: v.int('PORT', 8080, 0, 65535),
      metricsPort: v.optional('METRICS_PORT', offOr(0, 65535, false)),
      roles: v.list(
        'ROLES',
        'api,projector,dispatcher,archiver',
        (r) =>
          ROLES.includes(r as Role) ? undefined : `"${r}" is not a role; use any of ${ROLES.join(', ')}`,
        (all) => (all.length === 0 ? `name at least one of ${ROLES.join(', ')}` : undefined),
      ),
      workspaces: v.list('WORKSPACES', 'default', (w) =>
        /^[A-Za-z0-9_-]{1,64}$/.test(w)
          ? undefined
          : `"${w}" is not a workspace name (1..64 of [A-Za-z0-9_-])`,
      ),
      discoverWorkspaces: v.bool('DISCOVER_WORKSPACES', true),
      commandTimeoutMs: v.int('COMMAND_TIMEOUT_MS', 2000, 0, 60_000),
      queryTimeoutMs: v.int('QUERY_TIMEOUT_MS', 2000, 0, 60_000),
      bodyLimit: v.int('BODY_LIMIT', 65_536, 1024, 16_777_216),
      logLevel: pipe(
        v.optional('LOG_LEVEL', (l) =>
          LEVELS.includes(l) ? undefined : `must be one of ${LEVELS.join(', ')} (got "${l}")`,
        ),
        E.map((l) => l ?? 'info'),
      ),
      dataDir: v.text('DATA_DIR', './data', directoryOrNone),
      projectBatch: v.int('PROJECT_BATCH', 200, 1, 5000),
      projectStepMs: v.int('PROJECT_STEP_MS', 2, 0, 1000),
      dispatchBatch: v.int('DISPATCH_BATCH', 64, 1, 5000),
      dispatchStepMs: v.int('DISPATCH_STEP_MS', 2, 0, 1000),
      shutdownTimeoutMs: v.int('SHUTDOWN_TIMEOUT_MS', 10_000, 100, 600_000),
      lbDrainMs: v.int('LB_DRAIN_MS', 1500, 0, 60_000),
      slowRequestMs: v.int('SLOW_REQUEST_MS', 1000, 0, 3_600_000),
      durability: v.optional('DURABILITY', (d) =>
        d === 'local' || d === 'replicated' ? undefined : `must be local or replicated (got "${d}")`,
      ),
      replicaWaitMs: v.int('REPLICA_WAIT_MS', 1000, 10, 1500),
      dispatchLeases: v.bool('DISPATCH_LEASES', true),
      luaFunctions: v.bool('LUA_FUNCTIONS', true),
      leaseTtlMs: v.int('LEASE_TTL_MS', 3000, 500, 60_000),
      advertise: v.optional('ADVERTISE_ADDRESS', (a) => {
        // A host name or an IPv4 address, as HOST takes them (hostNameProblem), or an IPv6 address
        // in brackets ([fd00::5]:8080, as URLs write it), and a port.
        if (a === 'auto') return undefined;
        const split = splitAdvertise(a);
        if (split.bareIPv6)
          return `an IPv6 address must be written in brackets, such as [fd00::5]:8080 (got "${a}"; without them the port cannot be told from the address)`;
        const problem =
          split.host === undefined
            ? ''
            : split.bracketed
              ? isIP(split.host) === 6
                ? undefined
                : 'which has no IPv6 address in the brackets'
              : hostNameProblem(split.host);
        const port = /^\d{1,5}$/.test(split.port) ? Number(split.port) : 0;
        return problem === undefined && port >= 1 && port <= 65535
          ? undefined
          : `must be host:port (port 1..65535), [IPv6 address]:port or auto (got "${a}"${problem ? `, ${problem}` : ''})`;
      }),
      idempotencyTtlS: v.int(
        'IDEMPOTENCY_TTL_S',
        IDEMPOTENCY_TTL_S.default,
        IDEMPOTENCY_TTL_S.min,
        IDEMPOTENCY_TTL_S.max,
      ),
      deadConsumerIdleMs: v.int('DEAD_CONSUMER_IDLE_MS', 600_000, 1000, 7 * 86_400_000),
      liveMaxBufferedBytes: v.int('LIVE_MAX_BUFFERED_BYTES', 8 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
      liveMaxHeldEvents: v.int('LIVE_MAX_HELD_EVENTS', 10_000, 1, 1_000_000),
      liveHeartbeatMs: v.optional('LIVE_HEARTBEAT_MS', offOr(100, 600_000)),
      livePingMs: v.int('LIVE_PING_MS', 15_000, 100, 600_000),
      rateLimit: v.optional('RATE_LIMIT', offOr(1, 1_000_000)),
      rateLimitBurst: v.optional('RATE_LIMIT_BURST', offOr(1, 10_000_000, false)),
      wsMaxPerKey: v.optional('WS_MAX_PER_KEY', offOr(1, 10_000_000)),
      wsMaxPerInstance: v.optional('WS_MAX_PER_INSTANCE', offOr(1, 10_000_000)),
      maxHeaderBytes: v.int('MAX_HEADER_BYTES', 16_384, 1024, 1_048_576),
      maxUrlBytes: v.int('MAX_URL_BYTES', 8192, 256, 1_048_576),
      headersTimeoutMs: v.int('HEADERS_TIMEOUT_MS', 10_000, 100, 600_000),
      requestTimeoutMs: v.int('REQUEST_TIMEOUT_MS', 30_000, 100, 3_600_000),
      keepAliveTimeoutMs: v.int('KEEP_ALIVE_TIMEOUT_MS', 72_000, 100, 3_600_000),
      corsOrigins: v.list('CORS_ORIGINS', '', isOrigin),
      trustProxy: v.list('TRUST_PROXY', '', isAddressOrCidr),
      archiveDir: v.optional('ARCHIVE_DIR', directoryOrNone),
      logRetention: v.optional('LOG_RETENTION', (r) => {
        const parsed = parseRetention(r);
        return typeof parsed === 'string' ? parsed : undefined;
      }),
      contactRetention: v.optional('CONTACT_RETENTION', (r) => {
        const parsed = parseContactRetention(r);
        return typeof parsed === 'string' ? parsed : undefined;
      }),
      archiveSegmentEntries: v.int('ARCHIVE_SEGMENT_ENTRIES', 10_000, 1, 1_000_000),
      archiveEveryMs: v.int('ARCHIVE_EVERY_MS', 10_000, 10, 3_600_000),
      snapshotEveryEvents: v.int('SNAPSHOT_EVERY_EVENTS', 100_000, 1, 1_000_000_000),
      auth: v.optional('AUTH', (a) =>
        a === 'on' || a === 'off' ? undefined : `must be on or off (got "${a}")`,
      ),
      archivePauseAt: v.optional('ARCHIVE_PAUSE_AT', (p) =>
        ARCHIVE_PAUSE_POINTS.includes(p as ArchivePausePoint)
          ? undefined
          : `must be one of ${ARCHIVE_PAUSE_POINTS.join(', ')} (got "${p}")`,
      ),
    }),
    // The tools read REDIS_CLUSTER_NODES first: with both, they and npm start would use different Redis.
    E.chain((c) =>
      c.redisUrl !== undefined && c.redisClusterNodes.length > 0
        ? E.left(
            NEA.of(
              'REDIS_URL, REDIS_CLUSTER_NODES: set one or the other (a single Redis, or the seeds of a cluster), not both',
            ),
          )
        : E.right(c),
    ),
    E.chain(loginGivenOnce),
    E.chain(tlsNeedsRediss),
    E.chain(withRedisTls),
    E.chain((c) =>
      c.rateLimit === 'off' && c.rateLimitBurst !== undefined
        ? E.left(
            NEA.of(
              `RATE_LIMIT_BURST: has no effect with RATE_LIMIT=off (got "${c.rateLimitBurst}"); unset it, or set RATE_LIMIT to turn the limit on`,
            ),
          )
        : E.right(c),
    ),
    // Nothing waits for a replica with local durability: the bound would bound nothing. Only the
    // API reads either (ROLE_SETTINGS): on another process the start's warning names it.
    E.chain((c) =>
      (env.REPLICA_WAIT_MS ?? '').trim() !== '' &&
      c.roles.includes('api') &&
      (c.durability ?? (c.redisClusterNodes.length > 0 ? 'replicated' : 'local')) === 'local'
        ? E.left(
            NEA.of(
              `REPLICA_WAIT_MS: has no effect with ${c.durability === undefined ? 'DURABILITY local (the default without REDIS_CLUSTER_NODES)' : 'DURABILITY=local'}, where no acknowledgement waits for a replica (got "${c.replicaWaitMs}"); unset it, or set DURABILITY=replicated`,
            ),
          )
        : E.right(c),
    ),
    E.chain((c) =>
      c.metricsPort !== undefined &&
      Number(c.metricsPort) !== 0 &&
      Number(c.metricsPort) === c.port &&
      c.roles.includes('api')
        ? E.left(
            NEA.of(
              `METRICS_PORT: must differ from PORT (${c.port}), where the API serves /metrics already; leave it unset to use that one`,
            ),
          )
        : E.right(c),
    ),
    // Only an API instance registers: without the role, the user's load balancer would never get it.
    E.chain((c) =>
      c.advertise !== undefined && !c.roles.includes('api')
        ? E.left(
            NEA.of(
              `ADVERTISE_ADDRESS: registers an API instance for the load balancer, but ROLES (${[...new Set(c.roles)].join(',')}) has no api: this process serves no API and would register nothing; add api to ROLES, or unset ADVERTISE_ADDRESS here`,
            ),
          )
        : E.right(c),
    ),
    E.chain((c) => {
      // A wildcard address is where to listen, not where to be reached: HAProxy would add it as is.
      const host = c.advertise === 'auto' ? c.host : c.advertise && splitAdvertise(c.advertise).host;
      return host !== undefined && isIP(host) !== 0 && /^[0:.]+$/.test(host)
        ? E.left(
            NEA.of(
              `ADVERTISE_ADDRESS: ${c.advertise === 'auto' ? `auto would advertise HOST (${host})` : `"${host}" is`}, an address that listens everywhere and that no load balancer can reach this instance at; give the instance's own host:port`,
            ),
          )
        : E.right(c);
    }),
    E.chain((c) =>
      c.headersTimeoutMs > c.requestTimeoutMs
        ? E.left(
            NEA.of(
              `HEADERS_TIMEOUT_MS: must be at most REQUEST_TIMEOUT_MS (${c.requestTimeoutMs}; got ${c.headersTimeoutMs})`,
            ),
          )
        : E.right(c),
    ),
    E.map(
      ({ rateLimitBurst, contactRetention, ...c }): Config => ({
        ...c,
        rateLimit:
          c.rateLimit === undefined
            ? { perSecond: 5000, burst: offOrNumber(rateLimitBurst) ?? 10_000 }
            : c.rateLimit === 'off'
              ? undefined
              : {
                  perSecond: Number(c.rateLimit),
                  burst: offOrNumber(rateLimitBurst) ?? 2 * Number(c.rateLimit),
                },
        liveHeartbeatMs: c.liveHeartbeatMs === undefined ? 10_000 : offOrNumber(c.liveHeartbeatMs),
        wsMaxPerKey: c.wsMaxPerKey === undefined ? 5000 : offOrNumber(c.wsMaxPerKey),
        wsMaxPerInstance: c.wsMaxPerInstance === undefined ? 10_000 : offOrNumber(c.wsMaxPerInstance),
        roles: [...new Set(c.roles)] as Role[],
        // The default workspace is always served; one named twice is served once (as a role is run once).
        workspaces: [
          ...new Set(c.workspaces.includes('default') ? c.workspaces : ['default', ...c.workspaces]),
        ],
        durability: (c.durability ?? (c.redisClusterNodes.length > 0 ? 'replicated' : 'local')) as
          | 'local'
          | 'replicated',
        advertise: advertiseOf(c.advertise, c.host, c.port),
        metricsPort: c.metricsPort === undefined ? undefined : Number(c.metricsPort),
        archiveDir: c.archiveDir ?? path.join(c.dataDir, 'archive'),
        logRetention: parseRetention(c.logRetention ?? DEFAULT_RETENTION) as Retention,
        contactRetentionMs: parseContactRetention(contactRetention ?? DEFAULT_CONTACT_RETENTION) as
          | number
          | undefined,
        archivePauseAt: c.archivePauseAt as ArchivePausePoint | undefined,
        auth: c.auth === 'off' ? 'off' : 'on',
      }),
    ),
  );
}

/** An integer in decimal digits in range, or `off` (when `off` is allowed). */
function offOr(min: number, max: number, off = true): Check {
  return (value) => {
    const n = decimalInteger(value);
    return (off && value === 'off') || (n !== undefined && n >= min && n <= max)
      ? undefined
      : `must be an integer from ${min} to ${max}${off ? ' or off' : ''} (got "${value}")`;
  };
}

const offOrNumber = (value: string | undefined): number | undefined =>
  value === undefined || value === 'off' ? undefined : Number(value);

/** A browser origin: scheme, host and port only, as a browser sends it in Origin. */
const isOrigin: Check = (value) => {
  try {
    const u = new URL(value);
    if ((u.protocol === 'https:' || u.protocol === 'http:') && u.origin === value) return undefined;
  } catch {
    /* not a URL */
  }
  return `each origin must be scheme://host[:port] with no path, such as https://app.example.com (got "${value}")`;
};

const isAddressOrCidr: Check = (value) => {
  const [address = '', bits, ...rest] = value.split('/');
  const family = isIP(address);
  const ok =
    family !== 0 &&
    rest.length === 0 &&
    (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)));
  return ok
    ? undefined
    : `each proxy must be an IP address or CIDR, such as 10.0.0.5 or 10.0.0.0/24 (got "${value}")`;
};

/**
 * ADVERTISE_ADDRESS's host (without brackets; undefined: none) and port text: `host:port` or
 * `[IPv6]:port`. `bareIPv6`: an IPv6 address and a port without the brackets (fd00::5:8080).
 */
function splitAdvertise(a: string): { host?: string; port: string; bracketed: boolean; bareIPv6: boolean } {
  const bracketed = /^\[([^\]]*)\]:([^:]*)$/.exec(a);
  if (bracketed) return { host: bracketed[1], port: bracketed[2]!, bracketed: true, bareIPv6: false };
  const at = a.lastIndexOf(':');
  if (at < 0 || a.startsWith('[')) return { port: '', bracketed: false, bareIPv6: false };
  const host = a.slice(0, at);
  return { host, port: a.slice(at + 1), bracketed: false, bareIPv6: host.includes(':') && isIP(host) === 6 };
}

/** ADVERTISE_ADDRESS as host and port; `auto` is HOST:PORT (port 0: the one bound, filled in at listen). */
function advertiseOf(raw: string | undefined, host: string, port: number): Config['advertise'] {
  if (raw === undefined) return undefined;
  if (raw === 'auto') return { host, port };
  const split = splitAdvertise(raw);
  return { host: split.host ?? '', port: Number(split.port) };
}

/** The configuration, or a ConfigError naming every bad variable at once. */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  return pipe(
    parseConfig(env),
    E.getOrElse((problems): Config => {
      throw new ConfigError(problems);
    }),
  );
}
