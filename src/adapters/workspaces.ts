import type { Logger } from 'pino';
import { globalKeys } from './redis/keys.ts';
import type { RedisClient } from './redis/scripts.ts';

/**
 * Runs one loop per workspace for a worker role: the configured workspaces at once, and any
 * workspace that appears in the registry later (it is registered when its first command is
 * appended). `stop` asks every loop to end after its current step and waits for them.
 */
export interface WorkspaceLoop {
  run(workspace: string, running: () => boolean): Promise<void>;
  /** Called on stop to interrupt blocking reads. */
  interrupt?(workspace: string): void;
}

export class WorkspaceRunner {
  private readonly loops = new Map<string, Promise<void>>();
  private running = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly loop: WorkspaceLoop,
    private readonly log: Logger,
    private readonly opts: { workspaces: readonly string[]; discover: boolean; discoverEveryMs?: number },
  ) {}

  start(): void {
    this.running = true;
    for (const ws of this.opts.workspaces) this.ensure(ws);
    if (this.opts.discover) {
      const tick = () => {
        this.redis
          .smembers(globalKeys.workspaces)
          .then((all) => {
            for (const ws of all) this.ensure(ws);
          })
          .catch((err: Error) =>
            this.log.warn({ err: err.message }, 'cannot read the workspace registry; retrying'),
          )
          .finally(() => {
            if (this.running) this.timer = setTimeout(tick, this.opts.discoverEveryMs ?? 2000);
          });
      };
      tick();
    }
  }

  workspaces(): string[] {
    return [...this.loops.keys()];
  }

  ensure(workspace: string): void {
    if (!this.running || this.loops.has(workspace)) return;
    const p = this.runForever(workspace);
    this.loops.set(workspace, p);
  }

  private async runForever(workspace: string): Promise<void> {
    let backoff = 100;
    while (this.running) {
      try {
        await this.loop.run(workspace, () => this.running);
        backoff = 100;
      } catch (err) {
        if (!this.running) break;
        this.log.warn(
          { workspace, err: (err as Error).message },
          `workspace loop failed; retrying in ${backoff} ms`,
        );
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    for (const ws of this.loops.keys()) this.loop.interrupt?.(ws);
    await Promise.allSettled(this.loops.values());
  }
}
