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
 * masters with a replica each (src/topology/redis-cluster.ts), a fresh one per suite (made ahead by
 * test/support/cluster-pool.ts in the `cluster` project). Suites reach the target
 * only through `env` (the configuration Switchboard is started with) and `client()`, so one suite
 * serves both targets; `url` is then one master's address, for suites that need a plain server.
 *
 * Every mode logs Switchboard in as its least-privilege ACL user (src/adapters/redis/acl.ts),
 * as production does: `url`, `env` and `client()` are that user's, so a command Switchboard uses
 * and the ACL lacks fails the suite with NOPERM. The local server and cluster get the user from
 * their ACL file and a password on the `default` user; a given server (modes 1 and 2) gets it by
 * ACL SETUSER. Suites that administer the server (CONFIG, KEYS, SCAN, MEMORY, CLIENT PAUSE, ...)
 * use `adminClient()` / `adminUrl`.
 */
import { execFile } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, inject } from 'vitest';
import { APP_ACL_RULES, APP_USER } from '../../src/adapters/redis/acl.ts';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { type RedisClusterHandle, startRedisCluster } from '../../src/topology/redis-cluster.ts';
import { type RedisServerHandle, startRedisServer } from '../../src/topology/redis-server.ts';
import {
  loginUrl,
  newCredentials,
  newPassword,
  type RedisCredentials,
  type RedisLogin,
  switchboardUsers,
} from '../../src/topology/redis-users.ts';
import type { PooledCluster } from './cluster-pool.ts';

interface ServerAddress {
  /** Logged in as the Switchboard ACL user. */
  readonly url: string;
  /** Logged in as an admin (the default user). */
  readonly adminUrl: string;
  readonly host: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface TestRedis extends ServerAddress {
  /**
   * Environment to start Switchboard with: REDIS_URL (with the ACL user's login), or
   * REDIS_CLUSTER_NODES (seeds carrying the login) on the cluster target.
   */
  readonly env: Record<string, string>;
  readonly target: 'single' | 'cluster';
  /** The ACL user Switchboard logs in as. */
  readonly login: RedisLogin;
  /** A new client of the target as the Switchboard user (a Cluster client on the cluster target); the caller closes it. */
  client(): RedisClient;
  /** A new client of the target as the admin, for what Switchboard may not do; the caller closes it. */
  adminClient(): RedisClient;
}

/**
 * A suite's own Redis, started before its tests and stopped after them, with one client on it
 * as the Switchboard user (`suite.redis`) and one as the admin (`suite.admin`, for KEYS, SCAN,
 * MEMORY, CONFIG, SLOWLOG and the like). Call it in the body of a `describe`.
 */
export function suiteRedis(): {
  readonly server: TestRedis;
  readonly redis: RedisClient;
  readonly admin: RedisClient;
} {
  const suite = {} as { server: TestRedis; redis: RedisClient; admin: RedisClient };
  beforeAll(async () => {
    suite.server = await startTestRedis();
    suite.redis = suite.server.client();
    suite.admin = suite.server.adminClient();
  });
  afterAll(async () => {
    suite.redis?.disconnect();
    suite.admin?.disconnect();
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
    ? await givenServer(external, async () => {})
    : mode === 'testcontainers' || (mode !== 'local' && (await dockerAnswers()))
      ? await startContainer()
      : await startLocal();
  return {
    ...server,
    env: { REDIS_URL: server.url },
    target: 'single',
    login: loginOf(server.url),
    client: () => connectRedis({ url: server.url }),
    adminClient: () => connectRedis({ url: server.adminUrl }),
  };
}

function loginOf(url: string): RedisLogin {
  const u = new URL(url);
  return { user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
}

/**
 * A fresh cluster: from the pool of clusters made ahead (test/support/cluster-pool.ts) in a run of
 * the `cluster` project, or started here otherwise.
 */
async function freshCluster(): Promise<Pick<RedisClusterHandle, 'nodes' | 'credentials' | 'stop'>> {
  const pool = inject('clusterPool');
  if (!pool) return startRedisCluster({});
  const res = await fetch(`${pool}/clusters`, { method: 'POST' });
  if (!res.ok) throw new Error(`the cluster pool could not make a cluster: ${await res.text()}`);
  const cluster = (await res.json()) as PooledCluster;
  return {
    ...cluster,
    stop: async () => {
      const back = await fetch(`${pool}/clusters/${cluster.id}`, { method: 'DELETE' });
      if (back.status !== 204)
        throw new Error(`the cluster pool could not stop cluster ${cluster.id}: ${back.status}`);
    },
  };
}

async function startCluster(): Promise<TestRedis> {
  const cluster = await freshCluster();
  const { app, admin } = cluster.credentials;
  const masters = cluster.nodes.filter((n) => n.role === 'master');
  const first = masters[0]!;
  const seeds = masters.map((n) => `${n.host}:${n.port}`);
  const withLogin = (login: RedisLogin) =>
    seeds.map((s) => `${encodeURIComponent(login.user)}:${encodeURIComponent(login.password)}@${s}`);
  return {
    url: loginUrl(app, first.host, first.port),
    adminUrl: loginUrl(admin, first.host, first.port),
    host: first.host,
    port: first.port,
    env: { REDIS_CLUSTER_NODES: withLogin(app).join(',') },
    target: 'cluster',
    login: app,
    client: () => connectRedis({ clusterNodes: withLogin(app) }),
    // A test's own commands wait up to 10 s, where Switchboard's give up after 2: a cluster
    // client held by a loaded machine while it connects (its first CLUSTER SLOTS) failed a test
    // with "the Redis Cluster is not connected" before it asked Redis anything.
    adminClient: () => connectRedis({ clusterNodes: withLogin(admin) }, { commandTimeout: 10_000 }),
    stop: () => cluster.stop(),
  };
}

/**
 * A server someone else started, reached at `adminUrl` with every right: the Switchboard user
 * is made (or its password replaced) by ACL SETUSER with the rules of acl.ts.
 */
async function givenServer(adminUrl: string, stop: () => Promise<void>): Promise<ServerAddress> {
  const u = new URL(adminUrl);
  const host = u.hostname || '127.0.0.1';
  const port = u.port ? Number(u.port) : 6379;
  const admin = new Redis(adminUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  const password = newPassword();
  try {
    await admin.connect();
    await admin.call('ACL', 'SETUSER', APP_USER, 'reset', 'on', `>${password}`, ...APP_ACL_RULES);
  } finally {
    admin.disconnect();
  }
  const url = loginUrl({ user: APP_USER, password }, host, port, u.protocol.replace(':', ''));
  return { url, adminUrl, host, port, stop };
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
  return givenServer(container.getConnectionUrl(), async () => {
    await container.stop();
  });
}

/**
 * A local redis-server with Switchboard's ACL file (as `npm start` runs it) and an admin password,
 * no persistence: its process handle (for a suite that kills it) and the logins.
 */
export async function startLocalRedisServer(): Promise<{
  readonly server: RedisServerHandle;
  readonly credentials: RedisCredentials;
}> {
  const credentials = newCredentials();
  const server = await startRedisServer({
    appendonly: false,
    users: switchboardUsers(credentials),
    adminPassword: credentials.admin.password,
  });
  return { server, credentials };
}

async function startLocal(): Promise<ServerAddress> {
  const { server, credentials } = await startLocalRedisServer();
  return {
    url: loginUrl(credentials.app, server.host, server.port),
    adminUrl: loginUrl(credentials.admin, server.host, server.port),
    host: server.host,
    port: server.port,
    stop: () => server.stop(),
  };
}
