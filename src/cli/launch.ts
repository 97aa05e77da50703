/**
 * `npm run topology`: the whole production topology on one machine: a Redis Cluster of 3 masters
 * with a replica each (AOF on), HAProxy in front (HTTP API, TLS, stats, Redis TCP with its
 * layer-7 check), 3 API, 2 projector and 2 dispatcher processes. API instances register with a
 * heartbeat and this launcher keeps HAProxy's backend in step through its runtime API. Crashed
 * Switchboard processes are restarted. Ctrl-C stops everything cleanly.
 *
 * Two shapes, chosen by --vrrp / --no-vrrp (default: VRRP when running as root and `ip netns add`
 * works, a single HAProxy otherwise):
 *
 * - single (--no-vrrp): every process on loopback, one HAProxy.
 * - VRRP (--vrrp): the HAProxy pair with keepalived, in network namespaces this launcher creates
 *   (src/topology/netns.ts; run id <id>, subnet 10.231.1.0/24, all joined by a bridge that lives
 *   in a namespace of its own, nothing is added to the root namespace):
 *
 *     sb-<id>-lb1  10.231.1.11  HAProxy + keepalived MASTER (priority 101) ┐ VIP 10.231.1.100
 *     sb-<id>-lb2  10.231.1.12  HAProxy + keepalived BACKUP (priority 100) ┘ (check: HAProxy's pid)
 *     sb-<id>-app  10.231.1.10  Redis Cluster, API/projector/dispatcher processes, the
 *                               registry -> HAProxy sync (one loop per HAProxy, through the
 *                               runtime sockets, which are files) and the forwarder
 *
 *   The part inside sb-<id>-app is this same file run as a child (`ip netns exec sb-<id>-app node
 *   launch.ts --app-namespace <id>`); its children inherit the namespace. Users on the host reach
 *   the API through forwarders: this process listens on 127.0.0.1:<http-port> (and the TLS, stats
 *   and Redis ports) in the root namespace and hands the listening sockets to the child over
 *   Node's IPC channel; the child accepts there and connects to VIP:8000 (8443, 8404, 12000)
 *   from inside the namespace. So every forwarded request crosses the VIP and whichever HAProxy
 *   holds it. Ctrl-C (SIGINT, SIGTERM, SIGHUP) stops everything and deletes every namespace, also
 *   when start-up failed half way; if this process dies (even SIGKILL) the child notices its IPC
 *   channel closing and cleans up instead.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, createWriteStream, mkdirSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connectRedis } from '../adapters/redis/client.ts';
import { syncBackends } from '../topology/haproxy/backend-sync.ts';
import { ensureSelfSignedCert, HAPROXY_DEFAULTS, writeHaproxyConfig } from '../topology/haproxy/config.ts';
import { startHaproxy } from '../topology/haproxy/process.ts';
import { haproxyRuntime } from '../topology/haproxy/runtime.ts';
import {
  CHECK_HAPROXY_SCRIPT,
  keepalivedArgs,
  writeKeepalivedConfig,
} from '../topology/keepalived/config.ts';
import { ip, NetnsStar, netnsExec, probeNetns, type StarHost } from '../topology/netns.ts';
import { startRedisCluster } from '../topology/redis-cluster.ts';
import { freePort } from '../topology/redis-server.ts';

const usage = `usage: npm run topology -- [--api 3] [--projectors 2] [--dispatchers 2] [--data-dir ./data/topology]
       [--http-port 8000] [--tls-port 8443] [--stats-port 8404] [--redis-port 12000] [--check]
       [--vrrp | --no-vrrp]
  --check    start everything, send one command through HAProxy, print the URLs as JSON, stop.
  --vrrp     HAProxy pair with keepalived (VIP failover) in network namespaces; the ports above
             are forwarded from 127.0.0.1 to the VIP. Needs root and \`ip netns\`.
  --no-vrrp  a single HAProxy on loopback.
  Default: --vrrp when running as root and network namespaces work, --no-vrrp otherwise.`;

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
      vrrp: { type: 'boolean' },
      'no-vrrp': { type: 'boolean' },
      // Internal: the part of the VRRP topology that runs inside the app namespace (run id).
      'app-namespace': { type: 'string' },
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
const self = fileURLToPath(import.meta.url);
let stopping = false;
/** Thrown by start-up steps once a stop was asked for. */
class Aborted extends Error {}

