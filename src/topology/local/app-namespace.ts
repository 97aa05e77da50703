/**
 * The part of the VRRP shape that runs inside the app namespace (`launch.ts --app-namespace
 * <id>`, started by vrrp.ts): the Redis Cluster, the HAProxy pair with keepalived (each in its lb
 * namespace), the registry syncs, the Switchboard processes and the forwarders. It reports to
 * the launcher over the IPC channel (vrrp-plan.ts). On SIGINT/SIGTERM it undoes every step in
 * reverse order; if the launcher disappears (its IPC channel closes), it also deletes the
 * namespaces, since nobody else will.
 */
import { rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { connectRedis } from '../../adapters/redis/client.ts';
import { ensureSelfSignedCert } from '../haproxy/config.ts';
import { haproxyRuntime } from '../haproxy/runtime.ts';
import { loadOrCreateVrrpPassword } from '../keepalived/config.ts';
import { ip, type NetnsStar, netnsExec } from '../netns.ts';
import { freePort } from '../redis-server.ts';
import { trackStatus } from '../status.ts';
import { Aborted, type LaunchContext, type Register, undoableSteps } from './context.ts';
import { claimDataDir } from './data-dir-lock.ts';
import { forwardTo } from './forwarder.ts';
import {
  checkScriptFor,
  infoOf,
  type LoadBalancer,
  loadBalancersOf,
  startLoadBalancer,
} from './load-balancers.ts';
import { buildMembers, makeMembers, restartSummary, startMember, stopMembers } from './members.ts';
import { type FromApp, scriptDir, type ToApp, VIP, VIP_PORTS, vrrpStar } from './vrrp-plan.ts';

/** The lb holding the VIP, by its address in each lb namespace. */
async function vipHolder(lbs: readonly LoadBalancer[]): Promise<string | undefined> {
  for (const lb of lbs) {
    const out = await ip('-n', lb.host.ns, '-4', '-o', 'addr', 'show', 'dev', lb.host.iface).catch(() => '');
    if (out.includes(`inet ${VIP}/`)) return lb.name;
  }
  return undefined;
}

/** Everything inside the namespaces, in order; each step registers how to undo it. */
async function startUp(
  ctx: LaunchContext,
  star: NetnsStar,
  lbs: readonly LoadBalancer[],
  register: Register,
  send: (msg: FromApp) => void,
): Promise<void> {
  const { opts, say } = ctx;
  const { id } = star;
  const app = star.host('app');
  // Built while the cluster is made: the members' module, and the HAProxies' TLS certificate.
  await buildMembers(ctx, register);
  const tlsPem = ensureSelfSignedCert(path.join(opts.dataDir, 'vrrp-certs'), {
    altNames: ['DNS:localhost', 'IP:127.0.0.1', `IP:${VIP}`],
  });
  tlsPem.catch(() => undefined); // awaited below; a start-up failing before then says its own error
  say(`starting a Redis Cluster in ${app.ns}: 3 masters, 3 replicas, AOF on ...`);
  // Also on the namespace's address, announced to cluster clients, so HAProxy's Redis frontend
  // (in the lb namespaces) reaches the masters. Protected mode would refuse non-loopback
  // clients; the address exists only inside this run's namespaces.
  const cluster = await ctx.startCluster(
    ['--bind', '127.0.0.1', app.address, '--cluster-announce-ip', app.address, '--protected-mode', 'no'],
    netnsExec(app.ns),
  );
  await register('the Redis Cluster', () => cluster.stop());
  const masters = cluster.nodes.filter((n) => n.role === 'master');
  const seeds = masters.map((n) => `${app.address}:${n.port}`).join(',');
  const login = cluster.credentials.app;
  const redis = connectRedis({
    clusterNodes: seeds.split(','),
    username: login.user,
    password: login.password,
  });
  await register('the Redis client', async () => redis.disconnect());

  const setup = {
    id,
    tlsPem: await tlsPem,
    checkScript: checkScriptFor(id),
    redisCheckPassword: cluster.haproxyCheck.password,
    // Random, made on the first launch and kept beside the cluster's passwords (--fresh: a new one).
    vrrpPassword: loadOrCreateVrrpPassword(ctx.vrrpPasswordFile),
    redisServers: masters.map((n) => ({ host: app.address, port: n.port })),
    redis,
    register,
  };
  for (const lb of lbs) await startLoadBalancer(ctx, lb, setup);

  ctx.checkpoint();
  // HAProxy reaches the API instances from its lb namespace's address.
  ctx.trustProxy = lbs.map((lb) => lb.host.address).join(',');
  const members = await makeMembers(ctx, () => freePort(app.address));
  await register('the Switchboard processes', () => stopMembers(ctx, members));
  // Run first on stop: what was restarted during the run.
  await register('the restart counts', async () => {
    const restarts = restartSummary();
    if (restarts) ctx.say(restarts);
  });
  for (const m of members) startMember(ctx, m, seeds, login, app.address, `${app.address}:${m.port}`);

  const ready = await ctx.waitUntil(async () => {
    ctx.checkpoint();
    if ((await vipHolder(lbs)) === undefined) return false;
    const r = await fetch(`http://${VIP}:${VIP_PORTS.http}/health`, { signal: AbortSignal.timeout(2000) });
    if (r.status !== 200) return false;
    for (const lb of lbs) {
      const servers = await haproxyRuntime(lb.socket).listServers('api');
      if (servers.filter((s) => s.name.startsWith('sb_')).length !== opts.api) return false;
    }
    return true;
  }, 60_000);
  ctx.checkpoint();
  if (!ready)
    throw new Error(
      `the API did not come up behind both HAProxies and the VIP within 60 s; see ${ctx.logsDir}`,
    );
  send({
    type: 'ready',
    info: {
      vipHolder: await vipHolder(lbs),
      lbs: lbs.map(infoOf),
      instances: members.filter((m) => m.port).map((m) => `http://${app.address}:${m.port}`),
      cluster: cluster.nodes.map((n) => `${n.role} redis://${app.address}:${n.port}`),
      haproxyCheckUser: cluster.haproxyCheck.user,
    },
  });
}

export async function runAppNamespace(ctx: LaunchContext, id: string): Promise<void> {
  const star = vrrpStar(id, false);
  const lbs = loadBalancersOf(ctx, star);
  // Output goes to the launcher's stdout; if it is gone (launcher killed), keep running the cleanup.
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);

  const { register, undoAll } = undoableSteps(ctx);
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
      ctx.stopping = true;
      for (const s of forwarders) s.close();
      for (const s of sockets) s.destroy();
      await startup.catch(() => undefined);
      await undoAll();
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
      if (ctx.stopping) {
        handle.close();
        return;
      }
      forwarders.add(handle);
      forwardTo(handle, VIP, msg.port, sockets);
      send({ type: 'forwarding', name: msg.name });
    }
  });
  process.on('disconnect', () => {
    if (ctx.stopping) return;
    orphan = true;
    // The launcher's claim on the data directory died with it: this process holds it until it
    // has stopped everything, so a launcher started meanwhile does not start the cluster again
    // over the nodes still stopping here.
    try {
      claimDataDir(ctx.opts.dataDir);
    } catch (err) {
      process.stderr.write(`topology (app namespace): ${(err as Error).message}\n`);
    }
    void stop(1);
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void stop(0));
  send({ type: 'hello' });
  // Every supervised process runs here: their status goes to <data dir>/status.json and to the
  // launcher, which serves it as /status on the host's loopback (ip netns exec execs: the
  // launcher is this process's parent).
  trackStatus(
    {
      pid: process.ppid,
      appNamespacePid: process.pid,
      mode: 'vrrp',
      startedAt: new Date().toISOString(),
      dataDir: ctx.opts.dataDir,
    },
    (status) => send({ type: 'status', status }),
  );

  startup = startUp(ctx, star, lbs, register, send);
  await startup.catch((err: unknown) => {
    if (err instanceof Aborted || ctx.stopping) return;
    send({ type: 'failed', message: (err as Error).message });
    void stop(1);
  });
}
