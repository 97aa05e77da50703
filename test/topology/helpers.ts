/** Small helpers shared by the topology tests (temp dirs, HTTP through HAProxy). */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { type HaproxyConfigOptions, writeHaproxyConfig } from '../../src/topology/haproxy/config.ts';
import { type HaproxyHandle, startHaproxy } from '../../src/topology/haproxy/process.ts';
import { haproxyRuntime } from '../../src/topology/haproxy/runtime.ts';
import type { LaunchContext } from '../../src/topology/local/context.ts';
import { freePort } from '../../src/topology/redis-server.ts';
import { launcherEntry } from '../support/main-build.ts';
import { waitFor } from '../support/wait.ts';

export const execFileP = promisify(execFile);

/** A one-of-each topology's launch options on `dataDir`, with no fixed port. */
export function launchOptions(
  dataDir: string,
  fresh: boolean,
  check = true,
): ConstructorParameters<typeof LaunchContext>[0] {
  return {
    api: 1,
    projectors: 1,
    dispatchers: 1,
    httpPort: 0,
    tlsPort: 0,
    statsPort: 0,
    redisPort: 0,
    dataDir,
    check,
    fresh,
  };
}

/** The launcher's command (`npm run topology`), run through tsx as users run it. */
export const LAUNCHER = new URL('../../src/cli/launch.ts', import.meta.url).pathname;

/**
 * The launcher's options for one API instance, projector and dispatcher, on `ports` (its
 * --http-port, --tls-port, --stats-port, --redis-port; 0: a free one) and a free --status-port.
 */
export function oneOfEachArgs(ports: readonly number[] = [0, 0, 0, 0]): string[] {
  const [http, tls, stats, redis] = ports.map(String) as [string, string, string, string];
  return [
    '--api',
    '1',
    '--projectors',
    '1',
    '--dispatchers',
    '1',
    '--http-port',
    http,
    '--tls-port',
    tls,
    '--stats-port',
    stats,
    '--redis-port',
    redis,
    '--status-port',
    '0',
  ];
}

/** The processes whose parent is `pid`: pid and command line. */
export function childrenOf(pid: number): { pid: number; cmd: string }[] {
  const found: { pid: number; cmd: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== pid) continue;
      found.push({
        pid: Number(entry),
        cmd: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim(),
      });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/**
 * What a process that should have stopped is doing, for a failure's message: its state, the kernel
 * function it waits in, its threads, and its signals pending, blocked and caught (hex masks).
 */
export function processState(pid: number): string {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .filter((l) => /^(State|PPid|Threads|SigPnd|ShdPnd|SigBlk|SigCgt):/.test(l))
      .map((l) => l.replace(/:\s+/, '='))
      .join(' ');
    let wchan = '';
    try {
      wchan = readFileSync(`/proc/${pid}/wchan`, 'utf8');
    } catch {
      // not readable here
    }
    return `${status}${wchan ? ` wchan=${wchan}` : ''} threads: ${threadsOf(pid)} stdout=${linkOf(pid, 'fd/1')} stderr=${linkOf(pid, 'fd/2')}`;
  } catch {
    return 'gone';
  }
}

/** Each thread's name and wait channel (`main` first): which one waits on what. */
function threadsOf(pid: number): string {
  try {
    return readdirSync(`/proc/${pid}/task`)
      .map((tid) => {
        const read = (f: string) => {
          try {
            return readFileSync(`/proc/${pid}/task/${tid}/${f}`, 'utf8').trim();
          } catch {
            return '?';
          }
        };
        return `${tid === String(pid) ? 'main' : read('comm')}:${read('wchan')}`;
      })
      .join(',');
  } catch {
    return '?';
  }
}

function linkOf(pid: number, what: string): string {
  try {
    return readlinkSync(`/proc/${pid}/${what}`);
  } catch {
    return '?';
  }
}

/** Whether `pid` runs: there, and not a zombie (exited, not yet reaped by its parent). */
export { pidAlive as isRunning } from '../support/processes.ts';

