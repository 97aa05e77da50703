/**
 * The Redis ACL user Switchboard connects as: its key prefix only, the commands it uses only.
 * This is the one list; the private redis-server, the cluster launcher, the topology and the test
 * fixtures create the user from it, and docs/SECURITY.md shows it. A command Switchboard starts
 * to use (in TypeScript or in a Lua step: ACL checks the commands a script calls too) must be
 * added here, in its group, or it fails with NOPERM.
 *
 * Left out on purpose: everything administrative or dangerous (FLUSHALL, FLUSHDB, CONFIG, KEYS,
 * SCAN, DEBUG, SHUTDOWN, ACL, MONITOR, SLOWLOG, CLIENT KILL/LIST/PAUSE, SCRIPT, FUNCTION except
 * LOAD (no DELETE, FLUSH, RESTORE, DUMP), MODULE, REPLICAOF, MIGRATE, RESTORE, SAVE, MEMORY,
 * OBJECT, RENAME, pub/sub). Tools that need them (the benches' SLOWLOG and CONFIG SET,
 * redis-cli --cluster) use an admin user.
 */
import { KEY_ROOT } from './keys.ts';

/** The user name Switchboard connects as where Switchboard creates the user. */
export const APP_USER = 'switchboard';

/** What each group of commands is for; the ACL grants exactly the union. */
export const APP_COMMAND_GROUPS: readonly { readonly why: string; readonly commands: readonly string[] }[] = [
  {
    why: 'connection: AUTH/HELLO at connect, ioredis names its cluster connections (CLIENT SETNAME; CLIENT SETINFO is turned off in client.ts: Redis 7.0 has none), its ready check (INFO), the health watch (PING), a clean close (QUIT)',
    commands: ['auth', 'hello', 'client|setname', 'info', 'ping', 'quit'],
  },
  {
    why: 'Redis Cluster: the client reads the slot map (CLUSTER SLOTS) and the cluster state (CLUSTER INFO), follows ASK redirects (ASKING), and sets the read mode of its connections to replicas and to nodes whose role changed in a failover (READONLY, READWRITE)',
    commands: ['cluster|slots', 'cluster|info', 'asking', 'readonly', 'readwrite'],
  },
  {
    why: 'replicated durability (WAIT), the server clock (TIME), transactions for consistent reads (MULTI/EXEC/DISCARD)',
    commands: ['wait', 'time', 'multi', 'exec', 'discard'],
  },
  {
    why: "Lua steps (EVALSHA, EVAL when the script is not cached yet); the projector's and dispatcher's steps as Redis Functions (FUNCTION LOAD of Switchboard's own libraries, FCALL); the commands inside a script or function are checked against this same list",
    commands: ['evalsha', 'eval', 'function|load', 'fcall'],
  },
  {
    why: 'the command, event and outcome streams; the projector consumer group',
    commands: [
      'xadd',
      'xrange',
      'xrevrange',
      'xread',
      'xreadgroup',
      'xack',
      'xautoclaim',
      'xclaim',
      'xpending',
      'xlen',
      'xtrim',
      'xdel',
      'xinfo',
      'xgroup|create',
      'xgroup|createconsumer',
      'xgroup|setid',
      'xgroup|delconsumer',
    ],
  },
  {
    why: 'hashes: documents, settings, checkpoints, stats, idempotency records, stored API keys',
    commands: [
      'hget',
      'hmget',
      'hgetall',
      'hvals',
      'hkeys',
      'hlen',
      'hexists',
      'hscan',
      'hset',
      'hsetnx',
      'hdel',
      'hincrby',
    ],
  },
  {
    why: 'sorted sets: pools, queues, candidates, timers, registries; BZPOPMIN is the dispatcher wake-up; the auditor reads the timers in pages (ZSCAN)',
    commands: [
      'zadd',
      'zrem',
      'zincrby',
      'zscore',
      'zmscore',
      'zcard',
      'zcount',
      'zlexcount',
      'zrank',
      'zrange',
      'zrevrange',
      'zrangebyscore',
      'zrevrangebyscore',
      'zrangebylex',
      'zremrangebyscore',
      'zremrangebylex',
      'zinter',
      'zpopmin',
      'bzpopmin',
      'zscan',
    ],
  },
  {
    why: 'sets: the workspace registry',
    commands: ['sadd', 'srem', 'smembers', 'sismember', 'scard'],
  },
  {
    why: 'strings and key lifetimes: leases, counters (rate limits), one-time tickets, dropping a workspace key',
    commands: [
      'get',
      'mget',
      'set',
      'getdel',
      'incr',
      'incrby',
      'decr',
      'exists',
      'del',
      'unlink',
      'expire',
      'pexpire',
      'ttl',
      'pttl',
    ],
  },
];

export const APP_COMMANDS: readonly string[] = APP_COMMAND_GROUPS.flatMap((g) => g.commands);

/** Key pattern: every key Switchboard uses starts with `sb:` (src/adapters/redis/keys.ts). */
export const APP_KEY_PATTERN = `~${KEY_ROOT}:*`;

/**
 * The ACL rules of the Switchboard user, as `ACL SETUSER <user> on ><password> ...rules` or an
 * aclfile line take them: no keys but `sb:*`, no pub/sub channels, no command but the list.
 */
export const APP_ACL_RULES: readonly string[] = [
  'resetkeys',
  APP_KEY_PATTERN,
  'resetchannels',
  '-@all',
  ...APP_COMMANDS.map((c) => `+${c}`),
];

/** The rules as one string, e.g. for docs and `ACL SETUSER switchboard on >pw <rules>` by hand. */
export const APP_ACL_RULE = APP_ACL_RULES.join(' ');
