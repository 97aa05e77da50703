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

export class LeaseKeeper {
  private readonly held = new Set<string>();
  /** Free leases seen while at the fair share, and since when: taken anyway once free for a TTL. */
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
   */
  async tick(workspaces: readonly string[]): Promise<{ gained: string[]; lost: string[] }> {
    const gained: string[] = [];
    const lost: string[] = [];
    const now = Date.now();
    let alive = 1;
    try {
      // Read once before the first round; later rounds read Redis's clock in their pipeline.
      if (this.clockOffset === undefined)
        this.clockOffset = await redisClockOffset(this.redis, this.holder.registry);
      // Best effort: the registry of live dispatchers only shapes the fair share. One key: one
      // round trip (a Redis that does not answer costs one command timeout, not three). TIME after
      // the key's commands goes to the key's node (its clock).
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
      alive = Math.max(1, Number(reply[2]?.[1]));
      const [s, us] = (reply[3]?.[1] ?? []) as string[];
      const offset = Number(s) * 1000 + Math.floor(Number(us) / 1000) - (sent + Date.now()) / 2;
      if (Number.isFinite(offset)) this.clockOffset = offset;
    } catch (err) {
      this.log.warn(
        { err: (err as Error).message },
        `cannot update the ${this.holder.role} registry; keeping leases, retrying. ${redisAdvice(err)}`,
      );
    }
    const wanted = new Set(workspaces);
    const share = Math.ceil(workspaces.length / alive);
    let surplus = Math.max(
      0,
      [...this.held].filter((ws) => wanted.has(ws) && !this.adopted.has(ws)).length - share,
    );
    // Every lease at once: a Redis (or a cluster master) that does not answer costs one command
    // timeout for the round, not one per workspace, so the other leases are renewed in time and
    // a stop waiting for the round ends within SHUTDOWN_TIMEOUT_MS.
    const handBack: string[] = [];
    const renew: string[] = [];
    for (const ws of this.held) {
      // Idle, or above the fair share now that more dispatchers run: hand it back.
      if (!wanted.has(ws) || (surplus > 0 && !this.adopted.has(ws))) {
        if (wanted.has(ws)) surplus--;
        handBack.push(ws);
      } else renew.push(ws);
    }
    await Promise.all([
      ...handBack.map(async (ws) => {
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
      }),
      ...renew.map(async (ws) => {
        try {
          const ok = (await runLua(
            this.redis,
            RENEW,
            [this.holder.key(ws)],
            [this.owner, this.opts.ttlMs],
          )) as number;
          if (ok !== 1) {
            this.held.delete(ws);
            this.adopted.delete(ws);
            lost.push(ws);
            // Who holds it now (read only when a renewal fails): nobody when it lapsed (this
            // process or Redis paused past its lifetime), and this round takes it again if free.
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
          }
        } catch (err) {
          this.log.warn(
            { workspace: ws, err: (err as Error).message },
            `cannot renew a ${this.holder.role} lease; retrying. ${redisAdvice(err)}`,
          );
        }
      }),
    ]);
    // Free leases are taken up to the fair share, as many at once as there is room for, and again
    // for those another dispatcher took meanwhile.
    const candidates = workspaces.filter((ws) => !this.held.has(ws));
    let next = 0;
    while (next < candidates.length && this.held.size < share) {
      const batch = candidates.slice(next, next + (share - this.held.size));
      next += batch.length;
      await Promise.all(batch.map((ws) => this.take(ws, false, gained)));
    }
    // Above the fair share a lease is taken only when it stayed free for a whole TTL: the other
    // live dispatchers may not serve this workspace at all, and it must not go unserved.
    await Promise.all(
      candidates.slice(next).map(async (ws) => {
        if (this.held.has(ws)) return;
        const since = this.freeSince.get(ws);
        if (since === undefined || now - since < this.opts.ttlMs) {
          if (since === undefined && (await this.redis.exists(this.holder.key(ws)).catch(() => 1)) === 0)
            this.freeSince.set(ws, now);
          return;
        }
        await this.take(ws, true, gained);
      }),
    );
    return { gained, lost };
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
   * SHUTDOWN_TIMEOUT_MS with a few workspaces.
   */
  async releaseAll(): Promise<void> {
    const held = [...this.held];
    this.held.clear();
    this.adopted.clear();
    this.freeSince.clear();
    await Promise.all([
      ...held.map((ws) => runLua(this.redis, RELEASE, [this.holder.key(ws)], [this.owner]).catch(() => {})),
      this.redis.zrem(this.holder.registry, this.owner).catch(() => {}),
    ]);
  }
}
