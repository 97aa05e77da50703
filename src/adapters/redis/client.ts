import { readFileSync } from 'node:fs';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { defineDeclared, type RedisClient } from './scripts.ts';

/**
 * A single Redis by URL, or a Redis Cluster by its seed nodes: chosen by configuration alone.
 * The login is the URL's (`redis://user:password@host:port`) or a seed's
 * (`user:password@host:port`), else `username`/`password`; `rediss://` (a URL, or the seeds)
 * turns TLS on, with the PEM files of `tls` when the server's certificate is not signed by a
 * public CA or the server asks for a client certificate.
 */
export interface RedisTarget {
  readonly url?: string;
  readonly clusterNodes?: readonly string[];
  readonly username?: string;
  readonly password?: string;
  readonly tls?: RedisTlsFiles;
}

export interface RedisTlsFiles {
  /** CA certificate(s) to trust instead of the system's (a self-signed server). */
  readonly caFile?: string;
  /** Client certificate and key, for a server with `tls-auth-clients yes`. */
  readonly certFile?: string;
  readonly keyFile?: string;
}

/** A cluster seed: `host:port`, `user:password@host:port`, or a redis:// / rediss:// URL. */
export interface RedisSeed {
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  readonly tls: boolean;
}

/** A seed as written in REDIS_CLUSTER_NODES, or why it is not one. */
/** How a login that is not valid percent-encoding is refused (REDIS_URL, seeds, --redis-url). */
export const LOGIN_ENCODING =
  'the user and password must be percent-encoded (a "%" written %25, "@" %40, ":" %3A, "/" %2F, "#" %23)';

/**
 * Whether a URL's or seed's user or password is not valid percent-encoding (a "%" not written
 * %25): the client decodes them, and would throw. One that is not a URL at all is not this.
 */
export function undecodableLogin(text: string): boolean {
  let u: URL;
  try {
    u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `redis://${text}`);
  } catch {
    return false;
  }
  try {
    decodeURIComponent(u.username);
    decodeURIComponent(u.password);
    return false;
  } catch {
    return true;
  }
}

export function parseSeed(text: string): RedisSeed | string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `redis://${text}`;
  const bad = `must be host:port, user:password@host:port, or a redis:// or rediss:// URL (got "${mask(text)}")`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    return bad;
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return bad;
  if (
    u.hostname === '' ||
    !/^\d{1,5}$/.test(u.port) ||
    (u.pathname !== '' && u.pathname !== '/') ||
    u.search !== ''
  )
    return bad;
  if (undecodableLogin(text))
    return `must have its user and password percent-encoded (a "%" written %25, "@" %40, ":" %3A, "/" %2F, "#" %23) (got "${mask(text)}")`;
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: Number(u.port),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    tls: u.protocol === 'rediss:',
  };
}

/** A URL or seed with its password replaced by ***, for logs and messages. */
export function mask(target: string): string {
  // One URL: its login runs to the last "@" (a URL need not encode ',' or ':' in a password).
  const one = /^([a-z][a-z0-9+.-]*:\/\/)(.*)@/i.exec(target);
  if (one && !target.slice(one[1]!.length).includes('://')) {
    const login = one[2]!;
    const colon = login.indexOf(':');
    return colon < 0 ? target : `${one[1]}${login.slice(0, colon)}:***@${target.slice(one[0].length)}`;
  }
  // Seeds, comma-separated (a seed's password cannot hold one): each seed's login runs to its last
  // "@", whatever the password holds besides ("@", "/", a space).
  return target
    .split(',')
    .map((seed) => {
      const m = /^((?:[a-z][a-z0-9+.-]*:\/\/)?)(.*)@/i.exec(seed);
      const colon = m ? m[2]!.indexOf(':') : -1;
      return m && colon >= 0 ? `${m[1]}${m[2]!.slice(0, colon)}:***@${seed.slice(m[0].length)}` : seed;
    })
    .join(',');
}

function tlsOptions(files: RedisTlsFiles | undefined): NonNullable<RedisOptions['tls']> {
  return {
    ...(files?.caFile ? { ca: readFileSync(files.caFile) } : {}),
    ...(files?.certFile ? { cert: readFileSync(files.certFile) } : {}),
    ...(files?.keyFile ? { key: readFileSync(files.keyFile) } : {}),
  };
}

