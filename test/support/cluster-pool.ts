/**
 * Redis Clusters made ahead for the cluster target's suites (global setup of the `cluster` project).
 *
 * Each suite of that target starts a fresh cluster of its own (test/support/redis.ts): six
 * redis-server processes, `redis-cli --cluster create`, and then Redis's own wait of 2 s before a new
 * master reports `cluster_state:ok`. That is about 3 s per suite, mostly idle, 27 suites in a row.
 * This pool makes the next cluster while a suite runs, so the suite after it takes one ready.
 *
 * Every suite still gets a cluster nobody used before: a cluster handed out is never handed out
 * again, and is stopped when its suite gives it back (or at the end of the run). The pool runs in
 * vitest's main process; the suites' forks reach it over HTTP on loopback (its address is provided
 * as `clusterPool`):
 *
 *   POST   /clusters        → 200 {id, nodes, credentials}: a fresh cluster (one made ahead if ready)
 *   DELETE /clusters/<id>   → 204, its processes stopped in the background (the teardown waits)
 *
 * At most SPARES clusters wait made ahead. When no suite has taken one for IDLE_MS (the cluster
 * suites are done), the spares are stopped; a suite that comes after such a gap waits for a cluster
 * to be made (3 s on a quiet machine), and the pool makes spares again from there. An idle cluster
 * is not free: its six nodes' cluster bus and timers cost about 0.03 core-s a second, and vitest
 * runs the cluster project's suites before the single target's, so one kept until teardown idled
 * through the whole rest of the run (about 9 core-s of a 2-core machine's 10 minutes).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestProject } from 'vitest/node';
import {
  type ClusterNode,
  type RedisClusterHandle,
  startRedisCluster,
} from '../../src/topology/redis-cluster.ts';
import type { RedisCredentials } from '../../src/topology/redis-users.ts';

/** What a suite receives: enough to reach the cluster as each of its users. */
export interface PooledCluster {
  readonly id: string;
  readonly nodes: ClusterNode[];
  readonly credentials: RedisCredentials;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The pool's base URL (http://127.0.0.1:<port>), on the cluster target only. */
    clusterPool?: string;
  }
}

// Four: the cluster target ends with a run of short suites (under a second each) on three forks,
// which took clusters faster than two made ahead could be replaced (2.8 s each).
const SPARES = 4;
const IDLE_MS = 30_000;

let server: http.Server | undefined;
let made = 0;
/** Clusters made ahead (or being made), oldest first. */
const spares: Promise<RedisClusterHandle>[] = [];
/** Clusters handed out and not given back. */
const out = new Map<string, RedisClusterHandle>();
let idleTimer: NodeJS.Timeout | undefined;
/** What the run's report says at teardown: how long suites waited for a cluster, and how long one took to make. */
const waits: number[] = [];
const makes: number[] = [];

function makeSpare(): void {
  const started = Date.now();
  const p = startRedisCluster({});
  p.then(() => makes.push(Date.now() - started)).catch(() => undefined);
  // A failed make is reported to the suite that takes it; nothing else waits on it.
  p.catch(() => undefined);
  spares.push(p);
}

function refill(): void {
  while (spares.length < SPARES) makeSpare();
}

/** Stops the spares. */
async function stopSpares(): Promise<void> {
  const all = spares.splice(0);
  await Promise.all(all.map((p) => p.then((c) => c.stop()).catch(() => undefined)));
}

async function take(): Promise<PooledCluster> {
  if (spares.length === 0) makeSpare();
  const next = spares.shift() as Promise<RedisClusterHandle>;
  refill();
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => void stopSpares(), IDLE_MS);
  idleTimer.unref();
  const asked = Date.now();
  const cluster = await next;
  waits.push(Date.now() - asked);
  const id = String(++made);
  out.set(id, cluster);
  return { id, nodes: cluster.nodes, credentials: cluster.credentials };
}

/** Clusters given back and still stopping: the run's teardown waits for them. */
const stopping = new Set<Promise<void>>();

/**
 * Stops a cluster given back, in the background: the suite goes on to its next file at once
 * instead of waiting while six nodes shut down (0.3 - 1 s each time, 65 suites in a row on three
 * forks). A port it frees is not handed out before it is free: a new cluster's nodes take ports
 * that nothing listens on.
 */
function giveBack(id: string): boolean {
  const cluster = out.get(id);
  if (!cluster) return false;
  out.delete(id);
  const done = cluster.stop().catch(() => undefined);
  stopping.add(done);
  void done.then(() => stopping.delete(done));
  return true;
}

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const answer = (status: number, body?: unknown) => {
    res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  };
  const failed = (err: unknown) => answer(500, { error: (err as Error).stack ?? String(err) });
  req.resume();
  if (req.method === 'POST' && req.url === '/clusters') {
    take().then((c) => answer(200, c), failed);
    return;
  }
  const m = /^\/clusters\/(\d+)$/.exec(req.url ?? '');
  if (req.method === 'DELETE' && m) {
    answer(giveBack(m[1] as string) ? 204 : 404);
    return;
  }
  answer(404);
}

export async function setup(project: TestProject): Promise<void> {
  if (project.config.env?.SWITCHBOARD_TEST_TARGET !== 'cluster' || server) return;
  server = http.createServer(handle);
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  project.provide('clusterPool', `http://127.0.0.1:${port}`);
  refill();
}

export async function teardown(): Promise<void> {
  if (!server) return;
  const s = server;
  server = undefined;
  clearTimeout(idleTimer);
  s.closeAllConnections();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  if (waits.length > 0) {
    const sec = (ms: number) => (ms / 1000).toFixed(1);
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    console.log(
      `cluster pool: ${waits.length} clusters handed out; the suites waited ${sec(sum(waits))} s for them ` +
        `(longest ${sec(Math.max(...waits))} s); a cluster took ${sec(sum(makes) / Math.max(1, makes.length))} s to make on average`,
    );
  }
  const handedOut = [...out.values()];
  out.clear();
  await Promise.all([stopSpares(), ...handedOut.map((c) => c.stop().catch(() => undefined)), ...stopping]);
}
