/**
 * What the HTTP workloads share: a child process serving HTTP (a Switchboard or the bare XADD
 * handler), a keep-alive client and a bounded closed-loop load loop.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { endingWithThisProcess } from '../../topology/child-processes.ts';
import { BUILD_DIR, buildEntry } from '../../topology/local/main-build.ts';
import { freePort } from '../../topology/redis-server.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface ChildServer {
  readonly base: string;
  readonly port: number;
  /** SIGTERM, SIGKILL after 5 s; resolves when the process has exited. */
  stop(): Promise<void>;
}

/** The bench's builds of its child scripts, by root and script: each made once per bench process. */
const builds = new Map<string, Promise<readonly string[]>>();

/**
 * How to start `script` (relative to the repository root): `node <the arguments>`. Each script is
 * bundled once per bench process by esbuild, as the launcher bundles src/main.ts for its members
 * (src/topology/local/main-build.ts), and removed when the bench exits: through tsx a child spends
 * about 1.7 s of CPU before it serves, on the cores the workloads measure, and `bench all` starts a
 * dozen. Through tsx when the build fails.
 *
 * `root`: another checkout to take `script` from (`--switchboard`). Its build is written here, so
 * it runs with this checkout's packages: two versions compared differ in their code only.
 */
export function childCommand(script: string, root = ROOT): Promise<readonly string[]> {
  const key = JSON.stringify([root, script]);
  let args = builds.get(key);
  if (!args) {
    const other = root === ROOT ? '' : `-other${builds.size}`;
    const outfile = path.join(
      BUILD_DIR,
      'bench',
      `${path.basename(script, '.ts')}-${process.pid}${other}.mjs`,
    );
    // Only this process's own files: other benches may be running from the same directory.
    process.once('exit', () => rmSync(outfile, { force: true }));
    args = buildEntry(path.join(root, script), outfile).then(
      () => [outfile],
      () => ['--import', 'tsx', path.join(root, script)],
    );
    builds.set(key, args);
  }
  return args;
}

/**
 * Spawns `script` (a path relative to the repository root, or to `root`; see childCommand) with
 * PORT set to a free port, and waits until `GET <readyPath>` answers 200 (at most `timeoutMs`).
 */
export async function startChild(
  script: string,
  env: Record<string, string>,
  readyPath: string,
  timeoutMs = 30_000,
  root?: string,
): Promise<ChildServer> {
  const port = await freePort();
  // BENCH_CPU_PROF=<dir>: each child writes a V8 CPU profile there when it exits (node --cpu-prof).
  const prof = process.env.BENCH_CPU_PROF;
  const nodeArgs = prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : [];
  // Stops with the bench, even a bench killed outright (its private Redis does too).
  const [cmd, ...args] = endingWithThisProcess([
    process.execPath,
    ...nodeArgs,
    ...(await childCommand(script, root)),
  ]);
  const child: ChildProcess = spawn(cmd!, args, {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  let exited = child.exitCode !== null;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
  });
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exit;
    clearTimeout(timer);
  };
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitAnswering(
      `${base}${readyPath}`,
      timeoutMs,
      () => `${script} was not ready within ${timeoutMs} ms:\n${stderr}`,
      () => (exited ? `${script} exited before it was ready:\n${stderr}` : undefined),
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { base, port, stop };
}

/**
 * Starts servers at once, so that their builds and start-ups overlap (each waits for its own
 * process only): all of them, in the order given, or none: when one fails, those that started are
 * stopped and the first failure in that order is thrown.
 */
export async function startTogether<const T extends readonly Promise<ChildServer>[]>(
  starts: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  const started = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  if (!failed) return started as { -readonly [K in keyof T]: Awaited<T[K]> };
  await Promise.all(started.map((s) => s.stop()));
  throw failed.reason;
}

/**
 * Waits until `GET url` answers 200, every 100 ms; throws `late()` after `timeoutMs`, or at once
 * the reason `gaveUp()` names (a process that exited).
 */
export async function waitAnswering(
  url: string,
  timeoutMs: number,
  late: () => string,
  gaveUp: () => string | undefined = () => undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const probe = new http.Agent({ keepAlive: false });
  for (;;) {
    const why = gaveUp();
    if (why !== undefined) throw new Error(why);
    const r = await request(probe, 'GET', url).catch(() => undefined);
    if (r?.status === 200) return;
    if (Date.now() > deadline) throw new Error(late());
    await sleep(100);
  }
}

export interface Answer {
  readonly status: number;
  readonly body: string;
}

/** One request over the agent; the body (if any) is sent as JSON. Rejects on a network error. */
export function request(agent: http.Agent, method: string, url: string, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      url,
      {
        method,
        agent,
        headers:
          payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out after 10 s')));
    req.on('error', reject);
    req.end(payload);
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `load` (a warm-up) while `server` is asked what a deployed instance is asked besides its
 * traffic: GET /health each second (HAProxy's check) and, with `scraped`, GET /metrics at once and
 * each second (Prometheus). A warm-up without them left the request path compiled for the
 * workload's routes only: the first /metrics (the scrape that reads the process's figures before a
 * run) then deoptimized about 40 of its functions (fastify's request and reply of another route
 * context, another kind of answer), and the first 1 - 3 s of e2e's run were slower (p50 4 - 12 ms
 * against 1 - 2 ms after) while V8 compiled them again (docs/BENCHMARKS.md). A deployed instance
 * is health-checked from its start, before it takes traffic.
 */
export async function asDeployed(
  agent: http.Agent,
  server: ChildServer,
  scraped: boolean,
  load: () => Promise<unknown>,
): Promise<Asked> {
  let health = 0;
  let metrics = 0;
  let failed = 0;
  const pending = new Set<Promise<void>>();
  const get = (path: string, counted: () => void) => {
    const p = request(agent, 'GET', `${server.base}${path}`).then(
      (r) => {
        if (r.status === 200) counted();
        else failed++;
      },
      () => {
        failed++;
      },
    );
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };
  const ask = () => {
    get('/health', () => health++);
    if (scraped) get('/metrics', () => metrics++);
  };
  ask();
  const timer = setInterval(ask, 1000);
  try {
    await load();
  } finally {
    clearInterval(timer);
    await Promise.allSettled([...pending]);
  }
  return { health, metrics, failed };
}

/** What asDeployed asked during a warm-up: answers 200 to each kind, and the rest. */
export interface Asked {
  readonly health: number;
  readonly metrics: number;
  readonly failed: number;
}

export interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly latenciesMs: number[];
  readonly seconds: number;
}

/**
 * A closed loop: `connections` loops each send one request, wait for its answer and send the
 * next, for `seconds`. A request is an error unless it answers 2xx.
 */
export async function closedLoop(
  connections: number,
  seconds: number,
  send: (agent: http.Agent, n: number) => Promise<Answer>,
): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const latenciesMs: number[] = [];
  let errors = 0;
  let n = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  try {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < end) {
          const s = performance.now();
          const r = await send(agent, n++).catch(() => undefined);
          if (!r || r.status < 200 || r.status >= 300) errors++;
          else latenciesMs.push(performance.now() - s);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return {
    requests: latenciesMs.length + errors,
    errors,
    latenciesMs,
    seconds: (performance.now() - t0) / 1000,
  };
}
