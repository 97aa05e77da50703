import type { Redis } from 'ioredis';
import { isCluster } from './client.ts';
import type { RedisClient } from './scripts.ts';

export interface DependencyStatus {
  readonly reachable: boolean;
  readonly latencyMs: number | null;
  readonly error?: string;
  readonly since: string;
  /**
   * On a Redis Cluster, the masters (`host:port`) that did not answer the last check while others
   * did: their workspaces' commands fail, the other workspaces are served.
   */
  readonly unreachable?: readonly string[];
}

/** What the status says of a node of a Redis Cluster given as a single Redis (REDIS_URL). */
const NODE_OF_A_CLUSTER =
  "is a node of a Redis Cluster (cluster_enabled:1), reached as a single Redis: commands on the workspaces of the other nodes' slots fail (MOVED). Give the cluster's nodes as REDIS_CLUSTER_NODES instead of REDIS_URL";

/**
 * Whether a Redis reached as a single server is a node of a Redis Cluster (INFO's Cluster section
 * says cluster_enabled:1): a client of one node cannot use it, every command on a key of another
 * node's slots fails with MOVED. A user whose ACL has no INFO (or a server without the command)
 * counts as no cluster: it is not told apart.
 */
export async function isClusterNode(redis: Redis): Promise<boolean> {
  const info = await redis.info('cluster').catch((err: Error) => {
    if (!/NOPERM|no permissions|unknown command/i.test(err.message)) throw err;
    return '';
  });
  return /^cluster_enabled:1\b/m.test(info);
}

/** How long a check waits for an answer. */
const CHECK_TIMEOUT_MS = 1000;

/**
 * How long the first check waits for the client's first connection. A cluster client reads the
 * slot map from a seed, then connects and logs in to each master: 0.6 - 1 s on a loaded machine,
 * more than a check's own timeout. A connection attempt that fails ends the wait at once.
 */
const FIRST_CONNECT_TIMEOUT_MS = 5000;

/** Resolves once the client is connected; rejects when its attempt fails or takes too long. */
function firstConnection(redis: RedisClient): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const settle = (err?: Error) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('close', onClose);
      redis.off('end', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => settle();
    const onClose = () => settle(new Error('the connection to Redis could not be made'));
    const timer = setTimeout(
      () => settle(new Error(`not connected within ${FIRST_CONNECT_TIMEOUT_MS / 1000} s`)),
      FIRST_CONNECT_TIMEOUT_MS,
    );
    redis.once('ready', onReady);
    redis.once('close', onClose);
    redis.once('end', onClose);
  });
}

function withinCheckTimeout<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no answer within 1 s')), CHECK_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Watches Redis with a PING a second (on a single Redis with `INFO cluster` too, which tells a node
 * of a Redis Cluster given as REDIS_URL: the process is paused with that reason). While it fails,
 * the process reports `paused` with the reason; it turns `running` again by itself when Redis
 * answers.
 *
 * On a Redis Cluster every master of the slot map is PINGed: a PING sent through the cluster client
 * names no key and goes to whichever node the client picks, so one master that does not answer
 * (frozen, cut off, not failed over yet) made one check in three fail and the process flip between
 * `running` and `paused` (and `/health` between 200 and 503) at random. The process can serve the
 * workspaces of every master that answers: it is `paused` only when none does, and the status
 * names the masters that do not.
 */
