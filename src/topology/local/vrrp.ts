/**
 * The VRRP shape, as run in the root namespace (`npm run topology -- --vrrp`): the HAProxy pair
 * with keepalived in network namespaces this launcher creates (src/topology/netns.ts; run id
 * <id>, subnet 10.231.1.0/24, all joined by a bridge that lives in a namespace of its own,
 * nothing is added to the root namespace; the plan is in vrrp-plan.ts).
 *
 * The part inside sb-<id>-app is the launcher command run again as a child (`ip netns exec
 * sb-<id>-app node launch.ts --app-namespace <id>`, app-namespace.ts); its children inherit the
 * namespace. Users on the host reach the API through forwarders: this process listens on
 * 127.0.0.1:<http-port> (and the TLS, stats and Redis ports) and hands the listening sockets to
 * the child over Node's IPC channel; the child accepts there and connects to VIP:8000 (8443,
 * 8404, 12000) from inside the namespace. So every forwarded request crosses the VIP and
 * whichever HAProxy holds it. SIGINT, SIGTERM and SIGHUP stop everything and delete every
 * namespace, also when start-up failed half way; if this process dies (even SIGKILL) the child
 * notices its IPC channel closing and cleans up instead.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import type net from 'node:net';
import { hasExited, signalGroup, waitExit } from '../child-processes.ts';
import { type NetnsStar, netnsExec } from '../netns.ts';
import { type LauncherStatus, serveStatus, statusFile } from '../status.ts';
import {
  Aborted,
  exampleRequest,
  exitAfter,
  givenPorts,
  type LaunchContext,
  type LaunchedTopology,
} from './context.ts';
import { boundPort, listenLoopback } from './forwarder.ts';
import { builtPath, entryCommand, type MainCommand } from './main-build.ts';
import {
  type Forwarded,
  type FromApp,
  scriptDir,
  type ToApp,
  VIP,
  VIP_PORTS,
  VRRP_SUBNET,
  type VrrpInfo,
  vrrpStar,
} from './vrrp-plan.ts';

/** Listens on the four loopback ports the user asked for (the forwarders' sockets). */
async function openForwarders(ctx: LaunchContext, servers: Map<Forwarded, net.Server>): Promise<void> {
  const { opts } = ctx;
  for (const [name, port] of [
    ['http', opts.httpPort],
    ['tls', opts.tlsPort],
    ['stats', opts.statsPort],
    ['redis', opts.redisPort],
  ] as const) {
    ctx.checkpoint();
    try {
      servers.set(name, await listenLoopback(port));
    } catch (err) {
      throw new Error(`cannot listen on 127.0.0.1:${port} (--${name}-port): ${(err as Error).message}`);
    }
  }
}

/**
 * Runs `entry --app-namespace <id>` inside the app namespace, hands it the forwarders' sockets
 * and resolves with what it started. After start-up, `lost` is called if it exits.
 */
