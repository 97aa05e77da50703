import type { Logger } from 'pino';
import { ifItGoesOn, isSharedFailure, redisAdvice } from '../adapters/redis/advice.ts';
import { globalKeys } from '../adapters/redis/keys.ts';
import { redisClockNow } from '../adapters/redis/redis-clock.ts';
import type { RedisClient } from '../adapters/redis/scripts.ts';
import { settledWithin } from '../dispatcher/leases.ts';

/**
 * Runs one loop per workspace for a worker role: the configured workspaces at once, and any
 * workspace that appears in the registry later (it is registered when its first command is
 * appended). With leases, a loop runs only while this process holds the workspace's lease.
 * `stop` asks every loop to end after its current step and waits for them.
 *
 * The workers (src/projections, src/dispatcher) do not know this runner: a worker is any object
 * with `run` (and `interrupt`), and the leases any object with the shape below; the composition
 * root wires the dispatcher's LeaseKeeper in.
 */
export interface WorkspaceLoop {
  run(workspace: string, running: () => boolean): Promise<void>;
  /** Called to interrupt blocking reads when a loop must end. */
  interrupt?(workspace: string): void;
}

/** Which workspaces this process may serve: one lease per workspace (the dispatcher's LeaseKeeper). */
export interface WorkspaceLeases {
  holds(workspace: string): boolean;
  /** Renews, takes and hands back leases for `workspaces`; returns the ones lost. */
  tick(workspaces: readonly string[]): Promise<{ readonly lost: readonly string[] }>;
  releaseAll(): Promise<void>;
}

export interface RunnerOptions {
  readonly workspaces: readonly string[];
  readonly discover: boolean;
  /** How often the registry (and the leases) are looked at; default 500 ms. */
  readonly discoverEveryMs?: number;
  readonly leases?: WorkspaceLeases;
  /**
   * A discovered workspace with no command for this long is let go (its loop ends after its
   * current step, its connection closes); its next command brings it back within one discovery
   * interval. Configured workspaces are always served.
   */
  readonly idleAfterMs?: number;
}

export const DEFAULT_IDLE_AFTER_MS = 10 * 60_000;

/**
 * How long a runner speaks of one workspace's failures alone when others fail alike (the same
 * thing to do): with hundreds of workspaces failing together (Redis out of connections, or not
 * answering), a line per workspace and retry would bury everything else. The workspace whose
 * failure was logged goes on logging its retries, with how many failures of the others it left
 * out; another takes over once it has not failed for this long.
 */
export const LOOP_FAILURE_REPEAT_MS = 30_000;

export class WorkspaceRunner {
  private readonly loops = new Map<string, Promise<void>>();
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  /** The registry and lease round under way, if any: a stop waits for it before handing leases back. */
  private ticking: Promise<void> | undefined;
  /** The workspaces this runner should serve, as of the last discovery. */
  private wanted = new Set<string>();
  /**
   * Per advice, for the failures every workspace meets alike: the workspace whose failures are
   * logged, until when the others' are only counted, how many and of which, and when last counted.
   */
  private readonly failing = new Map<
    string,
    { workspace: string; until: number; failures: number; workspaces: Set<string>; countedAt: number }
  >();

  constructor(
    private readonly redis: RedisClient,
    private readonly loop: WorkspaceLoop,
    private readonly log: Logger,
    private readonly opts: RunnerOptions,
  ) {}

