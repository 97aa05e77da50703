/**
 * The one fixture every suite uses to get a Redis: `startTestRedis()`.
 *
 * Three modes, chosen in this order:
 *
 * 1. `SWITCHBOARD_TEST_REDIS_URL=redis://host:port` — use a Redis that is already running.
 *    Nothing is started and `stop()` leaves the server alone (suites use their own workspace
 *    names, so they do not need an empty server).
 * 2. Testcontainers — when `SWITCHBOARD_TEST_REDIS=testcontainers` is set, or when a Docker
 *    engine answers (`docker info` exits 0 within 3 s; checked once per process, cached):
 *    `@testcontainers/redis` starts a `redis:7.2` container. The package is imported
 *    dynamically, so the other modes never load it.
 * 3. Default — a local `redis-server` child process on a free loopback port, with no
 *    persistence (`--save '' --appendonly no`) and a temporary `--dir`, started by
 *    `startRedisServer` (src/topology/redis-server.ts); `stop()` shuts it down and removes
 *    the directory. `SWITCHBOARD_TEST_REDIS=local` forces this mode even where Docker answers.
 *
 * `SWITCHBOARD_TEST_TARGET=cluster` runs the same suites against a local Redis Cluster of 3
 * masters with a replica each (src/topology/redis-cluster.ts). Suites reach the target
 * only through `env` (the configuration Switchboard is started with) and `client()`, so one suite
 * serves both targets; `url` is then one master's address, for suites that need a plain server.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { startRedisCluster } from '../../src/topology/redis-cluster.ts';
import { startRedisServer } from '../../src/topology/redis-server.ts';

interface ServerAddress {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface TestRedis extends ServerAddress {
  /** Environment to start Switchboard with: REDIS_URL, or REDIS_CLUSTER_NODES on the cluster target. */
  readonly env: Record<string, string>;
  readonly target: 'single' | 'cluster';
  /** A new client of the target (a Cluster client on the cluster target); the caller closes it. */
  client(): RedisClient;
}

/**
 * A suite's own Redis, started before its tests and stopped after them, with one client on it
 * (`suite.redis`). Call it in the body of a `describe`.
 */
export function suiteRedis(): { readonly server: TestRedis; readonly redis: RedisClient } {
  const suite = {} as { server: TestRedis; redis: RedisClient };
  beforeAll(async () => {
    suite.server = await startTestRedis();
    suite.redis = suite.server.client();
  });
  afterAll(async () => {
    suite.redis?.disconnect();
    await suite.server?.stop();
  });
  return suite;
}

export function testTarget(): 'single' | 'cluster' {
  return process.env.SWITCHBOARD_TEST_TARGET === 'cluster' ? 'cluster' : 'single';
}

export async function startTestRedis(): Promise<TestRedis> {
  if (testTarget() === 'cluster') return startCluster();
  const external = process.env.SWITCHBOARD_TEST_REDIS_URL;
  const mode = process.env.SWITCHBOARD_TEST_REDIS;
  const server = external
    ? fromUrl(external)
    : mode === 'testcontainers' || (mode !== 'local' && (await dockerAnswers()))
      ? await startContainer()
      : await startLocal();
  return {
    ...server,
    env: { REDIS_URL: server.url },
    target: 'single',
    client: () => connectRedis({ url: server.url }),
  };
}

async function startCluster(): Promise<TestRedis> {
  const cluster = await startRedisCluster({});
  const masters = cluster.nodes.filter((n) => n.role === 'master');
  const first = masters[0]!;
  const seeds = masters.map((n) => `${n.host}:${n.port}`);
  return {
    url: `redis://${first.host}:${first.port}`,
    host: first.host,
    port: first.port,
    env: { REDIS_CLUSTER_NODES: seeds.join(',') },
    target: 'cluster',
    client: () => connectRedis({ clusterNodes: seeds }),
    stop: () => cluster.stop(),
  };
}

function fromUrl(url: string): ServerAddress {
  const u = new URL(url);
  return {
    url,
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    stop: async () => {},
  };
}

let docker: Promise<boolean> | undefined;

/** Whether a Docker engine answers: `docker info` exits 0 within 3 s. Asked once per process. */
export function dockerAnswers(): Promise<boolean> {
  docker ??= new Promise<boolean>((resolve) => {
    try {
      execFile('docker', ['info'], { timeout: 3_000, windowsHide: true }, (err) => resolve(err === null));
    } catch {
      resolve(false);
    }
  });
  return docker;
}

async function startContainer(): Promise<ServerAddress> {
  const { RedisContainer } = await import('@testcontainers/redis');
  const container = await new RedisContainer('redis:7.2').start();
  const url = container.getConnectionUrl();
  return {
    url,
    host: container.getHost(),
    port: container.getPort(),
    stop: async () => {
      await container.stop();
    },
  };
}

async function startLocal(): Promise<ServerAddress> {
  const server = await startRedisServer({ appendonly: false });
  return {
    url: server.url,
    host: server.host,
    port: server.port,
    stop: () => server.stop(),
  };
}