/**
 * How long a connection may hear nothing while it waits for replies before it is taken for dead:
 * its socket is closed and the client connects again (ioredis's `socketTimeout`, counted only while
 * a command waits). A path that goes silent without closing (a NAT or firewall that forgot the
 * connection, a moved VM) would otherwise hold every connection until the kernel gives up on it,
 * about a quarter of an hour: commands 503, the dispatcher and the live feed stopped. Longer than
 * any command's own timeout, so a slow reply fails as that command's timeout first.
 */
export const SILENT_PATH_MS = 5000;
/** The same for a blocking connection: its longest blocking read (5 s) and as much again. */
export const SILENT_BLOCKING_PATH_MS = 10_000;

const commonOptions: RedisOptions = {
  maxRetriesPerRequest: 2,
  // A Redis that hangs (frozen, partitioned) fails requests instead of holding them: 503, retry.
  commandTimeout: 2000,
  retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
  // No CLIENT SETINFO at connect: Redis before 7.2 has no such command, and the ACL user
  // (acl.ts) is not granted it.
  disableClientInfo: true,
};

/**
 * A client for commands. Commands queue while disconnected (bounded by `maxRetriesPerRequest`),
 * and the client reconnects by itself with a capped backoff. On a cluster it follows MOVED/ASK
 * and refreshes its slot map after a failover.
 */
