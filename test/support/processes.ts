/**
 * Switchboard as real OS processes, for end-to-end suites: `startProcess({ roles, redisUrl })` runs
 * `node --import tsx src/main.ts` (or the run's build of it, main-build.ts) with the roles in the
 * environment and resolves once it serves.
 *
 * - API roles get a free port and are ready when `GET /health` answers 200.
 * - Worker-only processes are ready when they log 'switchboard is running' (they run at LOG_LEVEL
 *   info, which for workers is a handful of lines: start, reclaims, shutdown), or after a short
 *   delay when the caller sets a level that hides that line.
 * - The last lines of stdout and stderr are kept in `logs` for the failure message of a test.
 * - Every process still running when the test process exits is SIGKILLed, so nothing leaks; one
 *   killed outright takes them with it too (the parent-death signal).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { endingWithThisProcess } from '../../src/topology/child-processes.ts';
import { freePort } from '../../src/topology/redis-server.ts';
import { DATA_ROOT_ENV } from './data-root.ts';
import { MAIN_BUNDLE } from './main-build.ts';
import { sleep } from './wait.ts';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const KEEP_LINES = 400;

export interface StartProcessOptions {
  /** e.g. ['api'] or 'projector,dispatcher'. */
  readonly roles: readonly string[] | string;
  /**
   * The Redis to use: a test fixture's `env` (REDIS_URL, or REDIS_CLUSTER_NODES on the cluster
   * target) or a plain URL. Omit both to let the main command start its private redis-server.
   */
  readonly redis?: { readonly env: Readonly<Record<string, string>> };
  readonly redisUrl?: string;
  /** Port of the API; a free one when omitted and the roles include api. */
  readonly port?: number;
  /** Extra environment; a value of undefined removes the variable. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Resolve as soon as the process is spawned (for processes expected to fail at start). */
  readonly waitReady?: boolean;
  readonly readyTimeoutMs?: number;
  /** Name used in error messages; defaults to the roles. */
  readonly name?: string;
  /**
   * Another checkout of Switchboard to run (e.g. an older version beside this one): its build
   * `main` when given (buildEntry of its `src/main.ts`), else its `src/main.ts` with tsx; this tree
   * (or the run's build of it) when omitted.
   */
  readonly root?: string;
  readonly main?: string;
}

export type ExitResult = number | NodeJS.Signals;

export interface SwitchboardProcess {
  readonly name: string;
  readonly pid: number;
  readonly port?: number;
  /** `http://127.0.0.1:<port>` for API roles. */
  readonly url?: string;
  readonly child: ChildProcess;
  /** The last lines of stdout and stderr, each prefixed with its stream. */
  readonly logs: string[];
  /** Resolves with the exit code, or the signal that ended the process. */
  readonly exited: Promise<ExitResult>;
  readonly running: boolean;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, wait for the exit (SIGKILL after `timeoutMs`), return the exit code or signal. */
  stop(timeoutMs?: number): Promise<ExitResult>;
  /** The kept log lines as one text, for assertion messages. */
  logText(): string;
}

const live = new Set<ChildProcess>();
let dataDir: string | undefined;

/**
 * The DATA_DIR of the processes this worker starts: a folder of its own under the run's
 * (data-root.ts, removed when the run ends), or a temporary one removed when this process exits.
 */
function runDataDir(): string {
  if (dataDir === undefined) {
    const root = process.env[DATA_ROOT_ENV];
    if (root !== undefined) {
      dataDir = path.join(root, String(process.pid));
      mkdirSync(dataDir, { recursive: true });
    } else {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-processes-'));
      dataDir = dir;
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    }
  }
  return dataDir;
}
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

/** SIGKILLs every process this module started that is still running (an afterAll safety net). */
export async function killAllProcesses(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of live) {
    waits.push(new Promise((r) => child.once('exit', r)));
    child.kill('SIGKILL');
  }
  await Promise.all(waits);
}