  start(): void {
    this.running = true;
    const leases = this.opts.leases;
    this.wanted = new Set(this.opts.workspaces);
    if (!leases) for (const ws of this.opts.workspaces) this.ensure(ws);
    if (!this.opts.discover && !leases) return;
    const every = this.opts.discoverEveryMs ?? 500;
    // The workspaces the registry named last: while it cannot be read (on a cluster, its master
    // down or failing over), the round goes on with them, so the leases held are renewed and the
    // configured workspaces taken; skipping the round would let every lease lapse.
    let found: string[] = [];
    const idleAfter = this.opts.idleAfterMs ?? DEFAULT_IDLE_AFTER_MS;
    // One read of the registry at a time; a round that does not wait for it to end finds it next.
    let reading: Promise<void> | undefined;
    const discover = (): Promise<void> =>
      (reading ??= (async () => {
        try {
          // By Redis's clock, as every process marks it (redis-clock.ts).
          found = await this.redis.zrangebyscore(
            globalKeys.activeWorkspaces,
            (await redisClockNow(this.redis)) - idleAfter,
            '+inf',
          );
        } catch (err) {
          if (this.running)
            this.log.warn(
              { err: (err as Error).message },
              `cannot read the workspace registry; serving the workspaces it named last, retrying. ${redisAdvice(err)}`,
            );
        }
      })().finally(() => {
        reading = undefined;
      }));
    const tick = async () => {
      const started = performance.now();
      try {
        // With leases, the registry (one global key: on a cluster maybe on another master than the
        // workspaces') is waited for a quarter of a round at most: a master that does not answer
        // held the renewals for a command timeout (2 s), 3 s apart with the round's 1 s, and every
        // lease lapsed each round (test/workers/leases-slow-global.test.ts). The read goes on
        // beside, and a later round serves what it found.
        if (this.opts.discover)
          if (leases) await settledWithin(discover(), every / 4);
          else await discover();
        const all = [...new Set([...this.opts.workspaces, ...found])].sort();
        this.wanted = new Set(all);
        for (const ws of this.loops.keys()) if (!this.wanted.has(ws)) this.loop.interrupt?.(ws);
        if (!leases) {
          for (const ws of all) this.ensure(ws);
        } else if (this.running) {
          const { lost } = await leases.tick(all);
          for (const ws of lost) this.loop.interrupt?.(ws);
          for (const ws of all) if (leases.holds(ws)) this.ensure(ws);
        }
      } catch (err) {
        this.log.warn(
          { err: (err as Error).message },
          `cannot renew or take the workspace leases; retrying. ${redisAdvice(err)}`,
        );
      }
      // Rounds start `every` apart, not `every` after the last one ended: a round held by a
      // command that does not answer (a lease's master frozen: the look at a lease another holder
      // has, a take, waits its command timeout) otherwise put the next renewals a round and a
      // timeout (1 s + 2 s) after the last, a lease's lifetime, and every lease lapsed
      // (test/workers/leases-slow-global.test.ts, another holder's lease hung).
      if (this.running) this.timer = setTimeout(round, Math.max(0, every - (performance.now() - started)));
    };
    const round = () => {
      this.ticking = tick();
    };
    round();
  }

  workspaces(): string[] {
    return [...this.loops.keys()];
  }

  /** Whether a loop runs for `workspace` in this process now. */
  serves(workspace: string): boolean {
    return this.loops.has(workspace);
  }

  ensure(workspace: string): void {
    if (!this.running || this.loops.has(workspace)) return;
    const p = this.runWhileAllowed(workspace).finally(() => this.loops.delete(workspace));
    this.loops.set(workspace, p);
  }

  private allowed(workspace: string): boolean {
    return (
      this.running && this.wanted.has(workspace) && (!this.opts.leases || this.opts.leases.holds(workspace))
    );
  }

  private async runWhileAllowed(workspace: string): Promise<void> {
    let backoff = 100;
    while (this.allowed(workspace)) {
      try {
        await this.loop.run(workspace, () => this.allowed(workspace));
        backoff = 100;
      } catch (err) {
        if (!this.allowed(workspace)) break;
        this.loopFailed(workspace, err, backoff);
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  /**
   * Logs a loop's failure (what to do about it). A failure every workspace meets alike (Redis out
   * of connections or not answering: isSharedFailure) is logged for one workspace at a time:
   * another's, within LOOP_FAILURE_REPEAT_MS of that workspace's last line, is only counted, and
   * the next line says how many failures of how many other workspaces were left out and names the
   * first ten (counts older than that window are dropped: their time had its lines). Any other
   * failure (a workspace's own keys) is logged for each workspace, as it comes.
   */
  private loopFailed(workspace: string, err: unknown, backoff: number): void {
    const advice = ifItGoesOn(err);
    const message = String((err as Error)?.message ?? err);
    const line = (more: Record<string, unknown>, said: string) =>
      this.log.warn(
        { workspace, err: message, ...more },
        `workspace loop failed; retrying in ${backoff} ms. ${advice}${said}`,
      );
    if (!isSharedFailure(err)) {
      line({}, '');
      return;
    }
    const now = Date.now();
    const seen = this.failing.get(advice);
    if (seen && now < seen.until && seen.workspace !== workspace) {
      seen.failures += 1;
      seen.workspaces.add(workspace);
      seen.countedAt = now;
      return;
    }
    seen?.workspaces.delete(workspace);
    const left =
      seen && seen.workspaces.size > 0 && now - seen.countedAt < LOOP_FAILURE_REPEAT_MS ? seen : undefined;
    this.failing.set(advice, {
      workspace,
      until: now + LOOP_FAILURE_REPEAT_MS,
      failures: 0,
      workspaces: new Set(),
      countedAt: 0,
    });
    if (!left) {
      line({}, '');
      return;
    }
    const n = left.failures;
    const w = left.workspaces.size;
    line(
      { failures: n, workspaces: w, others: [...left.workspaces].slice(0, 10) },
      ` ${n} more such failure${n === 1 ? '' : 's'} of ${w} other workspace${w === 1 ? '' : 's'} since the last such line.`,
    );
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    for (const ws of this.loops.keys()) this.loop.interrupt?.(ws);
    await Promise.allSettled(this.loops.values());
    // A round under way may still take a lease (its SET was not sent yet): after it, none is.
    await this.ticking;
    await this.opts.leases?.releaseAll();
  }
}
