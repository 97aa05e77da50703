/**
 * Run haproxy as a child process (foreground, own process group) for the local launcher and tests.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import net from 'node:net';
import { endingWithThisProcess, hasExited, killOnExit, signalGroup, stopChild } from '../child-processes.ts';
import { logFile } from '../log-file.ts';

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
  /** Append what haproxy writes (its log goes to stderr) to this file, capped by size (log-file.ts). */
  logFile?: string;
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
  const [cmd, ...rest] = endingWithThisProcess(argv);
  if (cmd === undefined) throw new Error('startHaproxy: empty command');
  const child = spawn(cmd, rest, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  killOnExit(child);
  let out = '';
  const collect = (b: Buffer) => {
    out = (out + b.toString()).slice(-8192);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  if (opts.logFile) {
    const log = logFile(opts.logFile);
    log.follow(child.stdout);
    log.follow(child.stderr);
  }
  let spawnErr: Error | undefined;
  child.once('error', (e) => {
    spawnErr = e;
  });

  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  for (;;) {
    if (spawnErr) throw new Error(`cannot spawn haproxy: ${spawnErr.message}`);
    if (hasExited(child)) throw new Error(`haproxy exited during start (code ${child.exitCode}):\n${out}`);
    const ok = await access(opts.socket).then(
      () => socketAnswers(opts.socket),
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      signalGroup(child, 'SIGKILL');
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
    kill: (signal: NodeJS.Signals = 'SIGTERM') => signalGroup(child, signal),
    async stop(timeoutMs = 3000) {
      await stopChild(child, { signal: 'SIGUSR1', graceMs: timeoutMs });
    },
  };
}