export async function startProcess(opts: StartProcessOptions): Promise<SwitchboardProcess> {
  const roles = typeof opts.roles === 'string' ? opts.roles : opts.roles.join(',');
  const hasApi = roles.split(',').some((r) => r.trim() === 'api');
  const name = opts.name ?? roles;
  const port = opts.port ?? (hasApi ? await freePort() : undefined);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  // Nothing of the test runner's own configuration leaks into the child.
  for (const k of ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'PORT', 'NODE_OPTIONS', 'VITEST', 'VITEST_WORKER_ID'])
    delete env[k];
  Object.assign(env, {
    ROLES: roles,
    HOST: '127.0.0.1',
    // API keys off unless a test opts in (env: { AUTH: 'on' }): most suites test other things.
    // Set for an API process only: a worker warns at start of a setting no role of it reads.
    ...(hasApi ? { AUTH: 'off' } : {}),
    LOG_LEVEL: hasApi ? 'warn' : 'info',
    ...(opts.redis?.env ?? {}),
    ...(opts.redisUrl !== undefined ? { REDIS_URL: opts.redisUrl } : {}),
    ...(port !== undefined ? { PORT: String(port) } : {}),
    // An API instance not registered for the load balancer closes at once on SIGTERM unless the
    // test sets LB_DRAIN_MS (its drain is test/e2e/drain-edges-1.test.ts's); a registered one
    // (ADVERTISE_ADDRESS) keeps the deployment's drain, which the HAProxy suites rely on.
    ...(hasApi && opts.env?.ADVERTISE_ADDRESS === undefined ? { LB_DRAIN_MS: '0' } : {}),
  });
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  // DATA_DIR defaults to ./data, the checkout's own (a developer's npm start keeps its admin key
  // and private Redis there): the processes of a test run get a folder of their own instead.
  if (!('DATA_DIR' in (opts.env ?? {}))) env.DATA_DIR = runDataDir();

  // The run's build of src/main.ts when the global setup made one (main-build.ts), else tsx.
  const main =
    opts.root === undefined
      ? existsSync(MAIN_BUNDLE)
        ? [MAIN_BUNDLE]
        : ['--import', 'tsx', 'src/main.ts']
      : opts.main !== undefined
        ? [opts.main]
        : ['--import', 'tsx', 'src/main.ts'];
  // Started with the parent-death signal: a test process killed outright (an aborted run) takes
  // it with it, as no exit hook of its own can.
  const [cmd, ...args] = endingWithThisProcess([process.execPath, ...main]);
  const child = spawn(cmd!, args, {
    cwd: opts.root ?? PROJECT_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  installExitHook();
  live.add(child);
  if (child.pid === undefined) {
    live.delete(child);
    throw new Error(`cannot spawn ${name}`);
  }
  const pid = child.pid;
  const spawnedAt = new Date().toISOString();

  const logs: string[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: () => void }>();
  const collect = (stream: 'out' | 'err') => {
    let partial = '';
    return (buf: Buffer) => {
      const lines = (partial + buf.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line === '') continue;
        logs.push(`[${name} ${pid} ${stream}] ${line}`);
        if (logs.length > KEEP_LINES) logs.shift();
        for (const w of waiters) {
          if (w.pattern.test(line)) {
            waiters.delete(w);
            w.resolve();
          }
        }
      }
    };
  };
  child.stdout?.on('data', collect('out'));
  child.stderr?.on('data', collect('err'));

  let running = true;
  const exited = new Promise<ExitResult>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false;
      live.delete(child);
      resolve(code ?? signal ?? -1);
    });
  });

  const url = port !== undefined && hasApi ? `http://127.0.0.1:${port}` : undefined;
  const logText = () => logs.join('\n');
  const handle: SwitchboardProcess = {
    name,
    pid,
    ...(port !== undefined ? { port } : {}),
    ...(url !== undefined ? { url } : {}),
    child,
    logs,
    exited,
    get running() {
      return running;
    },
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (running) child.kill(signal);
    },
    async stop(timeoutMs = 15_000) {
      if (!running) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    logText,
  };
  if (opts.waitReady === false) return handle;

  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const failed = (why: string) => {
    handle.kill('SIGKILL');
    // When it was spawned, to read the log lines' times against.
    return new Error(`${name} (pid ${pid}, spawned ${spawnedAt}) ${why}\n${logText()}`);
  };
  if (url !== undefined) {
    // What the last probe saw, for the failure message: a status and body, or the error.
    let lastProbe = 'no probe finished';
    for (;;) {
      if (!running) throw failed(`exited with ${await exited} before /health answered`);
      if (Date.now() > deadline)
        throw failed(
          `did not answer /health with 200 within ${timeoutMs} ms (last probe: ${lastProbe}; ${processState(pid)}; ${portHolders(port!)})`,
        );
      try {
        // A bare probe, not the client: any failure here only means "not up yet". A loaded
        // machine may take seconds to answer; a probe cut short only costs another one.
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) });
        const body = await res.text();
        if (res.status === 200) break;
        lastProbe = `${res.status} ${body.slice(0, 300)}`;
      } catch (err) {
        lastProbe = `${(err as Error).name}: ${(err as Error).message}`;
      }
      await sleep(100);
    }
  } else {
    const logsRunning = /^(trace|debug|info)$/.test(env.LOG_LEVEL ?? '');
    const ready = logsRunning
      ? new Promise<void>((resolve) => waiters.add({ pattern: /switchboard is running/, resolve }))
      : sleep(2_000);
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      ready.then(() => 'ready' as const),
      exited.then(() => 'exited' as const),
      new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (outcome === 'exited') throw failed(`exited with ${await exited} before it was running`);
    if (outcome === 'timeout') throw failed(`did not log 'switchboard is running' within ${timeoutMs} ms`);
  }
  return handle;
}

