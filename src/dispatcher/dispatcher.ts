import type { Logger } from 'pino';
import { blockingConnection } from '../adapters/redis/client.ts';
import { workspaceKeys } from '../adapters/redis/keys.ts';
import { type RedisClient, runScript } from '../adapters/redis/scripts.ts';
import type { WorkspaceLoop } from '../adapters/workspaces.ts';

export interface DispatcherOptions {
  /** Most work items one Lua step looks at (each decision in it is atomic on its own). */
  readonly batch: number;
  /**
   * BZPOPMIN's timeout. Waking is driven by the projector; the timeout only bounds how long work
   * waits if a dispatcher died between taking a wake-up and acting on it.
   */
  readonly wakeTimeoutS: number;
}

export const defaultDispatcherOptions: DispatcherOptions = { batch: 64, wakeTimeoutS: 5 };

/** Runs routing decisions until no work is left; returns the assignments made. */
export async function dispatchPending(
  redis: RedisClient,
  workspace: string,
  opts: DispatcherOptions = defaultDispatcherOptions,
): Promise<number> {
  const k = workspaceKeys(workspace);
  let total = 0;
  for (;;) {
    const [made, more] = (await runScript(
      redis,
      'dispatch',
      [k.events, k.queue, k.skillSets, k.dirtyAgents, k.dirtyContacts, k.stats, k.wake],
      [k.prefix, workspace, opts.batch],
    )) as [number, number];
    total += made;
    if (more !== 1) return total;
  }
}

/** The dispatcher role: blocks on the workspace's wake set and routes whatever is waiting. */
export class Dispatcher implements WorkspaceLoop {
  private readonly blocking = new Map<string, RedisClient>();
  assignments = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly log: Logger,
    private readonly opts: DispatcherOptions = defaultDispatcherOptions,
  ) {}

  async run(workspace: string, running: () => boolean): Promise<void> {
    const k = workspaceKeys(workspace);
    const conn = this.blocking.get(workspace) ?? blockingConnection(this.redis);
    this.blocking.set(workspace, conn);
    this.assignments += await dispatchPending(this.redis, workspace, this.opts);
    while (running()) {
      await conn.bzpopmin(k.wake, this.opts.wakeTimeoutS);
      const made = await dispatchPending(this.redis, workspace, this.opts);
      this.assignments += made;
      if (made > 0) this.log.debug({ workspace, made }, 'assignments made');
    }
  }

  interrupt(workspace: string): void {
    this.blocking.get(workspace)?.disconnect();
    this.blocking.delete(workspace);
  }
}
