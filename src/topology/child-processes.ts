import type { ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { getSystemErrorName } from 'node:util';

/**
 * Helpers for the servers Switchboard starts itself (redis-server, haproxy): each runs in its own
 * process group, is signalled as a group, and is killed if this process exits first.
 */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Listens for the child's 'error' (a process that could not be spawned, EAGAIN, ENOENT, EMFILE: it
 * emits 'error' and never 'exit'; one it could not signal), which with no listener is thrown and
 * ends this process. Attach it where the child is spawned: the error comes on the next tick, before
 * anything awaiting the spawn runs. A child that never ran has a negative `exitCode` after it.
 */
export function onSpawnError(child: ChildProcess, noted: (err: Error) => void): void {
  child.on('error', noted);
}

/** How a child ended, as the launcher says it: `SIGKILL`, `1`, or `could not be started: EAGAIN`. */
export function exitDescription(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return signal;
  if (code !== null && code < 0) {
    let name: string;
    try {
      name = getSystemErrorName(code);
    } catch {
      name = String(code);
    }
    return `could not be started: ${name}`;
  }
  return String(code);
}

let setprivFound: string | null | undefined;
/** util-linux's setpriv on the PATH (Debian installs it everywhere), or null. */
function setpriv(): string | null {
  if (setprivFound !== undefined) return setprivFound;
  setprivFound = null;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, 'setpriv');
    try {
      accessSync(file, constants.X_OK);
      setprivFound = file;
      break;
    } catch {
      /* not here */
    }
  }
  return setprivFound;
}

/**
 * The command line `argv` (command first) started so that the child is sent SIGTERM when this
 * process dies, even killed outright (SIGKILL, the OOM killer), which no exit hook of this process
 * sees: setpriv sets Linux's parent-death signal and execs the command, so the child keeps the pid
 * spawn gives. Servers started this way (a private redis-server, the launcher's nodes, HAProxies,
 * keepalived and Switchboard processes) stop with their starter instead of holding its ports and
 * data directories for ever. Where setpriv is missing (not Linux), `argv` as given.
 *
 * A starter that dies before setpriv sets the signal is never signalled: so once it is set, a
 * shell checks that its parent is still this process (else the starter is gone, and it exits)
 * before it execs the command.
 */
export function endingWithThisProcess(argv: readonly string[]): string[] {
  return endingWith(process.pid, argv);
}

/** endingWithThisProcess for a command line that the process `starterPid` starts. */
export function endingWith(starterPid: number, argv: readonly string[]): string[] {
  const bin = setpriv();
  return bin
    ? [bin, '--pdeathsig', 'TERM', '--', '/bin/sh', '-c', PARENT_CHECK, 'sh', String(starterPid), ...argv]
    : [...argv];
}

/** `sh -c` with the starter's pid, then the command: runs it only while the starter lives. */
const PARENT_CHECK = '[ "$PPID" = "$1" ] || exit 70; shift; exec "$@"';

/** Whether a process `pid` exists (one of another user counts: EPERM means it runs). */
export function processExists(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Signals the child's process group (it was spawned detached), or the child alone if that fails. */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

/**
 * Resolves true once no process is left in the process group `pgid` (a detached child's pid),
 * false if one still is after `timeoutMs`.
 */
export async function groupGone(pgid: number | undefined, timeoutMs: number): Promise<boolean> {
  if (pgid === undefined) return true;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return true;
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Resolves true once the child has exited, false after `timeoutMs`. */
export function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

export interface StopOptions {
  /** The polite signal. Default SIGTERM. */
  readonly signal?: NodeJS.Signals;
  /** How long the polite signal has before SIGKILL. */
  readonly graceMs: number;
  /** How long to wait for the exit after SIGKILL. Default 5 s. */
  readonly killWaitMs?: number;
  /** Signal the child's process group (it was spawned detached). Default true. */
  readonly group?: boolean;
}

/**
 * Stops a child: the polite signal, then SIGKILL if it has not exited within `graceMs`. Resolves
 * true once it has exited, false if it still runs `killWaitMs` after the SIGKILL.
 */
export async function stopChild(child: ChildProcess, opts: StopOptions): Promise<boolean> {
  if (hasExited(child)) return true;
  const send = (signal: NodeJS.Signals) => {
    if (opts.group ?? true) signalGroup(child, signal);
    else child.kill(signal);
  };
  send(opts.signal ?? 'SIGTERM');
  if (await waitExit(child, opts.graceMs)) return true;
  send('SIGKILL');
  return waitExit(child, opts.killWaitMs ?? 5000);
}

const live = new Set<ChildProcess>();
let hooked = false;

/** Kills the child's process group if this process exits while it still runs. */
export function killOnExit(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const c of live) signalGroup(c, 'SIGKILL');
  });
}