export function connectRedis(target: RedisTarget, given: RedisOptions = {}): RedisClient {
  const timeout = given.commandTimeout === undefined ? commonOptions.commandTimeout : given.commandTimeout;
  const options: RedisOptions = {
    socketTimeout: Math.max(SILENT_PATH_MS, (timeout ?? 0) + 3000),
    ...given,
  };
  let redis: RedisClient;
  if (target.clusterNodes && target.clusterNodes.length > 0) {
    const seeds = target.clusterNodes.map((n) => {
      const seed = parseSeed(n);
      if (typeof seed === 'string') throw new Error(`Redis Cluster seed: ${seed}`);
      return seed;
    });
    // One login and one TLS setting for every node: the first seed's that has one, else the target's.
    const login = seeds.find((s) => s.username !== undefined || s.password !== undefined);
    const username = login ? login.username : target.username;
    const password = login ? login.password : target.password;
    const secure = seeds.some((s) => s.tls);
    const nodeOptions: RedisOptions = {
      ...commonOptions,
      ...(username !== undefined ? { username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(secure ? { tls: tlsOptions(target.tls) } : {}),
      ...options,
    };
    const clusterOptions: ClusterOptions = {
      // Commands written when issued, as on a single Redis (below): auto-pipelining keeps one
      // pipeline in flight per node. Measured on a local 3-master cluster (docs/BENCHMARKS.md,
      // "Commands written when issued"): e2e p50 at 1,000 contacts/s 2.1 – 2.6 ms against 4.0 – 4.5.
      enableAutoPipelining: false,
      scaleReads: 'master',
      slotsRefreshTimeout: 2000,
      // The slot map read again every few seconds, not only on MOVED or a connection error: a
      // master that stops answering without closing its connections (a frozen or cut-off host)
      // gives neither, and its slots' commands would time out (503) long after its replica took
      // them over.
      slotsRefreshInterval: 3000,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 300,
      retryDelayOnTryAgain: 200,
      clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
      redisOptions: nodeOptions,
    };
    const cluster = new Cluster(
      seeds.map(({ host, port }) => ({ host, port })),
      clusterOptions,
    );
    boundOfflineQueue(cluster);
    askingHandled(cluster);
    redis = cluster;
  } else {
    const url = target.url ?? 'redis://127.0.0.1:6379';
    const u = new URL(url);
    // The URL's login wins; username/password fill in what it leaves out.
    const username = u.username ? decodeURIComponent(u.username) : target.username;
    const password = u.password ? decodeURIComponent(u.password) : target.password;
    // No auto-pipelining: ioredis sends a client's next auto-pipeline only once the previous one
    // is answered, so a command waited behind whatever step was in flight, and for the next
    // immediate. Each command is written when it is issued; the hot path batches by itself (the
    // API's projector step carries a tick's commands). Measured (docs/BENCHMARKS.md, "Commands
    // written when issued"): e2e p50 at 1,000 contacts/s 1.7 ms against 2.4 – 2.7.
    redis = new Redis(url, {
      enableAutoPipelining: false,
      ...commonOptions,
      ...(username !== undefined ? { username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(u.protocol === 'rediss:' ? { tls: tlsOptions(target.tls) } : {}),
      ...options,
    });
  }
  // Errors surface on the commands that fail; the client keeps reconnecting.
  redis.on('error', () => {});
  defineDeclared(redis);
  return redis;
}

/**
 * A cluster client holds the commands sent while it is not connected (at start, or once it has
 * lost every node: the nodes down, unreachable, or refusing the login) until it connects, with no
 * time limit, where a single Redis's client gives up after `maxRetriesPerRequest`: a request
 * would wait for ever. Each command sent then fails after the nodes' command timeout instead, as
 * one sent to a node that does not answer does (a 503, redis-unavailable). Its duplicates (the
 * rate limit's connection) too; those without a command timeout (blocking reads) wait.
 */
function boundOfflineQueue(cluster: Cluster): void {
  const duplicate = cluster.duplicate.bind(cluster);
  cluster.duplicate = ((...args: Parameters<Cluster['duplicate']>) => {
    const copy = duplicate(...args);
    boundOfflineQueue(copy);
    return copy;
  }) as Cluster['duplicate'];
  const timeoutMs = cluster.options.redisOptions?.commandTimeout;
  if (timeoutMs === undefined) return;
  const send = cluster.sendCommand.bind(cluster);
  cluster.sendCommand = ((...args: Parameters<Cluster['sendCommand']>) => {
    const [command] = args;
    if (cluster.status !== 'ready') {
      const timer = setTimeout(
        () => command.reject(new Error('Command timed out: the Redis Cluster is not connected')),
        timeoutMs,
      );
      const clear = () => clearTimeout(timer);
      command.promise.then(clear, clear);
    }
    return send(...args);
  }) as Cluster['sendCommand'];
}

/**
 * A cluster client follows `ASK` (a slot being moved to another master, its key there already) by
 * sending ASKING and then the command to the importing node, and keeps no handler on the ASKING's
 * promise: when that node does not answer it in time or its connection closes, the rejection went
 * unhandled (`unhandled rejection; continuing` logged as an error by every process while an
 * operator resharded). The command after it fails or is redirected on its own, and its caller
 * sees that; the ASKING's own failure is dropped. Its duplicates (the blocking reads) too.
 */
function askingHandled(cluster: Cluster): void {
  const duplicate = cluster.duplicate.bind(cluster);
  cluster.duplicate = ((...args: Parameters<Cluster['duplicate']>) => {
    const copy = duplicate(...args);
    askingHandled(copy);
    return copy;
  }) as Cluster['duplicate'];
  cluster.on('+node', (node: Redis) => {
    const asking = node.asking.bind(node);
    node.asking = ((...args: Parameters<Redis['asking']>) => {
      const sent = asking(...args);
      sent.catch(() => {});
      return sent;
    }) as Redis['asking'];
  });
}

/** A connection of its own for blocking reads (BZPOPMIN, XREAD BLOCK), which hold it while they wait. */
export function blockingConnection(redis: RedisClient): RedisClient {
  const options: RedisOptions = {
    enableAutoPipelining: false,
    maxRetriesPerRequest: null,
    commandTimeout: undefined,
    socketTimeout: SILENT_BLOCKING_PATH_MS,
  };
  const dup: RedisClient =
    redis instanceof Redis
      ? redis.duplicate(options)
      : redis.duplicate(undefined, {
          enableAutoPipelining: false,
          // Keeps the nodes' login and TLS.
          redisOptions: { ...redis.options.redisOptions, ...options },
        });
  dup.on('error', () => {});
  defineDeclared(dup);
  return dup;
}

export function isCluster(redis: RedisClient): redis is Cluster {
  return redis instanceof Cluster;
}

/**
 * The replicas connected to each master (`INFO replication`, `connected_slaves`): one count for a
 * single Redis, one per master of a cluster (once the client knows them).
 */
export async function connectedReplicas(redis: RedisClient): Promise<number[]> {
  if (isCluster(redis) && redis.status !== 'ready') await new Promise((ready) => redis.once('ready', ready));
  const nodes: Redis[] = isCluster(redis) ? redis.nodes('master') : [redis];
  return Promise.all(
    nodes.map(async (node) =>
      Number(/connected_slaves:(\d+)/.exec(await node.info('replication'))?.[1] ?? 0),
    ),
  );
}

/**
 * A command that names no key (WAIT, TIME) sent to the node that holds `key`: on a cluster it is
 * pipelined behind a command on that key, so both take that node's connection. Its reply.
 */
export async function callOnNodeOf(
  redis: RedisClient,
  key: string,
  command: string,
  ...args: (string | number)[]
): Promise<unknown> {
  const reply = await redis
    .pipeline()
    .exists(key)
    .call(command, ...args)
    .exec();
  const r = reply?.[1];
  if (!r || r[0]) throw r?.[0] ?? new Error(`${command} gave no reply`);
  return r[1];
}

/**
 * Waits until `replicas` replicas of the node that holds `key` have every write made so far on
 * that connection (WAIT, on the key's node). Returns the replicas reached.
 */
export async function waitForReplicas(
  redis: RedisClient,
  key: string,
  replicas: number,
  timeoutMs: number,
): Promise<number> {
  return Number(await callOnNodeOf(redis, key, 'WAIT', replicas, timeoutMs));
}

export const STOPPED = Symbol('stopped');

/**
 * Per-workspace loops that block on Redis: each gets a connection of its own and a stop signal,
 * and `interrupt` ends one at once (disconnecting its connection ends its blocking read).
 *
 * The stop is an AbortSignal that a loop's reads and pauses listen to one at a time
 * (`raceBlocking`, `pauseUnlessStopped`), not a promise they race: a promise that lives as long
 * as the loop would keep a reaction of every race against it, and with it every read's reply,
 * until the loop ends (test/workers/blocking-memory.test.ts).
 */
export class BlockingLoops {
  private readonly loops = new Map<string, { conn: RedisClient; stop: AbortController }>();

  constructor(private readonly redis: RedisClient) {}

  async run<T>(workspace: string, body: (conn: RedisClient, stopped: AbortSignal) => Promise<T>): Promise<T> {
    const conn = blockingConnection(this.redis);
    const stop = new AbortController();
    this.loops.set(workspace, { conn, stop });
    try {
      return await body(conn, stop.signal);
    } finally {
      conn.disconnect();
      if (this.loops.get(workspace)?.conn === conn) this.loops.delete(workspace);
    }
  }

  interrupt(workspace: string): void {
    const b = this.loops.get(workspace);
    b?.stop.abort();
    b?.conn.disconnect();
    this.loops.delete(workspace);
  }
}

/**
 * What `settle` settles with (it starts a read or a timer and returns how to release it), or
 * STOPPED when the loop is stopped first. The stop is listened to only until then.
 */
function untilStopped<T>(
  stopped: AbortSignal,
  settle: (resolve: (v: T | typeof STOPPED) => void, reject: (err: Error) => void) => () => void,
): Promise<T | typeof STOPPED> {
  if (stopped.aborted) return Promise.resolve(STOPPED);
  return new Promise<T | typeof STOPPED>((resolve, reject) => {
    let release = () => {};
    const finish = () => {
      stopped.removeEventListener('abort', onStop);
      release();
    };
    const onStop = () => {
      finish();
      resolve(STOPPED);
    };
    stopped.addEventListener('abort', onStop);
    release = settle(
      (v) => {
        finish();
        resolve(v);
      },
      (err) => {
        finish();
        reject(err);
      },
    );
  });
}

/** A blocking read raced with the loop's stop (STOPPED) and a deadline (the deadline rejects). */
export function raceBlocking<T>(
  read: Promise<T>,
  stopped: AbortSignal,
  deadlineMs: number,
): Promise<T | typeof STOPPED> {
  read.catch(() => {});
  return untilStopped<T>(stopped, (resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`blocking read gave no answer in ${deadlineMs} ms`)),
      deadlineMs,
    );
    read.then(resolve, reject);
    return () => clearTimeout(timer);
  });
}

/** Waits `ms`, or less when the loop is stopped meanwhile: STOPPED then, undefined otherwise. */
export function pauseUnlessStopped(ms: number, stopped: AbortSignal): Promise<undefined | typeof STOPPED> {
  return untilStopped<undefined>(stopped, (resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    return () => clearTimeout(timer);
  });
}
