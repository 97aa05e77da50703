/**
 * The local topology with a single HAProxy (`npm run topology -- --no-vrrp`): every process on
 * loopback. A Redis Cluster of 3 masters with a replica each, one HAProxy in front (HTTP API,
 * TLS, stats, Redis TCP with its layer-7 check) whose `api` backend follows the instance
 * registry, and the Switchboard processes. SIGINT/SIGTERM/SIGHUP stop everything, during start-up too.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { connectRedis } from '../../adapters/redis/client.ts';
import { groupGone } from '../child-processes.ts';
import { syncBackends } from '../haproxy/backend-sync.ts';
import { ensureSelfSignedCert, writeHaproxyConfig } from '../haproxy/config.ts';
import { type HaproxyHandle, startHaproxy } from '../haproxy/process.ts';
import { haproxyRuntime } from '../haproxy/runtime.ts';
import { logFile } from '../log-file.ts';
import type { RedisClusterHandle } from '../redis-cluster.ts';
import { canBind, freePort } from '../redis-server.ts';
import { serveStatus, statusFile, trackStatus } from '../status.ts';
import { Supervisor } from '../supervisor.ts';
import {
  Aborted,
  exampleRequest,
  exitAfter,
  givenPorts,
  type LaunchContext,
  type LaunchedTopology,
  PORT_OPTIONS,
  PORTS,
  type Register,
  undoableSteps,
} from './context.ts';
import { buildMembers, makeMembers, restartSummary, startMember, stopMembers } from './members.ts';

const taken = (port: number, option: string) =>
  `127.0.0.1:${port} (${option}) is taken: another launcher or program listens there; stop it, or give ${option} another port (0: any free one)`;

/**
 * The ports asked for (not 0) must be free before anything starts: HAProxy would fail on them
 * only once the cluster is made. (Its template sets noreuseport, so it never shares one.)
 */
async function refuseTakenPorts(ctx: LaunchContext): Promise<void> {
  for (const key of PORTS) {
    const port = ctx.opts[key];
    if (port !== 0 && !(await canBind('127.0.0.1', port))) throw new Error(taken(port, PORT_OPTIONS[key]));
  }
}

/** HAProxy's `cannot bind socket ... for [127.0.0.1:<port>]`, said with the option of that port. */
function bindFailure(ctx: LaunchContext, err: Error): Error {
  const port = Number(/cannot bind socket .*\[127\.0\.0\.1:(\d+)\]/.exec(err.message)?.[1]);
  const key = PORTS.find((k) => ctx.opts[k] === port);
  return key ? new Error(taken(port, PORT_OPTIONS[key])) : err;
}

/**
 * HAProxy on the asked ports. Ports asked as 0 are picked now, after the cluster took its own
 * (and their bus ports); if one is taken between the pick and HAProxy's bind, pick again.
 */
async function startLoopbackHaproxy(
  ctx: LaunchContext,
  cluster: RedisClusterHandle,
  runDir: string,
  tlsPem: string,
  socket: string,
): Promise<{ handle: HaproxyHandle; configPath: string }> {
  const { opts } = ctx;
  const picked = PORTS.filter((key) => opts[key] === 0);
  for (let attempt = 1; ; attempt++) {
    for (const key of picked) opts[key] = await freePort();
    const configPath = await writeHaproxyConfig({
      runDir,
      tlsPem,
      redisCheckPassword: cluster.haproxyCheck.password,
      httpPort: opts.httpPort,
      tlsPort: opts.tlsPort,
      statsPort: opts.statsPort,
      redisPort: opts.redisPort,
      redisServers: cluster.nodes
        .filter((n) => n.role === 'master')
        .map((n) => ({ host: n.host, port: n.port })),
    });
    try {
      return { handle: await startHaproxy({ configPath, socket, logFile: haproxyLogOf(ctx) }), configPath };
    } catch (err) {
      if (picked.length === 0 || attempt >= 3 || !/Address already in use/.test((err as Error).message))
        throw bindFailure(ctx, err as Error);
    }
  }
}

const haproxyLogOf = (ctx: LaunchContext) => path.join(ctx.logsDir, 'haproxy.log');

/**
 * Starts the single shape. Resolves undefined when start-up failed or a stop was asked for
 * meanwhile (what was started is then being stopped, and the process exits).
 */
export async function launchSingle(ctx: LaunchContext): Promise<LaunchedTopology | undefined> {
  const { say } = ctx;
  // Each step that succeeded, with how to undo it; stop() undoes them newest first.
  const { register, undoAll } = undoableSteps(ctx);
  let startup: Promise<LaunchedTopology> | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      ctx.stopping = true;
      say('stopping ...');
      // The step in flight ends at its next checkpoint (a cluster being made, first).
      await startup?.catch(() => undefined);
      const restarts = restartSummary();
      if (restarts) say(restarts);
      await undoAll();
    })());
  const shutdown = (code: number) => exitAfter(stop, code);
  // Installed before anything starts: Ctrl-C during start-up also stops what was started. SIGHUP
  // too (the terminal closed): the Redis nodes and HAProxy run in process groups of their own, get
  // none, and would be left running.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => shutdown(0));

  startup = startUp(ctx, register, stop);
  try {
    return await startup;
  } catch (err) {
    if (ctx.stopping || err instanceof Aborted) return undefined; // a signal arrived; stop() is running
    process.stderr.write(`topology: ${(err as Error).message}\n`);
    say('start-up failed; stopping what was started ...');
    shutdown(1);
    return undefined;
  }
}