// ------------------------------------------------------------------ Switchboard processes (both modes)

async function makeMembers(apiPort: () => Promise<number>): Promise<Member[]> {
  const members: Member[] = [];
  for (let i = 1; i <= opts.api; i++)
    members.push({ name: `api-${i}`, roles: 'api', port: await apiPort(), restarts: 0 });
  for (let i = 1; i <= opts.projectors; i++)
    members.push({ name: `projector-${i}`, roles: 'projector', restarts: 0 });
  for (let i = 1; i <= opts.dispatchers; i++)
    members.push({ name: `dispatcher-${i}`, roles: 'dispatcher', restarts: 0 });
  return members;
}

/** Start (and on exit restart) one Switchboard process. `advertise` undefined: ADVERTISE_ADDRESS=auto. */
function startMember(m: Member, seeds: string, host: string, advertise?: string): void {
  const log = createWriteStream(path.join(opts.dataDir, 'logs', `${m.name}.log`), { flags: 'a' });
  const child = spawn(process.execPath, ['--import', 'tsx', main], {
    env: {
      ...process.env,
      ROLES: m.roles,
      REDIS_CLUSTER_NODES: seeds,
      REDIS_URL: '',
      PORT: String(m.port ?? 0),
      HOST: host,
      ...(m.port ? { ADVERTISE_ADDRESS: advertise ?? 'auto' } : {}),
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
    setTimeout(() => startMember(m, seeds, host, advertise), Math.min(1000 * m.restarts, 5000));
  });
}

/** SIGTERM every member, SIGKILL after 10 s; resolves when all have exited. */
function stopMembers(members: Member[]): Promise<void> {
  return Promise.all(
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
  ).then(() => undefined);
}

// ------------------------------------------------------------------ single HAProxy on loopback

async function launch(): Promise<void> {
  // Every launch starts a new cluster: the local topology is for trying and testing, not for keeping data.
  rmSync(path.join(opts.dataDir, 'cluster'), { recursive: true, force: true });
  mkdirSync(path.join(opts.dataDir, 'logs'), { recursive: true });
  say('starting a Redis Cluster: 3 masters, 3 replicas, AOF on ...');
  const cluster = await startRedisCluster({ dataDir: path.join(opts.dataDir, 'cluster') });
  const masters = cluster.nodes.filter((n) => n.role === 'master');
  const seeds = masters.map((n) => `${n.host}:${n.port}`).join(',');

  const runDir = path.join(opts.dataDir, 'haproxy');
  const tlsPem = await ensureSelfSignedCert(runDir);
  const socket = path.join(runDir, 'haproxy.sock');
  // Ports asked as 0 are picked now, after the cluster took its own (and their bus ports); if one
  // is taken between the pick and HAProxy's bind, pick again.
  const asked = {
    httpPort: opts.httpPort,
    tlsPort: opts.tlsPort,
    statsPort: opts.statsPort,
    redisPort: opts.redisPort,
  };
  let haproxy: Awaited<ReturnType<typeof startHaproxy>> | undefined;
  for (let attempt = 1; !haproxy; attempt++) {
    for (const key of Object.keys(asked) as (keyof typeof asked)[]) {
      if (asked[key] === 0) (opts as Record<string, unknown>)[key] = await freePort();
    }
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
    try {
      haproxy = await startHaproxy({ configPath, socket });
    } catch (err) {
      const picked = Object.values(asked).some((p) => p === 0);
      if (!picked || attempt >= 3 || !/Address already in use/.test((err as Error).message)) {
        await cluster.stop();
        throw err;
      }
    }
  }
  const redis = connectRedis({ clusterNodes: seeds.split(',') });
  const sync = syncBackends(redis, haproxyRuntime(socket), {
    onError: (err) => say(`haproxy sync: ${(err as Error).message}`),
  });

  const members = await makeMembers(() => freePort());
  for (const m of members) startMember(m, seeds, '127.0.0.1');

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
    await stopMembers(members);
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

// ------------------------------------------------------------------ VRRP: shared definitions

/** Private /24 that exists only inside this run's namespaces (each run has its own bridge). */
const VRRP_SUBNET = '10.231.1';
const VIP = `${VRRP_SUBNET}.100`;
const VRRP_HOSTS = [
  { name: 'app', octet: 10 },
  { name: 'lb1', octet: 11 },
  { name: 'lb2', octet: 12 },
];
const LB_ROLES = [
  { name: 'lb1', role: 'MASTER', priority: 101 },
  { name: 'lb2', role: 'BACKUP', priority: 100 },
] as const;
/** HAProxy's ports inside the lb namespaces (the VIP's ports): fixed, the namespaces are private. */
const VIP_PORTS = {
  http: HAPROXY_DEFAULTS.httpPort,
  tls: HAPROXY_DEFAULTS.tlsPort,
  stats: HAPROXY_DEFAULTS.statsPort,
  redis: HAPROXY_DEFAULTS.redisPort,
} as const;
type Forwarded = keyof typeof VIP_PORTS;
const VIP_PORTS_CONFIG = {
  httpPort: VIP_PORTS.http,
  tlsPort: VIP_PORTS.tls,
  statsPort: VIP_PORTS.stats,
  redisPort: VIP_PORTS.redis,
};

function vrrpStar(id?: string, exitHook = true): NetnsStar {
  return new NetnsStar({ ...(id ? { id } : {}), subnet: VRRP_SUBNET, hosts: VRRP_HOSTS, exitHook });
}

/** Where keepalived's check script is copied when the repository path is not root-only (see below). */
const scriptDir = (id: string) => `/run/sb-${id}-keepalived`;

interface LbInfo {
  name: string;
  role: string;
  priority: number;
  ns: string;
  address: string;
  pidfile: string;
  socket: string;
  keepalivedLog: string;
}

interface VrrpInfo {
  vipHolder: string | undefined;
  lbs: LbInfo[];
  instances: string[];
  cluster: string[];
  haproxyCheckUser: string;
}

/** Parent -> child: a listening socket to accept on and forward to VIP:port. (Stop = SIGTERM.) */
type ToApp = { type: 'forward'; name: Forwarded; port: number };
/** Child -> parent messages. */
type FromApp =
  | { type: 'hello' }
  | { type: 'forwarding'; name: Forwarded }
  | { type: 'ready'; info: VrrpInfo }
  | { type: 'failed'; message: string };

function exited(c: ChildProcess): boolean {
  return c.exitCode !== null || c.signalCode !== null;
}

function waitExit(c: ChildProcess, ms: number): Promise<boolean> {
  if (exited(c)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      c.off('exit', on);
      resolve(false);
    }, ms);
    const on = () => {
      clearTimeout(t);
      resolve(true);
    };
    c.once('exit', on);
  });
}

