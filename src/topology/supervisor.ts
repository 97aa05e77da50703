/**
 * Supervision of the servers the launcher starts (redis-server nodes, HAProxy, keepalived): a
 * process that exits while the launcher is not stopping is started again, after 1 s, then 2 s,
 * 4 s, ... at most 30 s between attempts; the back-off starts over once a process has run for a
 * minute. Every exit and restart is said to the user and noted in the process's log file, and each
 * supervisor's state (pid, running or restarting, restarts, last restart) is what the launcher's
 * `/status` reports (src/topology/status.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { exitDescription, hasExited } from './child-processes.ts';
import type { RotatingLog } from './log-file.ts';

export interface SupervisedHandle {
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/** What a supervised process is, for `/status`. */
export type ComponentKind = 'redis' | 'haproxy' | 'keepalived' | 'switchboard';

/** One supervised process as the launcher's `/status` reports it. */
export interface ComponentStatus {
  readonly name: string;
  readonly kind: ComponentKind;
  /** The running process's pid; null while it is being restarted or once stopped. */
  readonly pid: number | null;
  readonly state: 'running' | 'restarting' | 'stopped';
  /** Restarts that came up. */
  readonly restarts: number;
  /** When the last restart came up (ISO 8601), null if never. */
  readonly lastRestartAt: string | null;
  /** How the last unexpected exit ended (`SIGKILL`, `1`), and when; null if none. */
  readonly lastExit: string | null;
  readonly lastExitAt: string | null;
}

export interface SupervisorOptions<H extends SupervisedHandle> {
  /** How the user reads it, e.g. `redis-server 127.0.0.1:7001`. */
  readonly name: string;
  readonly kind: ComponentKind;
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
  /** Longest delay, ms. Default 30 000; a longer firstDelayMs is kept as the longest. */
  readonly maxDelayMs?: number;
  /** A process that ran this long before it exited starts the back-off over, ms. Default 60 000. */
  readonly resetAfterMs?: number;
}

/** Every supervisor of this process, for the counts the launcher reports. */
export const supervisors: Supervisor<SupervisedHandle>[] = [];

const listeners = new Set<() => void>();

/** Calls `fn` after every change of any supervisor's state (start, exit, restart, stop). */
export function onSupervisorChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function changed(): void {
  for (const fn of listeners) {
    try {
      fn();
    } catch {
      /* a listener's failure must not stop supervision */
    }
  }
}

export class Supervisor<H extends SupervisedHandle> {
  /** Restarts that came up. */
  restarts = 0;
  state: ComponentStatus['state'] = 'running';
  private lastRestartAt: number | undefined;
  private lastExit: { how: string; at: number } | undefined;
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
    changed();
  }

  get name(): string {
    return this.opts.name;
  }

  status(): ComponentStatus {
    const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
    return {
      name: this.opts.name,
      kind: this.opts.kind,
      pid:
        this.state === 'running' && !hasExited(this.current.process)
          ? (this.current.process.pid ?? null)
          : null,
      state: this.state,
      restarts: this.restarts,
      lastRestartAt: iso(this.lastRestartAt),
      lastExit: this.lastExit?.how ?? null,
      lastExitAt: iso(this.lastExit?.at),
    };
  }

  private watch(handle: H): void {
    this.startedAt = Date.now();
    let ended = false;
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      if (handle !== this.current || ended) return;
      ended = true;
      handle.process.off('exit', onExit);
      handle.process.off('error', onError);
      if (this.stopped || this.opts.stopping()) {
        this.state = 'stopped';
        changed();
        return;
      }
      const how = exitDescription(code, signal);
      this.lastExit = { how, at: Date.now() };
      // A process that ran long enough starts the back-off over; a restart that failed does not.
      if (Date.now() - this.startedAt > (this.opts.resetAfterMs ?? 60_000)) this.failures = 0;
      this.schedule(`exited (${how})`);
    };
    // A process that could not be spawned says so with 'error' and a negative exit code, never
    // with 'exit': without this it would be taken for running and never started again.
    const onError = () => {
      if (hasExited(handle.process)) onExit(handle.process.exitCode, handle.process.signalCode);
    };
    if (hasExited(handle.process))
      queueMicrotask(() => onExit(handle.process.exitCode, handle.process.signalCode));
    else {
      handle.process.once('exit', onExit);
      handle.process.on('error', onError);
    }
  }

  private schedule(why: string): void {
    this.state = 'restarting';
    this.failures++;
    const first = this.opts.firstDelayMs ?? 1000;
    // A first delay asked longer than the longest is kept (--haproxy-restart-delay up to 60 s).
    const delay = Math.min(first * 2 ** (this.failures - 1), Math.max(this.opts.maxDelayMs ?? 30_000, first));
    const line = `${this.opts.name} ${why}; restarting in ${(delay / 1000).toFixed(1)} s (attempt ${this.failures})`;
    this.opts.say(line);
    this.opts.log?.note(line);
    this.timer = setTimeout(() => void this.attempt(), delay);
    changed();
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
    this.lastRestartAt = Date.now();
    this.state = 'running';
    const line = `${this.opts.name} restarted (restart ${this.restarts})`;
    this.opts.say(line);
    this.opts.log?.note(line);
    this.watch(handle);
    changed();
    this.opts.onRestarted?.(handle);
  }

  /** No more restarts; stops the current process. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.current.stop();
    this.state = 'stopped';
    changed();
  }
}
