import type { Logger } from 'pino';
import { redisAdvice } from '../adapters/redis/advice.ts';
import { globalKeys, workspaceKeys } from '../adapters/redis/keys.ts';
import { luaScript, type RedisClient, runLua } from '../adapters/redis/scripts.ts';
import { redisClockOffset } from './dispatcher.ts';

/**
 * Workspace leases for dispatchers: each workspace is served by one dispatcher at a time. A lease
 * is a key in the workspace's slot holding the owner's id with a time-to-live; the owner renews it
 * every `renewEveryMs`, and when an owner dies its leases expire and another dispatcher takes them
 * within `ttlMs + renewEveryMs`. Routing stays correct without leases (every decision is one
 * atomic step); leases keep dispatchers from contending and spread workspaces over them: a
 * dispatcher takes at most its fair share while other live dispatchers have room. Another role
 * (the archiver) keeps leases the same way under its own keys (`LeaseOptions.holder`).
 */
export interface LeaseOptions {
  readonly ttlMs: number;
  readonly renewEveryMs: number;
  /** Whose leases these are (default the dispatchers'): another role keeps its own leases and registry. */
  readonly holder?: LeaseHolder;
}

export interface LeaseHolder {
  /** The role, in log lines. */
  readonly role: string;
  /** The lease key of a workspace (in its slot). */
  readonly key: (workspace: string) => string;
  /** Zset of the live holders, scored by their last renewal (Redis's clock, ms). */
  readonly registry: string;
}

export const DISPATCHER_LEASES: LeaseHolder = {
  role: 'dispatcher',
  key: (ws) => workspaceKeys(ws).lease,
  registry: globalKeys.dispatchers,
};

export const defaultLeaseOptions: LeaseOptions = { ttlMs: 3000, renewEveryMs: 1000 };

const RENEW = luaScript('leaseRenew', new URL('./lua/lease-renew-1.lua', import.meta.url));
const RELEASE = luaScript('leaseRelease', new URL('./lua/lease-release-1.lua', import.meta.url));

/**
 * How much of a renewal interval a lease round waits for the registry of live holders before it
 * goes on with the last count: renewals are sent at the round's start, and rounds start a renewal
 * interval apart (at once after one that took longer, held by a command timeout), so they stay
 * within a lease's lifetime whatever the registry's master does.
 */
const REGISTRY_WAIT = 0.25;

export class LeaseKeeper {
  private readonly held = new Set<string>();
  /**
   * Free leases seen while at the fair share, and since when (performance.now(): a step of the
   * host's clock changes nothing): taken anyway once free for a TTL. Forgotten once seen held, or
   * no longer a candidate.
   */
  private readonly freeSince = new Map<string, number>();
  /** Leases taken because nobody else took them: never handed back as surplus. */
  private readonly adopted = new Set<string>();

  private readonly holder: LeaseHolder;
  /**
   * Redis's clock minus this host's, ms (undefined until read): the registry is scored by Redis's
   * clock, as the API instances' heartbeats are. By each host's own, a host ahead by more than a
   * lease lifetime pruned every other holder's entry and counted itself alone (its share: every
   * workspace), and one behind had its entry pruned by the others.
   */
  private clockOffset: number | undefined;
  /** Live holders as the last registry round that ended counted them (1 when it failed). */
  private alive = 1;
  /** The registry round under way, if any: one at a time, however long a round waits for it. */
  private registryRound: Promise<void> | undefined;

  constructor(
    private readonly redis: RedisClient,
    readonly owner: string,
    private readonly log: Logger,
    readonly opts: LeaseOptions = defaultLeaseOptions,
  ) {
    this.holder = opts.holder ?? DISPATCHER_LEASES;
  }

  holds(workspace: string): boolean {
    return this.held.has(workspace);
  }

  get count(): number {
    return this.held.size;
  }