function startAppNamespace(
  ctx: LaunchContext,
  star: NetnsStar,
  entry: MainCommand,
  servers: Map<Forwarded, net.Server>,
  lost: (why: string) => void,
  onStatus: (status: LauncherStatus) => void,
): { child: ChildProcess; info: Promise<VrrpInfo> } {
  const { opts } = ctx;
  const [ipCmd = 'ip', ...inApp] = netnsExec(star.host('app').ns);
  const child = spawn(
    ipCmd,
    [
      ...inApp,
      process.execPath,
      ...entry.args,
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
      ...(opts.fresh ? ['--fresh'] : []),
      ...(opts.haproxyRestartDelayMs ? ['--haproxy-restart-delay', String(opts.haproxyRestartDelayMs)] : []),
    ],
    // Own process group: a terminal's Ctrl-C reaches this process only, which stops the rest in order.
    { detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  let up = false;
  const info = new Promise<VrrpInfo>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the topology did not come up within 150 s')), 150_000);
    child.on('error', (err) => reject(new Error(`cannot start the app namespace: ${err.message}`)));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (ctx.stopping) return;
      const why = `the app namespace process exited (${signal ?? code})`;
      if (!up) return reject(new Error(why));
      // After start-up: the forwarders and the supervision are gone with it; stop the rest.
      lost(why);
    });
    child.on('message', (raw) => {
      const msg = raw as FromApp;
      if (msg.type === 'hello') {
        // Only now: a message with a handle that arrives before the child listens is lost.
        for (const [name, server] of servers) {
          child.send({ type: 'forward', name, port: VIP_PORTS[name] } satisfies ToApp, server);
        }
      } else if (msg.type === 'forwarding') {
        // The child accepts on its copy of the socket; this process must not accept any more.
        servers.get(msg.name)?.close();
        servers.delete(msg.name);
      } else if (msg.type === 'status') {
        onStatus(msg.status);
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
  return { child, info };
}

function bannerOf(
  ctx: LaunchContext,
  star: NetnsStar,
  info: VrrpInfo,
  urls: ReturnType<typeof urlsOf>,
): string[] {
  const x = urls.netnsExec;
  return [
    '',
    `Switchboard topology is up: HAProxy pair with keepalived (VRRP), run ${star.id}:`,
    `  API through HAProxy   ${urls.api}   (forwarded to the VIP ${urls.vip.api}; round-robin over ${ctx.opts.api} instances)`,
    `  API over TLS          ${urls.tls}   (forwarded to ${urls.vip.tls}; self-signed: curl -k)`,
    `  HAProxy stats         ${urls.stats}   (of the HAProxy holding the VIP)`,
    `  Redis through HAProxy ${urls.redisFrontend}   (forwarded to ${urls.vip.redisFrontend}; TCP, checked by AUTH+PING as ${info.haproxyCheckUser})`,
    `  Through the VIP       ${urls.vip.api} ${urls.vip.tls} ${urls.vip.stats} ${urls.vip.redisFrontend}`,
    `                        inside the namespaces, e.g. ${x} curl ${urls.vip.api}/health`,
    ...info.lbs.map(
      (lb) =>
        `  HAProxy ${lb.name} ${lb.role.padEnd(6)}   namespace ${lb.ns}, ${lb.address}, keepalived priority ${lb.priority}, pidfile ${lb.pidfile}`,
    ),
    `  VIP ${VIP} on   ${info.vipHolder ?? '(none yet)'}`,
    `  API instances         ${urls.instances.join(' ')}   (${x} curl ...)`,
    `  Redis Cluster         ${urls.cluster.join(', ')}   (${x} redis-cli -c ...)`,
    `  Redis passwords       ${ctx.credentialsFile}   (Switchboard logs in as switchboard; admin: default)`,
    `  VRRP password         ${ctx.vrrpPasswordFile}   (random, both keepalived instances; --fresh makes a new one)`,
    `  Namespaces            ${star.namespaces.join(' ')}   (deleted on Ctrl-C)`,
    `  Admin API key         ${ctx.opts.dataDir}/admin-key   (workspace default, unless AUTH=off: curl -H "Authorization: Bearer $(cat <it>)" ...)`,
    `  Logs                  ${urls.logs}`,
    `  Data                  ${ctx.opts.dataDir}   (kept: a later launch starts this cluster again; --fresh deletes it)`,
    '  Supervised            Redis nodes, HAProxy, keepalived and Switchboard processes are restarted when they die',
    `  Launcher status       ${urls.status}   (each supervised process: pid, state, restarts; also ${statusFile(ctx.opts.dataDir)})`,
    `  Try it                ${exampleRequest(urls.api, ctx.opts.dataDir)}`,
    'Ctrl-C stops everything.',
  ];
}

function urlsOf(
  ctx: LaunchContext,
  star: NetnsStar,
  info: VrrpInfo,
  ports: Record<Forwarded, number>,
  statusPort: number,
) {
  return {
    status: `http://127.0.0.1:${statusPort}/status`,
    api: `http://127.0.0.1:${ports.http}`,
    tls: `https://127.0.0.1:${ports.tls}`,
    stats: `http://127.0.0.1:${ports.stats}/stats`,
    redisFrontend: `redis://127.0.0.1:${ports.redis}`,
    vip: {
      api: `http://${VIP}:${VIP_PORTS.http}`,
      tls: `https://${VIP}:${VIP_PORTS.tls}`,
      stats: `http://${VIP}:${VIP_PORTS.stats}/stats`,
      redisFrontend: `redis://${VIP}:${VIP_PORTS.redis}`,
    },
    netnsExec: `ip netns exec ${star.host('app').ns}`,
    vipHolder: info.vipHolder,
    lbs: info.lbs,
    instances: info.instances,
    cluster: info.cluster,
    namespaces: star.namespaces,
    logs: ctx.logsDir,
  };
}

/**
 * Starts the VRRP shape; `entry` is the launcher command the app namespace runs. Resolves
 * undefined when start-up failed or a stop was asked for meanwhile (everything is then being
 * removed and the process exits).
 */
export async function launchVrrp(ctx: LaunchContext, entry: string): Promise<LaunchedTopology | undefined> {
  const { say } = ctx;
  // The app namespace's launcher runs from a build of `entry` made meanwhile (about a second of
  // CPU less than through tsx, as for the members); through tsx when it cannot be built.
  const building = entryCommand(entry, 'launch', (err) =>
    say(`could not build the launcher (${err.message}); the app namespace runs it through tsx`),
  );
  process.once('exit', () => rmSync(builtPath('launch'), { force: true }));
  const star = vrrpStar();
  const servers = new Map<Forwarded, net.Server>();
  let child: ChildProcess | undefined;
  let stopPromise: Promise<void> | undefined;
  // What the app namespace's process last reported of the processes it supervises.
  let status: LauncherStatus | undefined;
  let statusServer: Awaited<ReturnType<typeof serveStatus>> | undefined;

  const stop = (): Promise<void> =>
    (stopPromise ??= (async () => {
      ctx.stopping = true;
      for (const s of servers.values()) s.close();
      servers.clear();
      if (child && !hasExited(child)) {
        // SIGTERM rather than an IPC message: it also works before the child listens for messages
        // (it then just dies; nothing was started yet).
        child.kill('SIGTERM');
        if (!(await waitExit(child, 60_000))) {
          say('the app namespace did not stop within 60 s; killing it');
          signalGroup(child, 'SIGKILL');
          await waitExit(child, 5000);
        }
      }
      // Whatever still runs in the namespaces (nothing, after a clean stop) is killed here.
      const left = await star.destroy();
      rmSync(scriptDir(star.id), { recursive: true, force: true });
      await building.then((c) => c.dispose());
      await statusServer?.close();
      if (left.length > 0) throw new Error(`could not delete network namespaces ${left.join(' ')}`);
    })());
  const shutdown = (code: number) => exitAfter(stop, code);
  // Installed before anything is created: Ctrl-C during start-up also removes everything.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (!ctx.stopping) say('stopping ...');
      shutdown(0);
    });
  }
  process.once('exit', () => rmSync(scriptDir(star.id), { recursive: true, force: true }));

  try {
    statusServer = await serveStatus(() => status, ctx.opts.statusPort, givenPorts(ctx.opts));
    await openForwarders(ctx, servers);
    const ports = Object.fromEntries([...servers].map(([k, s]) => [k, boundPort(s)])) as Record<
      Forwarded,
      number
    >;
    say(`creating network namespaces ${star.namespaces.join(' ')} (${VRRP_SUBNET}.0/24, VIP ${VIP}) ...`);
    await star.create();
    ctx.checkpoint();

    const command = await building;
    ctx.checkpoint();
    const app = startAppNamespace(
      ctx,
      star,
      command,
      servers,
      (why) => {
        process.stderr.write(`topology: ${why}; stopping\n`);
        shutdown(1);
      },
      (s) => {
        status = s;
      },
    );
    child = app.child;
    const info = await app.info;

    const urls = urlsOf(ctx, star, info, ports, statusServer.port);
    const through = await ctx.waitUntil(async () => {
      ctx.checkpoint();
      const r = await fetch(`${urls.api}/health`, { signal: AbortSignal.timeout(2000) });
      return r.status === 200;
    }, 15_000);
    ctx.checkpoint();
    if (!through) throw new Error(`the API does not answer through the forwarder ${urls.api}`);
    return {
      apiUrl: urls.api,
      report: { mode: 'vrrp', urls },
      banner: bannerOf(ctx, star, info, urls),
      stop,
    };
  } catch (err) {
    if (ctx.stopping || err instanceof Aborted) return undefined; // a signal arrived; stop() is already running
    process.stderr.write(`topology: ${(err as Error).message}\n`);
    say('start-up failed; removing everything ...');
    shutdown(1);
    return undefined;
  }
}