/** When the process `pid` started (clock ticks since boot, /proc/<pid>/stat), or undefined when it is gone. */
function startTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * Processes a suite kills after itself (a private redis-server that outlives its parent when a
 * test fails half-way), each only while its pid is still that process: pids are reused (Linux's
 * pid_max is 32,768 on this machine, and a suite run goes through them in minutes), and a pid
 * killed after its process ended would be another suite's process.
 */
export class StrayProcesses {
  private readonly kept: { pid: number; started: string | undefined }[] = [];

  /** Keeps `pid`, a running process, to be killed by `killAll`. */
  add(pid: number): void {
    this.kept.push({ pid, started: startTicks(pid) });
  }

  /** SIGKILLs each kept process still running as the process it was when kept. */
  killAll(): void {
    for (const { pid, started } of this.kept.splice(0))
      if (started !== undefined && startTicks(pid) === started && pidAlive(pid)) process.kill(pid, 'SIGKILL');
  }
}

/**
 * A process's state as Linux's /proc tells it (`T`: stopped by a signal; `S` with the kernel
 * function it sleeps in), for a failure message: an instance that never answered says why.
 */
function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    const wchan = readFileSync(`/proc/${pid}/wchan`, 'utf8').trim();
    return `its state ${state}${wchan && wchan !== '0' ? ` in ${wchan}` : ''}`;
  } catch {
    return 'its state unknown (no /proc entry)';
  }
}

/** Which processes listen on loopback `port` (Linux's /proc/net/tcp and the processes' fds). */
function portHolders(port: number): string {
  try {
    const hex = port.toString(16).toUpperCase().padStart(4, '0');
    const inodes = new Set<string>();
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6'])
      for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        // local address, state 0A (LISTEN), inode
        if (f[1]?.endsWith(`:${hex}`) && f[3] === '0A') inodes.add(f[9]!);
      }
    if (inodes.size === 0) return `nothing listens on port ${port}`;
    const holders: string[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        for (const fd of readdirSync(`/proc/${entry}/fd`)) {
          const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`));
          if (m && inodes.has(m[1]!)) {
            holders.push(`${entry} (${readFileSync(`/proc/${entry}/comm`, 'utf8').trim()})`);
            break;
          }
        }
      } catch {
        /* ended, or not ours to read */
      }
    }
    return `port ${port} listened on by ${holders.join(', ') || 'a process not found'}`;
  } catch {
    return `port ${port}: no /proc/net/tcp`;
  }
}

/**
 * Whether a process id is alive (signal 0), and not a zombie: a process whose parent was killed
 * is reaped by whatever adopts it, which in a container may never happen.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '');
  } catch {
    return true; // no /proc (not Linux): signal 0 is all there is
  }
}

/** Pids of the direct children of `pid`, with their command names (Linux /proc). */
export function childProcesses(pid: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      if (ppid === pid) out.push({ pid: Number(entry), comm });
    } catch {
      /* the process ended while we looked */
    }
  }
  return out;
}