export class RedisWatch {
  private state: DependencyStatus = {
    reachable: false,
    latencyMs: null,
    error: 'not checked yet',
    since: new Date().toISOString(),
  };
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private failures = 0;
  /** Why the Redis answering cannot be used as configured (a node of a cluster given as one Redis). */
  private misconfigured: string | undefined;
  /** The client's last connection error since it was last ready (`error`, a cluster's `node error`). */
  private connectionError: string | undefined;
  private readonly pauseListeners: ((reason: string | undefined) => void)[] = [];
  /** Whether the process is stopping (`stopping()`), and what is told when a wait is given up. */
  private ending = false;
  private givingUp: ((reason: string) => void) | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly target: string,
    private readonly everyMs = 1000,
  ) {}

  /**
   * Told `pausedReason` when the process becomes paused (Redis stopped answering, or did not answer
   * the first check), and `undefined` when it answers again: once a change, not at every check.
   */
  onPauseChange(listener: (reason: string | undefined) => void): void {
    this.pauseListeners.push(listener);
  }

  start(): void {
    // A client connected again: the checks that failed before say nothing of this connection.
    this.redis.on('ready', () => {
      this.failures = 0;
      this.connectionError = undefined;
    });
    // Why the client cannot connect (a refused login, a refused connection): a check that times
    // out meanwhile names it, so the reason logged and answered by /health says what to mend.
    const noted = (err: Error & { lastNodeError?: Error }) => {
      // A cluster client's "Failed to refresh slots cache." holds the node's own error (WRONGPASS).
      const cause = err.lastNodeError?.message;
      this.connectionError = cause ? `${err.message} (${cause})` : err.message;
    };
    this.redis.on('error', noted);
    if (isCluster(this.redis)) this.redis.on('node error', noted);
    const tick = async () => {
      const started = performance.now();
      const was = this.state.error === 'not checked yet' ? undefined : this.state.reachable;
      try {
        const unreachable = await this.check();
        const latencyMs = Math.round((performance.now() - started) * 100) / 100;
        const since = this.state.reachable ? this.state.since : new Date().toISOString();
        this.failures = 0;
        // A check that succeeds ends what an earlier error said: a cluster client stays ready
        // through one node's error, so only this clears it there.
        this.connectionError = undefined;
        this.state = {
          reachable: true,
          latencyMs,
          since,
          ...(unreachable.length > 0 ? { unreachable } : {}),
        };
      } catch (err) {
        const since = this.state.reachable ? new Date().toISOString() : this.state.since;
        this.failures++;
        const message = (err as Error).message;
        const error =
          this.connectionError === undefined || message.includes(this.connectionError)
            ? message
            : `${message}; the connection's last error: ${this.connectionError}`;
        this.state = { reachable: false, latencyMs: null, error, since };
      }
      // The first check too: a process that starts paused says so (it would else say nothing).
      if ((was === undefined ? !this.state.reachable : was !== this.state.reachable) && !this.stopped)
        for (const l of this.pauseListeners) l(this.pausedReason);
      if (!this.stopped) this.timer = setTimeout(tick, this.everyMs);
    };
    void tick();
  }

  /**
   * One check: the masters that did not answer while at least one did (none on a single Redis);
   * throws when nothing answered.
   */
  private async check(): Promise<string[]> {
    // At start the client is still connecting: the first check waits for it (bounded), so the
    // process is not paused, and its rate limits not left uncounted, merely because connecting
    // (to a cluster: the slot map, then every master) takes longer than a check's timeout. Later
    // checks do not wait: a client connecting again has lost Redis, and the check says so within
    // its timeout.
    if (
      this.state.error === 'not checked yet' &&
      (this.redis.status === 'connecting' || this.redis.status === 'connect')
    )
      await firstConnection(this.redis);
    const cluster = isCluster(this.redis) && this.redis.status === 'ready' ? this.redis : undefined;
    // A single Redis: asked whether it is a node of a Redis Cluster (INFO's Cluster section),
    // which a client of one node cannot use: every command on a key of another
    // node's slots fails with MOVED, so most workspaces would answer 503 while this one said running.
    if (!isCluster(this.redis)) {
      const redis = this.redis;
      // PING as well: a Redis loading its data answers INFO, not PING. A user whose ACL has no
      // INFO is checked with PING alone.
      const [, clusterNode] = await withinCheckTimeout(Promise.all([redis.ping(), isClusterNode(redis)]));
      this.misconfigured = clusterNode ? NODE_OF_A_CLUSTER : undefined;
      if (this.misconfigured) throw new Error(this.misconfigured);
      return [];
    }
    // A cluster client not connected yet: through the client.
    if (!cluster) {
      await withinCheckTimeout(this.redis.ping());
      return [];
    }
    // The masters the slot map names, and those the client holds connections to: a master whose
    // connection was dropped (it went silent) stays in the slot map until its slots move.
    const connected = new Map<string, Redis>(
      cluster.nodes('master').map((n) => [`${n.options.host}:${n.options.port}`, n]),
    );
    const masters = new Set<string>(connected.keys());
    for (const owners of cluster.slots) if (owners?.[0]) masters.add(owners[0]);
    const names = [...masters].sort();
    if (names.length === 0) {
      await withinCheckTimeout(this.redis.ping());
      return [];
    }
    const answers = await Promise.allSettled(
      names.map((name) => {
        const node = connected.get(name);
        return node
          ? withinCheckTimeout(node.ping())
          : Promise.reject(new Error(`no connection to the master at ${name}`));
      }),
    );
    const failed = names.filter((_, i) => answers[i]!.status === 'rejected');
    if (failed.length === names.length) throw (answers[0] as PromiseRejectedResult).reason;
    return failed;
  }

  get status(): DependencyStatus & { target: string } {
    return { ...this.state, target: this.target };
  }

  get pausedReason(): string | undefined {
    if (this.state.reachable) return undefined;
    if (this.misconfigured && this.state.error === this.misconfigured)
      return `Redis at ${this.target} ${this.misconfigured}`;
    const unreachable = `Redis at ${this.target} is unreachable (${this.state.error ?? 'unknown error'}) since ${this.state.since}`;
    return this.ending
      ? `${unreachable}; this process is stopping`
      : `${unreachable}; commands answer 503 until it is back, and this clears by itself`;
  }

  /** Whether the process is stopping (`stopping()` was called). */
  get isStopping(): boolean {
    return this.ending;
  }

  /**
   * The process is stopping: from now on the stop's last commands (the registry entry, the socket
   * slots, the workers' end and leases, QUIT) are waited for through `unlessUnreachable`, each of
   * which would otherwise wait out its command timeout in turn with Redis gone. `givingUp` is told
   * the reason each time a wait is given up on.
   */
  stopping(givingUp?: (reason: string) => void): void {
    if (this.ending) return;
    this.ending = true;
    this.givingUp = givingUp;
  }

  /**
   * Redis unreachable as a stop sees it: the connection lost (refused, reset), or two checks in a
   * row unanswered since it last connected, so a Redis that stalled past one check's timeout (a
   * fork, a long command) and answers the next is waited for. Not checked yet (a stop right after
   * the start) waits; a node of a cluster given as one Redis answers (it is misconfigured, not gone).
   */
  private unreachableNow(): boolean {
    const { reachable, error } = this.state;
    if (reachable || error === 'not checked yet') return false;
    if (this.misconfigured && error === this.misconfigured) return false;
    return this.redis.status !== 'ready' || this.failures >= 2;
  }

  /**
   * Waits for `work` (a command of the stop) while Redis is reachable: true when it ended, false
   * when Redis was seen unreachable first (looked at now and every 100 ms; its commands then wait
   * on in the client, which the caller disconnects once it is done). Each wait looks afresh: one
   * that starts after Redis answered again waits for it.
   */
  unlessUnreachable(work: Promise<unknown>): Promise<boolean> {
    return new Promise((resolve) => {
      let looking: NodeJS.Timeout | undefined;
      let settled = false;
      const settle = (ended: boolean) => {
        if (settled) return;
        settled = true;
        clearInterval(looking);
        resolve(ended);
      };
      work.then(
        () => settle(true),
        () => settle(true),
      );
      const look = () => {
        if (settled || !this.ending || !this.unreachableNow()) return;
        this.givingUp?.(this.pausedReason ?? String(this.state.error));
        settle(false);
      };
      look();
      if (!settled) {
        looking = setInterval(look, 100);
        looking.unref();
      }
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
