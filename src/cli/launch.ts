/**
 * `npm run topology`: the whole production topology on one machine, as processes on loopback: a
 * Redis Cluster of 3 masters with a replica each (AOF on), HAProxy in front (HTTP API, TLS, stats,
 * Redis TCP with its layer-7 check), 3 API, 2 projector and 2 dispatcher processes. API instances
 * register with a heartbeat and this launcher keeps HAProxy's backend in step through its runtime
 * API. Crashed Switchboard processes are restarted. Ctrl-C stops everything cleanly.
 *
 * The HAProxy pair with keepalived (VRRP) needs network namespaces; test/topology/vrrp.test.ts
 * builds them and shows the VIP moving. Here a single HAProxy serves loopback.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ensureSelfSignedCert, writeHaproxyConfig } from '../adapters/haproxy/config.ts';
import { startHaproxy } from '../adapters/haproxy/process.ts';
import { syncBackends } from '../adapters/haproxy/registry.ts';
import { haproxyRuntime } from '../adapters/haproxy/runtime.ts';
import { connectRedis } from '../adapters/redis/client.ts';
import { startRedisCluster } from '../adapters/redis/cluster-launcher.ts';
import { freePort } from '../adapters/redis/redis-server.ts';

const usage = `usage: npm run topology -- [--api 3] [--projectors 2] [--dispatchers 2] [--data-dir ./data/topology]
       [--http-port 8000] [--tls-port 8443] [--stats-port 8404] [--redis-port 12000] [--check]
  --check   start everything, send one command through HAProxy, print the URLs as JSON, stop.`;

function fail(message: string): never {
  process.stderr.write(`topology: ${message}\n${usage}\n`);
  process.exit(2);
}

function count(raw: string | undefined, name: string, def: number, min: number, max: number): number {
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max)
    fail(`--${name} must be an integer from ${min} to ${max} (got "${raw}")`);
  return n;
}

let args: ReturnType<typeof parseArgs>['values'];
try {
  args = parseArgs({
    options: {
      api: { type: 'string' },
      projectors: { type: 'string' },
      dispatchers: { type: 'string' },
      'data-dir': { type: 'string' },
      'http-port': { type: 'string' },
      'tls-port': { type: 'string' },
      'stats-port': { type: 'string' },
      'redis-port': { type: 'string' },
      check: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  }).values;
} catch (err) {
  fail((err as Error).message);
}
if (args.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const opts = {
  api: count(args.api as string | undefined, 'api', 3, 1, 16),
  projectors: count(args.projectors as string | undefined, 'projectors', 2, 1, 16),
  dispatchers: count(args.dispatchers as string | undefined, 'dispatchers', 2, 1, 16),
  httpPort: count(args['http-port'] as string | undefined, 'http-port', 8000, 0, 65535),
  tlsPort: count(args['tls-port'] as string | undefined, 'tls-port', 8443, 0, 65535),
  statsPort: count(args['stats-port'] as string | undefined, 'stats-port', 8404, 0, 65535),
  redisPort: count(args['redis-port'] as string | undefined, 'redis-port', 12000, 0, 65535),
  dataDir: path.resolve((args['data-dir'] as string | undefined) ?? './data/topology'),
  check: args.check === true,
};
const say = (line: string) => {
  if (!opts.check) process.stdout.write(`${line}\n`);
};

interface Member {
  readonly name: string;
  readonly roles: string;
  readonly port?: number;
  child?: ChildProcess;
  restarts: number;
}

const main = path.resolve(new URL('../main.ts', import.meta.url).pathname);
let stopping = false;

async function launch(): Promise<void> {
  for (const [name, port] of [
    ['http-port', opts.httpPort],
    ['tls-port', opts.tlsPort],
    ['stats-port', opts.statsPort],
    ['redis-port', opts.redisPort],
  ] as const) {
    if (port === 0)
      (opts as Record<string, unknown>)[name.replace(/-(\w)/, (_, c: string) => c.toUpperCase())] =
        await freePort();
  }
  // Every launch starts a new cluster: the local topology is for trying and testing, not for keeping data.
  rmSync(path.join(opts.dataDir, 'cluster'), { recursive: true, force: true });
  mkdirSync(path.join(opts.dataDir, 'logs'), { recursive: true });
  say('starting a Redis Cluster: 3 masters, 3 replicas, AOF on ...');
  const cluster = await startRedisCluster({ dataDir: path.join(opts.dataDir, 'cluster') });
  const masters = cluster.nodes.filter((n) => n.role === 'master');
  const seeds = masters.map((n) => `${n.host}:${n.port}`).join(',');

  const runDir = path.join(opts.dataDir, 'haproxy');
  const tlsPem = await ensureSelfSignedCert(runDir);
  const configPath = await writeHaproxyConfig({
    runDir,
    tlsPem,
    redisCheckPassword: cluster.haproxyCheck.password,
    httpPort: opts.httpPort,
    tlsPort: opts.tlsPort,
    statsPort: opts.statsPort,
    redisPort: opts.redisPort,
    redisServers: masters.map((n) => ({ host: n.host, port: n.port })),
  });
  const socket = path.join(runDir, 'haproxy.sock');
  const haproxy = await startHaproxy({ configPath, socket });
  const redis = connectRedis({ clusterNodes: seeds.split(',') });
  const sync = syncBackends(redis, haproxyRuntime(socket), {
    onError: (err) => say(`haproxy sync: ${(err as Error).message}`),
  });

  const members: Member[] = [];
  for (let i = 1; i <= opts.api; i++)
    members.push({ name: `api-${i}`, roles: 'api', port: await freePort(), restarts: 0 });
  for (let i = 1; i <= opts.projectors; i++)
    members.push({ name: `projector-${i}`, roles: 'projector', restarts: 0 });
  for (let i = 1; i <= opts.dispatchers; i++)
    members.push({ name: `dispatcher-${i}`, roles: 'dispatcher', restarts: 0 });

  const start = (m: Member) => {
    const log = createWriteStream(path.join(opts.dataDir, 'logs', `${m.name}.log`), { flags: 'a' });
    const child = spawn(process.execPath, ['--import', 'tsx', main], {
      env: {
        ...process.env,
        ROLES: m.roles,
        REDIS_CLUSTER_NODES: seeds,
        REDIS_URL: '',
        PORT: String(m.port ?? 0),
        HOST: '127.0.0.1',
        ...(m.port ? { ADVERTISE_ADDRESS: 'auto' } : {}),
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    m.child = child;
    child.on('exit', (code, signal) => {
      if (stopping) return;
      m.restarts++;
      say(`${m.name} exited (${signal ?? code}); restarting (restart ${m.restarts})`);
      setTimeout(() => start(m), Math.min(1000 * m.restarts, 5000));
    });
  };
  for (const m of members) start(m);

  const apiUrl = `http://127.0.0.1:${opts.httpPort}`;
  const ready = await waitUntil(async () => {
    const r = await fetch(`${apiUrl}/health`).catch(() => undefined);
    const servers = await haproxyRuntime(socket)
      .listServers('api')
      .catch(() => []);
    return r?.status === 200 && servers.filter((s) => s.name.startsWith('sb_')).length === opts.api;
  }, 60_000);
  if (!ready)
    throw new Error(
      `the API did not come up behind HAProxy within 60 s; see ${path.join(opts.dataDir, 'logs')}`,
    );

  const urls = {
    api: apiUrl,
    tls: `https://127.0.0.1:${opts.tlsPort}`,
    stats: `http://127.0.0.1:${opts.statsPort}/stats`,
    redisFrontend: `redis://127.0.0.1:${opts.redisPort}`,
    instances: members.filter((m) => m.port).map((m) => `http://127.0.0.1:${m.port}`),
    cluster: cluster.nodes.map((n) => `${n.role} redis://${n.host}:${n.port}`),
    logs: path.join(opts.dataDir, 'logs'),
  };

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping ...');
    await sync.stop();
    await Promise.all(
      members.map(
        (m) =>
          new Promise<void>((resolve) => {
            const c = m.child;
            if (!c || c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
    await haproxy.stop();
    redis.disconnect();
    await cluster.stop();
  };

  if (opts.check) {
    const r = await fetch(`${apiUrl}/v1/workspaces/default/agents`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': `topology-check-${Date.now()}` },
      body: JSON.stringify({ id: `check-${Date.now()}`, skills: ['English'] }),
    });
    const ok = r.status === 201;
    await stop();
    process.stdout.write(`${JSON.stringify({ ok, status: r.status, urls })}\n`);
    process.exit(ok ? 0 : 1);
  }

  say('');
  say(`Switchboard topology is up:`);
  say(`  API through HAProxy   ${urls.api}   (round-robin over ${opts.api} instances, checked on /health)`);
  say(`  API over TLS          ${urls.tls}   (self-signed: curl -k)`);
  say(`  HAProxy stats         ${urls.stats}`);
  say(
    `  Redis through HAProxy ${urls.redisFrontend}   (TCP, checked by AUTH+PING as ${cluster.haproxyCheck.user})`,
  );
  say(`  API instances         ${urls.instances.join(' ')}`);
  say(`  Redis Cluster         ${urls.cluster.join(', ')}`);
  say(`  Logs                  ${urls.logs}`);
  say('Ctrl-C stops everything.');
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      stop().then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`topology: stop failed: ${(err as Error).message}\n`);
          process.exit(1);
        },
      );
    });
  }
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

launch().catch((err: unknown) => {
  process.stderr.write(`topology: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