export async function tempDir(prefix: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `sb-${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** GET http://host:port/path with a timeout; resolves { status, body } or rejects. */
export function httpGet(
  host: string,
  port: number,
  urlPath: string,
  timeoutMs = 2000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: urlPath, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** A tiny API stand-in: answers /health with 200 and everything else with `name`. */
export function startTinyHttp(
  name: string,
  host = '127.0.0.1',
): Promise<{ server: http.Server; port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      const addr = server.address();
      if (addr === null || typeof addr === 'string') {
        reject(new Error('no address'));
        return;
      }
      resolve({
        server,
        port: addr.port,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

/**
 * Stops launchers a test left running: Ctrl-C (SIGINT, their clean shutdown) and up to 30 s to
 * exit, then SIGKILL.
 */
export async function stopLaunchers(running: readonly ChildProcess[]): Promise<void> {
  for (const c of running) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    c.kill('SIGINT');
    const done = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 30_000);
      c.once('exit', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    if (!done) c.kill('SIGKILL');
  }
}

/** A launcher started by a test, with what it said. */
export interface LauncherRun {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** All it wrote, stdout and stderr. */
  output(): string;
  /** What it said from `since` on, each line with its time in ms after `since`. */
  saidSince(since: number): string;
  /** When it first said something matching `re` (ms since the epoch), if it did. */
  saidAt(re: RegExp): number | undefined;
}

/**
 * `npm run topology -- <args>` (through tsx, as users run it), its output collected with the time
 * each chunk came: a failed timing check shows what the launcher said when. `detached`: a process
 * group of its own, to be signalled as a terminal's Ctrl-C signals one.
 */
export function spawnLauncher(
  args: readonly string[],
  opts: { env?: Record<string, string>; detached?: boolean } = {},
): LauncherRun {
  const child = spawn(process.execPath, [...launcherEntry(), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
    detached: opts.detached ?? false,
  });
  let out = '';
  const said: { t: number; text: string }[] = [];
  const collect = (b: Buffer) => {
    out += b.toString();
    said.push({ t: Date.now(), text: b.toString().trim() });
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    output: () => out,
    saidSince: (since) =>
      said
        .filter((c) => c.t >= since)
        .flatMap((c) => c.text.split('\n').map((line) => `+${c.t - since} ms ${line}`))
        .join('\n'),
    saidAt: (re) => said.find((c) => re.test(c.text))?.t,
  };
}

/** Waits for the launcher's banner (or its exit), fails unless it came, and gives its output. */
export async function launcherBanner(l: LauncherRun, timeoutMs = 90_000): Promise<string> {
  await waitFor(
    'the banner or an exit',
    () => l.output().includes('Ctrl-C stops everything') || l.child.exitCode !== null,
    { timeoutMs, everyMs: 200 },
  ).catch(() => undefined);
  const out = l.output();
  expect(out, out).toContain('Ctrl-C stops everything');
  return out;
}

/**
 * A real haproxy on free loopback ports with the local template (TLS from `pem`, and `extra`
 * renderer options: static API servers, check interval and timeout), pushed on `started` for the suite to stop.
 */
export async function startLocalHaproxy(
  runDir: string,
  pem: string,
  started: HaproxyHandle[],
  extra: Pick<HaproxyConfigOptions, 'apiServers' | 'apiCheckInter' | 'checkTimeout'> = {},
) {
  const [httpPort, tlsPort, statsPort, redisPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const file = await writeHaproxyConfig({
    runDir,
    tlsPem: pem,
    redisCheckPassword: 'x',
    httpPort,
    tlsPort,
    statsPort,
    redisPort,
    ...extra,
  });
  const hp = await startHaproxy({ configPath: file, socket: path.join(runDir, 'haproxy.sock') });
  started.push(hp);
  return { hp, rt: haproxyRuntime(hp.socket), file, httpPort, tlsPort, statsPort, redisPort };
}
