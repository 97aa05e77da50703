/**
 * Configuration from the environment, checked at start: every bad value is named with what it
 * should be, and the process does not start until all are right.
 */
export type Role = 'api' | 'projector' | 'dispatcher';
export const ROLES: readonly Role[] = ['api', 'projector', 'dispatcher'];

export interface Config {
  readonly redisUrl: string | undefined;
  readonly redisClusterNodes: readonly string[];
  readonly host: string;
  readonly port: number;
  readonly roles: readonly Role[];
  readonly workspaces: readonly string[];
  readonly discoverWorkspaces: boolean;
  readonly commandTimeoutMs: number;
  readonly queryTimeoutMs: number;
  readonly bodyLimit: number;
  readonly logLevel: string;
  readonly dataDir: string;
  readonly projectBatch: number;
  readonly dispatchBatch: number;
  readonly shutdownTimeoutMs: number;
  readonly idempotencyTtlS: number;
  readonly deadConsumerIdleMs: number;
  readonly liveMaxBufferedBytes: number;
  readonly liveMaxHeldEvents: number;
  readonly durability: 'local' | 'replicated';
  readonly replicaWaitMs: number;
  readonly dispatchLeases: boolean;
  readonly leaseTtlMs: number;
  readonly advertise: { host: string; port: number } | undefined;
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
      'Redis to use (redis:// or rediss://). Unset: a private redis-server is started with AOF under DATA_DIR.',
  },
  {
    name: 'REDIS_CLUSTER_NODES',
    default: '(unset)',
    description: 'Comma-separated host:port seeds of a Redis Cluster; used instead of REDIS_URL when set.',
  },
  {
    name: 'HOST',
    default: '127.0.0.1',
    description: 'Address the HTTP API listens on (0.0.0.0 behind a load balancer).',
  },
  { name: 'PORT', default: '8080', description: 'Port of the HTTP API.' },
  {
    name: 'ROLES',
    default: 'api,projector,dispatcher',
    description: 'Roles this process runs: any of api, projector, dispatcher.',
  },
  {
    name: 'WORKSPACES',
    default: 'default',
    description: 'Workspaces served from the start; others are found as they appear.',
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
  { name: 'DATA_DIR', default: './data', description: 'Where the private redis-server keeps its AOF.' },
  { name: 'PROJECT_BATCH', default: '200', description: 'Most commands one projector step applies.' },
  { name: 'DISPATCH_BATCH', default: '64', description: 'Most work items one dispatcher step looks at.' },
  {
    name: 'SHUTDOWN_TIMEOUT_MS',
    default: '10000',
    description: 'How long SIGTERM waits for in-flight work before forcing exit.',
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
      'How long a replicated acknowledgement waits for a replica before answering 503 (at most 1500).',
  },
  {
    name: 'DISPATCH_LEASES',
    default: 'true',
    description: 'One dispatcher per workspace at a time, by lease (true/false).',
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
      'host:port this API instance registers under (a heartbeat in Redis) so HAProxy adds it at run time; auto: HOST:PORT.',
  },
  {
    name: 'IDEMPOTENCY_TTL_S',
    default: '86400',
    description: 'How long an Idempotency-Key is remembered, seconds.',
  },
  {
    name: 'DEAD_CONSUMER_IDLE_MS',
    default: '600000',
    description:
      "A projector consumer idle this long with no pending commands (a stopped or killed projector's) is removed from the consumer group.",
  },
  {
    name: 'LIVE_MAX_BUFFERED_BYTES',
    default: '8388608',
    description:
      'A WebSocket subscriber with more than this many bytes unsent is too slow: closed with 1013 and the position to resume from.',
  },
  {
    name: 'LIVE_MAX_HELD_EVENTS',
    default: '10000',
    description:
      'Most live events held for a WebSocket subscriber while its replay runs; past it, closed with 1013 and the position to resume from.',
  },
];

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const problems: string[] = [];
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (name: string, def: number, min: number, max: number): number => {
    const raw = get(name);
    if (raw === undefined) return def;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < min || n > max) {
      problems.push(`${name}: must be an integer from ${min} to ${max} (got "${raw}")`);
      return def;
    }
    return n;
  };
  const bool = (name: string, def: boolean): boolean => {
    const raw = get(name);
    if (raw === undefined) return def;
    if (/^(true|1|yes)$/i.test(raw)) return true;
    if (/^(false|0|no)$/i.test(raw)) return false;
    problems.push(`${name}: must be true or false (got "${raw}")`);
    return def;
  };
  const list = (name: string, def: string): string[] =>
    (get(name) ?? def)
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');

  const redisUrl = get('REDIS_URL');
  if (redisUrl !== undefined) {
    try {
      const u = new URL(redisUrl);
      if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error('protocol');
    } catch {
      problems.push(
        `REDIS_URL: must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379 (got "${redisUrl}")`,
      );
    }
  }
  const redisClusterNodes = list('REDIS_CLUSTER_NODES', '');
  for (const n of redisClusterNodes) {
    if (!/^[^\s:]+:\d{1,5}$/.test(n))
      problems.push(`REDIS_CLUSTER_NODES: each seed must be host:port (got "${n}")`);
  }
  const roles = list('ROLES', 'api,projector,dispatcher');
  for (const r of roles) {
    if (!ROLES.includes(r as Role))
      problems.push(`ROLES: "${r}" is not a role; use any of ${ROLES.join(', ')}`);
  }
  if (roles.length === 0) problems.push(`ROLES: name at least one of ${ROLES.join(', ')}`);
  const workspaces = list('WORKSPACES', 'default');
  for (const w of workspaces) {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(w))
      problems.push(`WORKSPACES: "${w}" is not a workspace name (1..64 of [A-Za-z0-9_-])`);
  }
  const durabilityRaw = get('DURABILITY') ?? (redisClusterNodes.length > 0 ? 'replicated' : 'local');
  if (durabilityRaw !== 'local' && durabilityRaw !== 'replicated')
    problems.push(`DURABILITY: must be local or replicated (got "${durabilityRaw}")`);
  const advertiseRaw = get('ADVERTISE_ADDRESS');
  if (
    advertiseRaw !== undefined &&
    advertiseRaw !== 'auto' &&
    !/^[A-Za-z0-9_.-]+:\d{1,5}$/.test(advertiseRaw)
  )
    problems.push(`ADVERTISE_ADDRESS: must be host:port or auto (got "${advertiseRaw}")`);
  const logLevel = get('LOG_LEVEL') ?? 'info';
  if (!LEVELS.includes(logLevel))
    problems.push(`LOG_LEVEL: must be one of ${LEVELS.join(', ')} (got "${logLevel}")`);

  const config: Config = {
    redisUrl,
    redisClusterNodes,
    host: get('HOST') ?? '127.0.0.1',
    port: int('PORT', 8080, 0, 65535),
    roles: [...new Set(roles)] as Role[],
    workspaces: workspaces.includes('default') ? workspaces : ['default', ...workspaces],
    discoverWorkspaces: bool('DISCOVER_WORKSPACES', true),
    commandTimeoutMs: int('COMMAND_TIMEOUT_MS', 2000, 0, 60_000),
    queryTimeoutMs: int('QUERY_TIMEOUT_MS', 2000, 0, 60_000),
    bodyLimit: int('BODY_LIMIT', 65_536, 1024, 16_777_216),
    logLevel,
    dataDir: get('DATA_DIR') ?? './data',
    projectBatch: int('PROJECT_BATCH', 200, 1, 5000),
    dispatchBatch: int('DISPATCH_BATCH', 64, 1, 5000),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 10_000, 100, 600_000),
    idempotencyTtlS: int('IDEMPOTENCY_TTL_S', 86_400, 60, 30 * 86_400),
    deadConsumerIdleMs: int('DEAD_CONSUMER_IDLE_MS', 600_000, 1000, 7 * 86_400_000),
    liveMaxBufferedBytes: int('LIVE_MAX_BUFFERED_BYTES', 8 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    liveMaxHeldEvents: int('LIVE_MAX_HELD_EVENTS', 10_000, 1, 1_000_000),
    durability: durabilityRaw === 'replicated' ? 'replicated' : 'local',
    replicaWaitMs: int('REPLICA_WAIT_MS', 1000, 10, 1500),
    dispatchLeases: bool('DISPATCH_LEASES', true),
    leaseTtlMs: int('LEASE_TTL_MS', 3000, 500, 60_000),
    advertise: undefined,
  };
  if (advertiseRaw !== undefined && problems.length === 0) {
    const [host, port] =
      advertiseRaw === 'auto' ? [config.host, String(config.port)] : advertiseRaw.split(':');
    (config as { advertise: Config['advertise'] }).advertise = { host: host!, port: Number(port) };
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