  /**
   * Renews held leases, drops lost ones, hands back idle ones and any above a fair share, and
   * takes free ones up to a fair share. Each lease is handled on its own: a failing node (its
   * slot's master down) costs only the leases on it. Returns what changed.
   *
   * The registry of live holders is one global key, on a cluster maybe on another master than the
   * workspaces': it is read beside the renewals and waited for only REGISTRY_WAIT of a renewal
   * interval. A master that does not answer (frozen, before or without a failover) held every
   * renewal of the process for a command timeout (2 s), the renewals then came a lease's lifetime
   * apart, and every lease lapsed each round (test/workers/leases-slow-global.test.ts). A round
   * that does not see the registry's answer goes on with the last count; the read goes on beside.
   */
  async tick(workspaces: readonly string[]): Promise<{ gained: string[]; lost: string[] }> {
    const gained: string[] = [];
    const lost: string[] = [];
    const now = performance.now();
    const wanted = new Set(workspaces);
    this.registryRound ??= this.updateRegistry().finally(() => {
      this.registryRound = undefined;
    });
    // Which of the others are free: one EXISTS each, all at once, sent with the renewals (a master
    // that does not answer, holding one of this holder's leases and one of another's, costs the
    // round one command timeout, not two one after the other: the renewals then stay within a
    // lease's lifetime). Taking them with a SET NX each, one room's worth after the other, sent one
    // SET per lease held by others every round (a keeper with room for one among 4,001
    // workspaces: 2,000 in sequence, 700 ms; test/workers/leases-room.test.ts). One that cannot be
    // read is not taken this round.
    const look = (ws: string): Promise<'free' | 'held' | Error> =>
      this.redis.exists(this.holder.key(ws)).then(
        (n) => (n === 0 ? 'free' : 'held'),
        (err: Error) => err,
      );
    const first = workspaces.filter((ws) => !this.held.has(ws));
    const looking = Promise.all(first.map(look));
    // Every lease at once: a Redis (or a cluster master) that does not answer costs one command
    // timeout for the round, not one per workspace, so the other leases are renewed in time and
    // a stop waiting for the round ends within SHUTDOWN_TIMEOUT_MS. Idle ones are handed back.
    await Promise.all([
      settledWithin(this.registryRound, this.opts.renewEveryMs * REGISTRY_WAIT),
      ...[...this.held].map((ws) => (wanted.has(ws) ? this.renew(ws, lost) : this.handBack(ws, lost))),
    ]);
    // Above the fair share now that more holders run: hand the surplus back (renewed above, so a
    // registry answer that came late costs it nothing).
    const share = Math.ceil(workspaces.length / this.alive);
    const own = [...this.held].filter((ws) => wanted.has(ws) && !this.adopted.has(ws));
    await Promise.all(own.slice(0, Math.max(0, own.length - share)).map((ws) => this.handBack(ws, lost)));
    // Those this round lost (a lease that lapsed is free again, taken back in the same round) are
    // looked at now, their masters having just answered.
    const looked = new Set(first);
    const again = workspaces.filter((ws) => !this.held.has(ws) && !looked.has(ws));
    const candidates = [...first, ...again];
    const states = [...(await looking), ...(await Promise.all(again.map(look)))];
    for (const ws of this.freeSince.keys())
      if (!wanted.has(ws) || this.held.has(ws)) this.freeSince.delete(ws);
    const free: string[] = [];
    let unread: Error | undefined;
    const unreadOnes: string[] = [];
    candidates.forEach((ws, i) => {
      const state = states[i];
      if (state === 'free') free.push(ws);
      else if (state === 'held') this.freeSince.delete(ws);
      else {
        unread ??= state;
        unreadOnes.push(ws);
      }
    });
    const unreadCount = unreadOnes.length;
    // Free leases are taken up to the fair share, as many at once as there is room for, and again
    // for those another holder took meanwhile.
    let next = 0;
    while (next < free.length && this.held.size < share) {
      const batch = free.slice(next, next + (share - this.held.size));
      next += batch.length;
      await Promise.all(batch.map((ws) => this.take(ws, false, gained)));
    }
    if (unread && this.held.size < share)
      this.log.warn(
        { err: unread.message, leases: unreadCount, workspaces: unreadOnes.slice(0, 10) },
        `cannot tell whether ${unreadCount} ${this.holder.role} lease${unreadCount === 1 ? ' is' : 's are'} free; retrying. ${redisAdvice(unread)}`,
      );
    // Above the fair share a lease is taken only when it stayed free for a whole TTL: the other
    // live holders may not serve this workspace at all, and it must not go unserved.
    await Promise.all(
      free.slice(next).map(async (ws) => {
        const since = this.freeSince.get(ws);
        if (since === undefined) this.freeSince.set(ws, now);
        else if (now - since >= this.opts.ttlMs) await this.take(ws, true, gained);
      }),
    );
    return { gained, lost };
  }

  /**
   * Adds this holder to the registry, prunes the holders not seen for a lease lifetime and counts
   * the others (`alive`). Best effort: the registry only shapes the fair share; when it fails the
   * holder counts itself alone until a registry round succeeds. One key: one round trip (a Redis that does not answer
   * costs one command timeout, not three). TIME after the key's commands goes to the key's node
   * (its clock).
   */
  private async updateRegistry(): Promise<void> {
    try {
      // Read once before the first round; later rounds read Redis's clock in their pipeline.
      if (this.clockOffset === undefined)
        this.clockOffset = await redisClockOffset(this.redis, this.holder.registry);
      const at = Date.now() + this.clockOffset;
      const sent = Date.now();
      const reply = await this.redis
        .pipeline()
        .zadd(this.holder.registry, at, this.owner)
        .zremrangebyscore(this.holder.registry, 0, at - this.opts.ttlMs)
        .zcard(this.holder.registry)
        .time()
        .exec();
      const failed = reply?.find(([err]) => err)?.[0];
      if (!reply || failed) throw failed ?? new Error('no reply');
      this.alive = Math.max(1, Number(reply[2]?.[1]) || 1);
      const [s, us] = (reply[3]?.[1] ?? []) as string[];
      const offset = Number(s) * 1000 + Math.floor(Number(us) / 1000) - (sent + Date.now()) / 2;
      if (Number.isFinite(offset)) this.clockOffset = offset;
    } catch (err) {
      this.alive = 1;
      this.log.warn(
        { err: (err as Error).message },
        `cannot update the ${this.holder.role} registry; keeping leases, retrying. ${redisAdvice(err)}`,
      );
    }
  }

