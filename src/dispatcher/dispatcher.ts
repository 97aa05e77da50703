import type { Logger } from 'pino';
import { BlockingLoops, raceBlocking, STOPPED } from '../adapters/redis/client.ts';
import { routingIndexKeys, workspaceKeys } from '../adapters/redis/keys.ts';
import { luaScript, type RedisClient, runLua } from '../adapters/redis/scripts.ts';

/** The dispatcher's Lua step (its file documents its keys and arguments). */
const DISPATCH = luaScript('dispatch', new URL('./lua/dispatch-12.lua', import.meta.url));

export interface DispatcherOptions {
  /** Most decisions one Lua step makes (each decision in it is atomic on its own). */
  readonly batch: number;
  /**
   * Most reads one Lua step makes: the bound on how long it holds Redis. A walk that needs more
   * resumes in the next step.
   */
  readonly maxReads: number;
  /**
   * An agent whose skills make at most this many subsets (up to the widest queued skill set)
   * looks each up; above it, it walks the queue heads in routing order.
   */
  readonly enumerateMax: number;
  /**
   * BZPOPMIN's timeout. Waking is driven by the projector; the timeout only bounds how long work
   * waits if a dispatcher died between taking a wake-up and acting on it.
   */
  readonly wakeTimeoutS: number;
}

export const defaultDispatcherOptions: DispatcherOptions = {
  batch: 64,
  maxReads: 1024,
  enumerateMax: 256,
  wakeTimeoutS: 5,
};

/**
 * One dispatch step: at most `opts.batch` decisions and `opts.maxReads` reads. Returns [made, more
 * work left]. `atMs` dates the decisions instead of Redis's clock (a rebuild replaying them).
 */
export async function dispatchStep(
  redis: RedisClient,
  workspace: string,
  opts: DispatcherOptions = defaultDispatcherOptions,
  atMs?: number,
): Promise<[made: number, more: boolean]> {
  const k = workspaceKeys(workspace);
  const [made, more] = (await runLua(
    redis,
    DISPATCH,
    [k.events, k.meta, k.queue, k.skillSets, k.candidates, k.stats, ...routingIndexKeys(k)],
    [
      k.prefix,
      workspace,
      opts.batch,
      opts.maxReads,
      opts.enumerateMax,
      ...(atMs === undefined ? [] : [atMs]),
    ],
  )) as [number, number];
  return [made, more === 1];
}

/** Runs routing decisions until no work is left; returns the assignments made. */
export async function dispatchPending(
  redis: RedisClient,
  workspace: string,
  opts: DispatcherOptions = defaultDispatcherOptions,
): Promise<number> {
  let total = 0;
  for (;;) {
    const [made, more] = await dispatchStep(redis, workspace, opts);
    total += made;
    if (!more) return total;
  }
}

/** The dispatcher role: blocks on the workspace's wake set and routes whatever is waiting. */
export class Dispatcher {
  private readonly loops: BlockingLoops;
  assignments = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly log: Logger,
    private readonly opts: DispatcherOptions = defaultDispatcherOptions,
  ) {
    this.loops = new BlockingLoops(redis);
  }

  run(workspace: string, running: () => boolean): Promise<void> {
    const k = workspaceKeys(workspace);
    return this.loops.run(workspace, async (conn, stopped) => {
      this.assignments += await dispatchPending(this.redis, workspace, this.opts);
      while (running()) {
        // A command queued while the connection is down is never settled by disconnect():
        // race it with the interrupt and a deadline, so the loop cannot hang.
        const woke = await raceBlocking(
          conn.bzpopmin(k.wake, this.opts.wakeTimeoutS),
          stopped,
          this.opts.wakeTimeoutS * 1000 + 5000,
        );
        if (woke === STOPPED) return;
        const made = await dispatchPending(this.redis, workspace, this.opts);
        this.assignments += made;
        if (made > 0) this.log.debug({ workspace, made }, 'assignments made');
      }
    });
  }

  interrupt(workspace: string): void {
    this.loops.interrupt(workspace);
  }
}
