import type { Logger } from 'pino';
import { blockingConnection, raceBlocking, STOPPED, stopSignal } from '../adapters/redis/client.ts';
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
      [
        k.events,
        k.queue,
        k.skillSets,
        k.dirtyAgents,
        k.dirtyContacts,
        k.stats,
        k.wake,
        k.agents,
        k.contacts,
        k.availability,
        k.skillSetQueues,
      ],
      [k.prefix, workspace, opts.batch],
    )) as [number, number];
    total += made;
    if (more !== 1) return total;
  }
}

/** The dispatcher role: blocks on the workspace's wake set and routes whatever is waiting. */
export class Dispatcher implements WorkspaceLoop {
  private readonly blocking = new Map<string, { conn: RedisClient; stop: () => void }>();
  assignments = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly log: Logger,
    private readonly opts: DispatcherOptions = defaultDispatcherOptions,
  ) {}

  async run(workspace: string, running: () => boolean): Promise<void> {
    const k = workspaceKeys(workspace);
    const conn = blockingConnection(this.redis);
    const stop = stopSignal();
    this.blocking.set(workspace, { conn, stop: stop.fire });
    try {
      this.assignments += await dispatchPending(this.redis, workspace, this.opts);
      while (running()) {
        // A command queued while the connection is down is never settled by disconnect():
        // race it with the interrupt and a deadline, so the loop cannot hang.
        const woke = await raceBlocking(
          conn.bzpopmin(k.wake, this.opts.wakeTimeoutS),
          stop.promise,
          this.opts.wakeTimeoutS * 1000 + 5000,
        );
        if (woke === STOPPED) return;
        const made = await dispatchPending(this.redis, workspace, this.opts);
        this.assignments += made;
        if (made > 0) this.log.debug({ workspace, made }, 'assignments made');
      }
    } finally {
      conn.disconnect();
      if (this.blocking.get(workspace)?.conn === conn) this.blocking.delete(workspace);
    }
  }

  interrupt(workspace: string): void {
    const b = this.blocking.get(workspace);
    b?.stop();
    b?.conn.disconnect();
    this.blocking.delete(workspace);
  }
}
