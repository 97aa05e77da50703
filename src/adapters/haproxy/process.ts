/**
 * Run haproxy as a child process (foreground, own process group) for the local launcher and tests.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import net from 'node:net';

export interface HaproxyHandle {
  process: ChildProcess;
  pid: number;
  /** Runtime API socket path. */
  socket: string;
  /** Last lines haproxy wrote to stdout/stderr (for test failure messages). */
  output(): string;
  /** SIGUSR1 (soft stop), SIGKILL after timeoutMs; resolves when the process has exited. */
  stop(timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

export interface StartHaproxyOptions {
  configPath: string;
  /** Runtime socket the config declares (`stats socket <socket>`); start() waits for it. */
  socket: string;
  /** Command prefix, e.g. ['ip', 'netns', 'exec', 'ns1'] to run inside a network namespace. */
  prefix?: string[];
  /** Extra haproxy arguments (e.g. ['-p', pidfile]). */
  args?: string[];
  startTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
let hook = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* gone */
    }
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.off('exit', on);
      resolve(false);
    }, ms);
    const on = () => {
      clearTimeout(t);
      resolve(true);
    };
    child.once('exit', on);
  });
}

function socketAnswers(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.createConnection(sock);
    let data = '';
    const t = setTimeout(() => {
      c.destroy();
      resolve(false);
    }, 1000);
    c.on('connect', () => c.write('show info\n'));
    c.on('data', (b) => {
      data += b.toString();
    });
    c.on('close', () => {
      clearTimeout(t);
      resolve(data.includes('Pid:'));
    });
    c.on('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

export async function startHaproxy(opts: StartHaproxyOptions): Promise<HaproxyHandle> {
  const prefix = opts.prefix ?? [];
  const argv = [...prefix, 'haproxy', '-db', '-f', opts.configPath, ...(opts.args ?? [])];
  const [cmd, ...rest] = argv;
  if (cmd === undefined) throw new Error('startHaproxy: empty command');
  const child = spawn(cmd, rest, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!hook) {
    hook = true;
    process.once('exit', () => {
      for (const c of live) killGroup(c, 'SIGKILL');
    });
  }
  let out = '';
  const collect = (b: Buffer) => {
    out = (out + b.toString()).slice(-8192);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let spawnErr: Error | undefined;
  child.once('error', (e) => {
    spawnErr = e;
  });

  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  for (;;) {
    if (spawnErr) throw new Error(`cannot spawn haproxy: ${spawnErr.message}`);
    if (exited(child)) throw new Error(`haproxy exited during start (code ${child.exitCode}):\n${out}`);
    const ok = await access(opts.socket).then(
      () => socketAnswers(opts.socket),
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      killGroup(child, 'SIGKILL');
      throw new Error(`haproxy did not open its runtime socket ${opts.socket} in time:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('haproxy: no pid');
  return {
    process: child,
    pid,
    socket: opts.socket,
    output: () => out,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => killGroup(child, signal),
    async stop(timeoutMs = 3000) {
      if (exited(child)) return;
      killGroup(child, 'SIGUSR1');
      if (!(await waitExit(child, timeoutMs))) {
        killGroup(child, 'SIGKILL');
        await waitExit(child, 5000);
      }
    },
  };
}
