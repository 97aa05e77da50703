/**
 * Supervision of the servers the launcher starts (redis-server nodes, HAProxy, keepalived): a
 * process that exits while the launcher is not stopping is started again, after 1 s, then 2 s,
 * 4 s, ... at most 30 s between attempts; the back-off starts over once a process has run for a
 * minute. Every exit and restart is said to the user and noted in the process's log file.
 */
import type { ChildProcess } from 'node:child_process';
import { hasExited } from './child-processes.ts';
import type { RotatingLog } from './log-file.ts';

export interface SupervisedHandle {
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export interface SupervisorOptions<H extends SupervisedHandle> {
  /** How the user reads it, e.g. `redis-server 127.0.0.1:7001`. */
  readonly name: string;
  /** Starts the process again (same command line); rejects if it did not come up. */
  readonly restart: () => Promise<H>;
  readonly say: (line: string) => void;
  /** True once the launcher stops: exits are expected then. */
  readonly stopping: () => boolean;
  readonly log?: RotatingLog;
  /** After each successful restart, with the new handle. */
  readonly onRestarted?: (handle: H) => void;
  /** First delay, ms. Default 1000. */
  readonly firstDelayMs?: number;
  /** Longest delay, ms. Default 30 000. */
  readonly maxDelayMs?: number;
}

/** Every supervisor of this process, for the counts the launcher reports. */
export const supervisors: Supervisor<SupervisedHandle>[] = [];

export class Supervisor<H extends SupervisedHandle> {
  /** Restarts that came up. */
  restarts = 0;
  private failures = 0;
  private startedAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    public current: H,
    readonly opts: SupervisorOptions<H>,
  ) {
    this.watch(current);
    supervisors.push(this as unknown as Supervisor<SupervisedHandle>);
  }

  get name(): string {
    return this.opts.name;
  }

  private watch(handle: H): void {
    this.startedAt = Date.now();
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      if (this.stopped || this.opts.stopping() || handle !== this.current) return;
      this.schedule(`exited (${signal ?? code})`);
    };
    if (hasExited(handle.process))
      queueMicrotask(() => onExit(handle.process.exitCode, handle.process.signalCode));
    else handle.process.once('exit', onExit);
  }

  private schedule(why: string): void {
    // A process that ran for a minute starts the back-off over.
    if (Date.now() - this.startedAt > 60_000) this.failures = 0;
    this.failures++;
    const delay = Math.min(
      (this.opts.firstDelayMs ?? 1000) * 2 ** (this.failures - 1),
      this.opts.maxDelayMs ?? 30_000,
    );
    const line = `${this.opts.name} ${why}; restarting in ${(delay / 1000).toFixed(1)} s (attempt ${this.failures})`;
    this.opts.say(line);
    this.opts.log?.note(line);
    this.timer = setTimeout(() => void this.attempt(), delay);
  }

  private async attempt(): Promise<void> {
    this.timer = undefined;
    if (this.stopped || this.opts.stopping()) return;
    let handle: H;
    try {
      handle = await this.opts.restart();
    } catch (err) {
      if (this.stopped || this.opts.stopping()) return;
      this.schedule(`did not start (${(err as Error).message.split('\n')[0]})`);
      return;
    }
    if (this.stopped || this.opts.stopping()) {
      await handle.stop().catch(() => undefined);
      return;
    }
    this.current = handle;
    this.restarts++;
    const line = `${this.opts.name} restarted (restart ${this.restarts})`;
    this.opts.say(line);
    this.opts.log?.note(line);
    this.watch(handle);
    this.opts.onRestarted?.(handle);
  }

  /** No more restarts; stops the current process. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.current.stop();
  }
}