  /** Renews the lease of `ws`; one lost (lapsed, or another holder's now) goes to `lost`. */
  private async renew(ws: string, lost: string[]): Promise<void> {
    try {
      const ok = (await runLua(
        this.redis,
        RENEW,
        [this.holder.key(ws)],
        [this.owner, this.opts.ttlMs],
      )) as number;
      if (ok === 1) return;
      this.held.delete(ws);
      this.adopted.delete(ws);
      lost.push(ws);
      // Who holds it now (read only when a renewal fails): nobody when it lapsed (this process or
      // Redis paused past its lifetime), and this round takes it again if free.
      const holder = await this.redis.get(this.holder.key(ws)).catch(() => undefined);
      if (holder === null)
        this.log.warn(
          { workspace: ws, ttlMs: this.opts.ttlMs },
          `${this.holder.role} lease lapsed before it was renewed (this process or Redis paused longer than LEASE_TTL_MS); taking it again if no other ${this.holder.role} has. If it recurs, find what paused it (Redis's SLOWLOG and its log, this host's CPU and swap) or raise LEASE_TTL_MS`,
        );
      else
        this.log.warn(
          { workspace: ws, ...(holder !== undefined ? { holder } : {}) },
          `${this.holder.role} lease lost; another ${this.holder.role} serves this workspace now`,
        );
    } catch (err) {
      this.log.warn(
        { workspace: ws, err: (err as Error).message },
        `cannot renew a ${this.holder.role} lease; retrying. ${redisAdvice(err)}`,
      );
    }
  }

  /** Hands the lease of `ws` back (idle, or above the fair share); it goes to `lost`. */
  private async handBack(ws: string, lost: string[]): Promise<void> {
    try {
      this.adopted.delete(ws);
      await runLua(this.redis, RELEASE, [this.holder.key(ws)], [this.owner]);
      this.held.delete(ws);
      lost.push(ws);
    } catch (err) {
      this.log.warn(
        { workspace: ws, err: (err as Error).message },
        `cannot hand back a ${this.holder.role} lease; retrying. ${redisAdvice(err)}`,
      );
    }
  }

  /** Takes the lease of `ws` when it is free (`adopted`: above the fair share). */
  private async take(ws: string, adopted: boolean, gained: string[]): Promise<void> {
    try {
      const ok = await this.redis.set(this.holder.key(ws), this.owner, 'PX', this.opts.ttlMs, 'NX');
      this.freeSince.delete(ws);
      if (ok === 'OK') {
        this.held.add(ws);
        if (adopted) this.adopted.add(ws);
        gained.push(ws);
        this.log.info({ workspace: ws, adopted }, `${this.holder.role} lease taken`);
      }
    } catch (err) {
      this.log.warn(
        { workspace: ws, err: (err as Error).message },
        `cannot take a ${this.holder.role} lease; retrying. ${redisAdvice(err)}`,
      );
    }
  }

  /**
   * Hands every lease back, and leaves the registry, at once: on a stop while Redis does not
   * answer, each call waits out its command timeout, and one after the other they would outlast
   * SHUTDOWN_TIMEOUT_MS with a few workspaces. The registry is left after a registry round still
   * under way (a round does not wait for it): its ZADD landing after the ZREM would count this
   * holder as live for another lease lifetime.
   */
  async releaseAll(): Promise<void> {
    const held = [...this.held];
    this.held.clear();
    this.adopted.clear();
    this.freeSince.clear();
    const leave = async () => {
      await this.registryRound;
      await this.redis.zrem(this.holder.registry, this.owner);
    };
    await Promise.all([
      ...held.map((ws) => runLua(this.redis, RELEASE, [this.holder.key(ws)], [this.owner]).catch(() => {})),
      leave().catch(() => {}),
    ]);
  }
}

/**
 * Resolves once `promise` settles or `ms` have passed, whichever comes first; `promise` itself goes
 * on (its failure is its own to handle).
 */
export function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(
      () => {},
      () => {},
    ),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