function killGroup(c: ChildProcess, signal: NodeJS.Signals): void {
  if (c.pid === undefined || exited(c)) return;
  try {
    process.kill(-c.pid, signal);
  } catch {
    try {
      c.kill(signal);
    } catch {
      /* gone */
    }
  }
}

// ------------------------------------------------------------------ VRRP: this process (root namespace)

function listenLoopback(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    // Until the child accepts on its copy of this socket: refuse (the topology is not up yet).
    const server = net.createServer((socket) => socket.resetAndDestroy());
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function boundPort(server: net.Server): number {
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('forwarder: no address');
  return a.port;
}

async function launchVrrp(): Promise<void> {
  const star = vrrpStar();
  const app = star.host('app');
  const servers = new Map<Forwarded, net.Server>();
  let child: ChildProcess | undefined;
  let stopPromise: Promise<void> | undefined;

  const stop = (): Promise<void> =>
    (stopPromise ??= (async () => {
      stopping = true;
      for (const s of servers.values()) s.close();
      servers.clear();
      if (child && !exited(child)) {
        // SIGTERM rather than an IPC message: it also works before the child listens for messages
        // (it then just dies; nothing was started yet).
        child.kill('SIGTERM');
        if (!(await waitExit(child, 60_000))) {
          say('the app namespace did not stop within 60 s; killing it');
          killGroup(child, 'SIGKILL');
          await waitExit(child, 5000);
        }
      }
      // Whatever still runs in the namespaces (nothing, after a clean stop) is killed here.
      const left = await star.destroy();
      rmSync(scriptDir(star.id), { recursive: true, force: true });
      if (left.length > 0) throw new Error(`could not delete network namespaces ${left.join(' ')}`);
    })());
  const shutdown = (code: number) => {
    stop().then(
      () => process.exit(code),
      (err: unknown) => {
        process.stderr.write(`topology: stop failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  // Installed before anything is created: Ctrl-C during start-up also removes everything.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (!stopping) say('stopping ...');
      shutdown(0);
    });
  }
  process.once('exit', () => rmSync(scriptDir(star.id), { recursive: true, force: true }));

  try {
    for (const [name, port] of [
      ['http', opts.httpPort],
      ['tls', opts.tlsPort],
      ['stats', opts.statsPort],
      ['redis', opts.redisPort],
    ] as const) {
      if (stopping) return;
      try {
        servers.set(name, await listenLoopback(port));
      } catch (err) {
        throw new Error(`cannot listen on 127.0.0.1:${port} (--${name}-port): ${(err as Error).message}`);
      }
    }
    const ports = Object.fromEntries([...servers].map(([k, s]) => [k, boundPort(s)])) as Record<
      Forwarded,
      number
    >;
    say(`creating network namespaces ${star.namespaces.join(' ')} (${VRRP_SUBNET}.0/24, VIP ${VIP}) ...`);
    await star.create();
    if (stopping) return;

    const [ipCmd = 'ip', ...inApp] = netnsExec(app.ns);
    const spawned = spawn(
      ipCmd,
      [
        ...inApp,
        process.execPath,
        '--import',
        'tsx',
        self,
        '--app-namespace',
        star.id,
        '--data-dir',
        opts.dataDir,
        '--api',
        String(opts.api),
        '--projectors',
        String(opts.projectors),
        '--dispatchers',
        String(opts.dispatchers),
        ...(opts.check ? ['--check'] : []),
      ],
      // Own process group: a terminal's Ctrl-C reaches this process only, which stops the rest in order.
      { detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    child = spawned;
    let up = false;
    const info = await new Promise<VrrpInfo>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the topology did not come up within 150 s')), 150_000);
      spawned.on('error', (err) => reject(new Error(`cannot start the app namespace: ${err.message}`)));
      spawned.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (stopping) return;
        const why = `the app namespace process exited (${signal ?? code})`;
        if (!up) return reject(new Error(why));
        // After start-up: the forwarders and the supervision are gone with it; stop the rest.
        process.stderr.write(`topology: ${why}; stopping\n`);
        shutdown(1);
      });
      spawned.on('message', (raw) => {
        const msg = raw as FromApp;
        if (msg.type === 'hello') {
          // Only now: a message with a handle that arrives before the child listens is lost.
          for (const [name, server] of servers) {
            spawned.send({ type: 'forward', name, port: VIP_PORTS[name] } satisfies ToApp, server);
          }
        } else if (msg.type === 'forwarding') {
          // The child accepts on its copy of the socket; this process must not accept any more.
          servers.get(msg.name)?.close();
          servers.delete(msg.name);
        } else if (msg.type === 'ready') {
          clearTimeout(timer);
          up = true;
          resolve(msg.info);
        } else if (msg.type === 'failed') {
          clearTimeout(timer);
          reject(new Error(msg.message));
        }
      });
    });

    const apiUrl = `http://127.0.0.1:${ports.http}`;
    const through = await waitUntil(async () => {
      if (stopping) throw new Aborted();
      const r = await fetch(`${apiUrl}/health`, { signal: AbortSignal.timeout(2000) });
      return r.status === 200;
    }, 15_000);
    if (stopping) return;
    if (!through) throw new Error(`the API does not answer through the forwarder ${apiUrl}`);

    const urls = {
      api: apiUrl,
      tls: `https://127.0.0.1:${ports.tls}`,
      stats: `http://127.0.0.1:${ports.stats}/stats`,
      redisFrontend: `redis://127.0.0.1:${ports.redis}`,
      vip: {
        api: `http://${VIP}:${VIP_PORTS.http}`,
        tls: `https://${VIP}:${VIP_PORTS.tls}`,
        stats: `http://${VIP}:${VIP_PORTS.stats}/stats`,
        redisFrontend: `redis://${VIP}:${VIP_PORTS.redis}`,
      },
      netnsExec: `ip netns exec ${app.ns}`,
      vipHolder: info.vipHolder,
      lbs: info.lbs,
      instances: info.instances,
      cluster: info.cluster,
      namespaces: star.namespaces,
      logs: path.join(opts.dataDir, 'logs'),
    };

    if (opts.check) {
      const r = await fetch(`${apiUrl}/v1/workspaces/default/agents`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `topology-check-${Date.now()}` },
        body: JSON.stringify({ id: `check-${Date.now()}`, skills: ['English'] }),
      });
      const ok = r.status === 201;
      await stop();
      process.stdout.write(`${JSON.stringify({ ok, status: r.status, mode: 'vrrp', urls })}\n`);
      process.exit(ok ? 0 : 1);
    }

    const x = urls.netnsExec;
    say('');
    say(`Switchboard topology is up: HAProxy pair with keepalived (VRRP), run ${star.id}:`);
    say(
      `  API through HAProxy   ${urls.api}   (forwarded to the VIP ${urls.vip.api}; round-robin over ${opts.api} instances)`,
    );
    say(`  API over TLS          ${urls.tls}   (forwarded to ${urls.vip.tls}; self-signed: curl -k)`);
    say(`  HAProxy stats         ${urls.stats}   (of the HAProxy holding the VIP)`);
    say(
      `  Redis through HAProxy ${urls.redisFrontend}   (forwarded to ${urls.vip.redisFrontend}; TCP, checked by AUTH+PING as ${info.haproxyCheckUser})`,
    );
    say(
      `  Through the VIP       ${urls.vip.api} ${urls.vip.tls} ${urls.vip.stats} ${urls.vip.redisFrontend}`,
    );
    say(`                        inside the namespaces, e.g. ${x} curl ${urls.vip.api}/health`);
    for (const lb of info.lbs) {
      say(
        `  HAProxy ${lb.name} ${lb.role.padEnd(6)}   namespace ${lb.ns}, ${lb.address}, keepalived priority ${lb.priority}, pidfile ${lb.pidfile}`,
      );
    }
    say(`  VIP ${VIP} on   ${info.vipHolder ?? '(none yet)'}`);
    say(`  API instances         ${urls.instances.join(' ')}   (${x} curl ...)`);
    say(`  Redis Cluster         ${urls.cluster.join(', ')}   (${x} redis-cli -c ...)`);
    say(`  Namespaces            ${star.namespaces.join(' ')}   (deleted on Ctrl-C)`);
    say(`  Logs                  ${urls.logs}`);
    say('Ctrl-C stops everything.');
  } catch (err) {
    if (stopping) return; // a signal arrived during start-up; stop() is already running
    process.stderr.write(`topology: ${(err as Error).message}\n`);
    say('start-up failed; removing everything ...');
    shutdown(1);
  }
}

// ------------------------------------------------------------------ VRRP: the app namespace (child)

/** keepalived's enable_script_security: the script and every directory above it must be root-only. */
function rootOnly(file: string): boolean {
  let p = path.resolve(file);
  for (let i = 0; i < 64; i++) {
    const st = statSync(p);
    if (st.uid !== 0 || (st.mode & 0o022) !== 0) return false;
    const up = path.dirname(p);
    if (up === p) return true;
    p = up;
  }
  return false;
}

async function runAppNamespace(id: string): Promise<void> {
  const star = vrrpStar(id, false);
  const app = star.host('app');
  const lbs = LB_ROLES.map((r) => {
    const host = star.host(r.name);
    const peer = star.host(r.name === 'lb1' ? 'lb2' : 'lb1');
    const runDir = path.join(opts.dataDir, r.name);
    return {
      ...r,
      host,
      peer,
      runDir,
      pidfile: path.join(runDir, 'haproxy.pid'),
      socket: path.join(runDir, 'haproxy.sock'),
      keepalivedLog: path.join(opts.dataDir, 'logs', `keepalived-${r.name}.log`),
    };
  });
  // Output goes to the launcher's stdout; if it is gone (launcher killed), keep running the cleanup.
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);

  const cleanups: { what: string; run: () => Promise<void> }[] = [];
  const register = async (what: string, run: () => Promise<void>) => {
    if (stopping) {
      await run().catch(() => undefined);
      throw new Aborted();
    }
    cleanups.push({ what, run });
  };
  const checkpoint = () => {
    if (stopping) throw new Aborted();
  };
  const forwarders = new Set<net.Server>();
  const sockets = new Set<net.Socket>();
  let orphan = false;
  let startup: Promise<void> = Promise.resolve();
  let stopPromise: Promise<void> | undefined;
  const send = (msg: FromApp) => {
    if (process.connected) process.send?.(msg);
  };

  const stop = (code: number) =>
    (stopPromise ??= (async () => {
      stopping = true;
      for (const s of forwarders) s.close();
      for (const s of sockets) s.destroy();
      await startup.catch(() => undefined);
      for (const c of cleanups.reverse()) {
        await c.run().catch((err: unknown) => say(`stopping ${c.what}: ${(err as Error).message}`));
      }
      if (orphan) {
        // The launcher is gone: nobody else will delete the namespaces.
        star.adopt();
        star.spareOnDestroy([process.pid]);
        await star.destroy();
        rmSync(scriptDir(id), { recursive: true, force: true });
      }
      process.exit(code);
    })());

  process.on('message', (raw, handle) => {
    const msg = raw as ToApp;
    if (msg.type === 'forward' && handle instanceof net.Server) {
      if (stopping) {
        handle.close();
        return;
      }
      forwarders.add(handle);
      handle.on('connection', (down: net.Socket) => {
        const up = net.connect({ host: VIP, port: msg.port });
        sockets.add(down);
        sockets.add(up);
        const close = () => {
          down.destroy();
          up.destroy();
          sockets.delete(down);
          sockets.delete(up);
        };
        // VIP unreachable (e.g. during a failover): reset the client's connection, as a refused
        // connection would, instead of closing it politely.
        up.once('error', () => down.resetAndDestroy());
        for (const s of [down, up]) {
          s.setNoDelay(true);
          s.on('error', close);
          s.on('close', close);
        }
        up.once('connect', () => {
          down.pipe(up);
          up.pipe(down);
        });
      });
      send({ type: 'forwarding', name: msg.name });
    }
  });
  process.on('disconnect', () => {
    if (stopping) return;
    orphan = true;
    void stop(1);
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void stop(0));
  send({ type: 'hello' });

  const vipHolder = async (): Promise<string | undefined> => {
    for (const lb of lbs) {
      const out = await ip('-n', lb.host.ns, '-4', '-o', 'addr', 'show', 'dev', lb.host.iface).catch(
        () => '',
      );
      if (out.includes(`inet ${VIP}/`)) return lb.name;
    }
    return undefined;
  };

  startup = (async () => {
    // Every launch starts a new cluster: the local topology is for trying and testing, not for keeping data.
    rmSync(path.join(opts.dataDir, 'cluster'), { recursive: true, force: true });
    mkdirSync(path.join(opts.dataDir, 'logs'), { recursive: true });
    say(`starting a Redis Cluster in ${app.ns}: 3 masters, 3 replicas, AOF on ...`);
    const cluster = await startRedisCluster({
      dataDir: path.join(opts.dataDir, 'cluster'),
      // Also on the namespace's address, announced to cluster clients, so HAProxy's Redis frontend
      // (in the lb namespaces) reaches the masters. Protected mode would refuse non-loopback
      // clients; the address exists only inside this run's namespaces.
      args: [
        '--bind',
        '127.0.0.1',
        app.address,
        '--cluster-announce-ip',
        app.address,
        '--protected-mode',
        'no',
      ],
    });
    await register('the Redis Cluster', () => cluster.stop());
    const masters = cluster.nodes.filter((n) => n.role === 'master');
    const seeds = masters.map((n) => `${app.address}:${n.port}`).join(',');
    const redis = connectRedis({ clusterNodes: seeds.split(',') });
    await register('the Redis client', async () => redis.disconnect());

    const tlsPem = await ensureSelfSignedCert(path.join(opts.dataDir, 'vrrp-certs'), {
      altNames: ['DNS:localhost', 'IP:127.0.0.1', `IP:${VIP}`],
    });
    // keepalived runs its check script as root only if no part of its path is writable by others.
    let checkScript = CHECK_HAPROXY_SCRIPT;
    if (!rootOnly(checkScript)) {
      mkdirSync(scriptDir(id), { recursive: true, mode: 0o755 });
      checkScript = path.join(scriptDir(id), 'check_haproxy.sh');
      copyFileSync(CHECK_HAPROXY_SCRIPT, checkScript);
      chmodSync(checkScript, 0o755);
    }

    for (const lb of lbs) {
      checkpoint();
      say(`starting HAProxy and keepalived ${lb.role} in ${lb.host.ns} (${lb.host.address}) ...`);
      rmSync(lb.runDir, { recursive: true, force: true });
      const configPath = await writeHaproxyConfig({
        runDir: lb.runDir,
        tlsPem,
        redisCheckPassword: cluster.haproxyCheck.password,
        bindAddress: '0.0.0.0',
        ...VIP_PORTS_CONFIG,
        redisServers: masters.map((n) => ({ host: app.address, port: n.port })),
      });
      // Master-worker (-W): haproxy writes its pidfile (the master's pid), which keepalived checks.
      const haproxy = await startHaproxy({
        configPath,
        socket: lb.socket,
        prefix: netnsExec(lb.host.ns),
        args: ['-W'],
      });
      await register(`HAProxy ${lb.name}`, () => haproxy.stop());
      haproxy.process.once('exit', (code, signal) => {
        if (!stopping)
          say(`HAProxy ${lb.name} exited (${signal ?? code}); keepalived's check on it fails from now on`);
      });
      const pidReady = await waitUntil(
        async () => (await readFile(lb.pidfile, 'utf8')).trim() !== '' || stopping,
        10_000,
      );
      checkpoint();
      if (!pidReady) throw new Error(`HAProxy ${lb.name} wrote no pidfile ${lb.pidfile}`);

      const kaConf = await writeKeepalivedConfig(
        {
          role: lb.role,
          priority: lb.priority,
          interface: lb.host.iface,
          vip: `${VIP}/24`,
          unicastSrcIp: lb.host.address,
          unicastPeers: [lb.peer.address],
          haproxyPidfile: lb.pidfile,
          haproxyProbe: `127.0.0.1:${VIP_PORTS.stats}`,
          checkScript,
          routerId: `sb_${id}_${lb.name}`,
        },
        path.join(lb.runDir, 'keepalived.conf'),
      );
      const ka = startKeepalived(lb.name, lb.host, kaConf, lb.runDir, lb.keepalivedLog);
      await register(`keepalived ${lb.name}`, async () => {
        killGroup(ka, 'SIGTERM');
        if (!(await waitExit(ka, 5000))) {
          killGroup(ka, 'SIGKILL');
          await waitExit(ka, 2000);
        }
      });

      let lastError = '';
      const sync = syncBackends(redis, haproxyRuntime(lb.socket), {
        onSync: () => {
          lastError = '';
        },
        onError: (err) => {
          const m = (err as Error).message;
          if (m !== lastError && !stopping) say(`HAProxy ${lb.name} sync: ${m}`);
          lastError = m;
        },
      });
      await register(`the ${lb.name} registry sync`, () => sync.stop());
    }

    checkpoint();
    const members = await makeMembers(() => freePort(app.address));
    await register('the Switchboard processes', () => stopMembers(members));
    for (const m of members) startMember(m, seeds, app.address, `${app.address}:${m.port}`);

    const ready = await waitUntil(async () => {
      checkpoint();
      if ((await vipHolder()) === undefined) return false;
      const r = await fetch(`http://${VIP}:${VIP_PORTS.http}/health`, { signal: AbortSignal.timeout(2000) });
      if (r.status !== 200) return false;
      for (const lb of lbs) {
        const servers = await haproxyRuntime(lb.socket).listServers('api');
        if (servers.filter((s) => s.name.startsWith('sb_')).length !== opts.api) return false;
      }
      return true;
    }, 60_000);
    checkpoint();
    if (!ready)
      throw new Error(
        `the API did not come up behind both HAProxies and the VIP within 60 s; see ${path.join(opts.dataDir, 'logs')}`,
      );
    send({
      type: 'ready',
      info: {
        vipHolder: await vipHolder(),
        lbs: lbs.map((lb) => ({
          name: lb.name,
          role: lb.role,
          priority: lb.priority,
          ns: lb.host.ns,
          address: lb.host.address,
          pidfile: lb.pidfile,
          socket: lb.socket,
          keepalivedLog: lb.keepalivedLog,
        })),
        instances: members.filter((m) => m.port).map((m) => `http://${app.address}:${m.port}`),
        cluster: cluster.nodes.map((n) => `${n.role} redis://${app.address}:${n.port}`),
        haproxyCheckUser: cluster.haproxyCheck.user,
      },
    });
  })();
  await startup.catch((err: unknown) => {
    if (err instanceof Aborted || stopping) return;
    send({ type: 'failed', message: (err as Error).message });
    void stop(1);
  });
}

/** keepalived (VRRP only, foreground) inside `host`'s namespace; logs to `logPath`, state changes to stdout. */
function startKeepalived(
  name: string,
  host: StarHost,
  conf: string,
  runDir: string,
  logPath: string,
): ChildProcess {
  const log = createWriteStream(logPath, { flags: 'a' });
  const [ipCmd = 'ip', ...inNs] = netnsExec(host.ns);
  const ka = spawn(ipCmd, [...inNs, ...keepalivedArgs(conf, runDir)], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let partial = '';
  const onData = (b: Buffer) => {
    log.write(b);
    partial += b.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    if (partial.length > 4096) partial = '';
    for (const line of lines) {
      const state = /Entering (MASTER|BACKUP|FAULT) STATE/.exec(line)?.[1];
      if (state && !stopping)
        say(`keepalived ${name}: ${state}${state === 'MASTER' ? ` (VIP ${VIP} on ${name})` : ''}`);
    }
  };
  ka.stdout?.on('data', onData);
  ka.stderr?.on('data', onData);
  ka.once('exit', (code, signal) => {
    log.end();
    if (!stopping) say(`keepalived ${name} exited (${signal ?? code})`);
  });
  return ka;
}

// ------------------------------------------------------------------ start

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await check()) return true;
    } catch (err) {
      if (err instanceof Aborted) throw err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

function chooseMode(): 'single' | 'vrrp' {
  if (args.vrrp && args['no-vrrp']) fail('--vrrp and --no-vrrp exclude each other');
  if (args['no-vrrp']) return 'single';
  const support = probeNetns({ binaries: ['haproxy', 'keepalived'] });
  if (args.vrrp) {
    if (!support.ok) fail(`--vrrp needs network namespaces: ${support.reason}`);
    return 'vrrp';
  }
  if (!support.ok) say(`single HAProxy on loopback (no HAProxy pair with keepalived: ${support.reason})`);
  return support.ok ? 'vrrp' : 'single';
}

const appNamespace = args['app-namespace'] as string | undefined;
if (appNamespace !== undefined) {
  if (!/^[a-z0-9]{1,6}$/.test(appNamespace)) fail('--app-namespace: invalid run id');
  runAppNamespace(appNamespace).catch((err: unknown) => {
    process.stderr.write(`topology (app namespace): ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
} else if (chooseMode() === 'vrrp') {
  launchVrrp().catch((err: unknown) => {
    process.stderr.write(`topology: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
} else {
  launch().catch((err: unknown) => {
    process.stderr.write(`topology: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