async function startUp(
  ctx: LaunchContext,
  register: Register,
  stop: () => Promise<void>,
): Promise<LaunchedTopology> {
  const { opts, say } = ctx;
  // First: an explicit port that is taken fails the launch before anything runs.
  await refuseTakenPorts(ctx);
  const status = trackStatus({
    pid: process.pid,
    mode: 'single',
    startedAt: new Date().toISOString(),
    dataDir: opts.dataDir,
  });
  const statusServer = await serveStatus(status, opts.statusPort, givenPorts(opts));
  await register('the status server', () => statusServer.close());
  // Built while the cluster is made: the members' module, and HAProxy's TLS certificate.
  await buildMembers(ctx, register);
  const runDir = path.join(opts.dataDir, 'haproxy');
  const tlsPem = ensureSelfSignedCert(runDir);
  tlsPem.catch(() => undefined); // awaited below; a start-up failing before then says its own error
  say('starting a Redis Cluster: 3 masters, 3 replicas, AOF on ...');
  const cluster = await ctx.startCluster();
  await register('the Redis Cluster', () => cluster.stop());
  const masters = cluster.nodes.filter((n) => n.role === 'master');
  const seeds = masters.map((n) => `${n.host}:${n.port}`).join(',');

  const socket = path.join(runDir, 'haproxy.sock');
  const first = await startLoopbackHaproxy(ctx, cluster, runDir, await tlsPem, socket);
  // Supervised: started again with the same configuration (ports) when it dies.
  const haproxy: Supervisor<HaproxyHandle> = new Supervisor(first.handle, {
    name: 'HAProxy',
    kind: 'haproxy',
    say,
    stopping: () => ctx.stopping,
    firstDelayMs: ctx.opts.haproxyRestartDelayMs ?? 1000,
    log: logFile(haproxyLogOf(ctx)),
    restart: async () => {
      haproxy.current.kill('SIGKILL');
      // Gone before the new one binds: it shares no port (noreuseport in the template).
      await groupGone(haproxy.current.process.pid, 3000);
      rmSync(socket, { force: true });
      return startHaproxy({ configPath: first.configPath, socket, logFile: haproxyLogOf(ctx) });
    },
  });
  await register('HAProxy', () => haproxy.stop());
  const app = cluster.credentials.app;
  const redis = connectRedis({ clusterNodes: seeds.split(','), username: app.user, password: app.password });
  await register('the Redis connection', async () => redis.disconnect());
  const sync = syncBackends(redis, haproxyRuntime(socket), {
    onError: (err) => say(`haproxy sync: ${(err as Error).message}`),
  });
  await register('the HAProxy backend sync', () => sync.stop());

  const members = await makeMembers(ctx, () => freePort());
  await register('the Switchboard processes', () => stopMembers(ctx, members));
  for (const m of members) startMember(ctx, m, seeds, app, '127.0.0.1');

  const apiUrl = `http://127.0.0.1:${opts.httpPort}`;
  const ready = await ctx.waitUntil(async () => {
    ctx.checkpoint();
    const r = await fetch(`${apiUrl}/health`).catch(() => undefined);
    const servers = await haproxyRuntime(socket)
      .listServers('api')
      .catch(() => []);
    return r?.status === 200 && servers.filter((s) => s.name.startsWith('sb_')).length === opts.api;
  }, 60_000);
  ctx.checkpoint();
  if (!ready) throw new Error(`the API did not come up behind HAProxy within 60 s; see ${ctx.logsDir}`);

  const urls = {
    api: apiUrl,
    tls: `https://127.0.0.1:${opts.tlsPort}`,
    stats: `http://127.0.0.1:${opts.statsPort}/stats`,
    redisFrontend: `redis://127.0.0.1:${opts.redisPort}`,
    instances: members.filter((m) => m.port).map((m) => `http://127.0.0.1:${m.port}`),
    cluster: cluster.nodes.map((n) => `${n.role} redis://${n.host}:${n.port}`),
    logs: ctx.logsDir,
    redisCredentials: ctx.credentialsFile,
    status: `http://127.0.0.1:${statusServer.port}/status`,
  };

  return {
    apiUrl,
    report: { urls },
    stop,
    banner: [
      '',
      `Switchboard topology is up:`,
      `  API through HAProxy   ${urls.api}   (round-robin over ${opts.api} instances, checked on /health)`,
      `  API over TLS          ${urls.tls}   (self-signed: curl -k)`,
      `  HAProxy stats         ${urls.stats}`,
      `  Redis through HAProxy ${urls.redisFrontend}   (TCP, checked by AUTH+PING as ${cluster.haproxyCheck.user})`,
      `  API instances         ${urls.instances.join(' ')}`,
      `  Redis Cluster         ${urls.cluster.join(', ')}`,
      `  Redis passwords       ${urls.redisCredentials}   (Switchboard logs in as ${app.user}; admin: default)`,
      `  Admin API key         ${path.join(opts.dataDir, 'admin-key')}   (workspace default, unless AUTH=off: curl -H "Authorization: Bearer $(cat <it>)" ...)`,
      `  Logs                  ${urls.logs}`,
      `  Data                  ${opts.dataDir}   (kept: a later launch starts this cluster again; --fresh deletes it)`,
      '  Supervised            Redis nodes, HAProxy and Switchboard processes are restarted when they die',
      `  Launcher status       ${urls.status}   (each supervised process: pid, state, restarts; also ${statusFile(opts.dataDir)})`,
      `  Try it                ${exampleRequest(urls.api, opts.dataDir)}`,
      'Ctrl-C stops everything.',
    ],
  };
}
