/**
 * The HAProxy pair of the VRRP shape, started from the app namespace: in each lb namespace an
 * HAProxy (master-worker, pidfile) and keepalived (MASTER or BACKUP, checking HAProxy's pid and
 * moving the VIP), and in the app namespace the loop that keeps that HAProxy's `api` backend
 * equal to the instance registry (through its runtime socket, a file).
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { RedisClient } from '../../adapters/redis/scripts.ts';
import {
  endingWithThisProcess,
  groupGone,
  killOnExit,
  onSpawnError,
  signalGroup,
  stopChild,
} from '../child-processes.ts';
import { syncBackends } from '../haproxy/backend-sync.ts';
import { writeHaproxyConfig } from '../haproxy/config.ts';
import { startHaproxy } from '../haproxy/process.ts';
import { haproxyRuntime } from '../haproxy/runtime.ts';
import { CHECK_HAPROXY_SCRIPT, keepalivedArgs, writeKeepalivedConfig } from '../keepalived/config.ts';
import { logFile } from '../log-file.ts';
import { type NetnsStar, netnsExec, type StarHost } from '../netns.ts';
import { type SupervisedHandle, Supervisor } from '../supervisor.ts';
import type { LaunchContext, Register } from './context.ts';
import { LB_ROLES, type LbInfo, scriptDir, VIP, VIP_PORTS } from './vrrp-plan.ts';

export interface LoadBalancer {
  readonly name: string;
  readonly role: 'MASTER' | 'BACKUP';
  readonly priority: number;
  readonly host: StarHost;
  readonly peer: StarHost;
  readonly runDir: string;
  readonly pidfile: string;
  readonly socket: string;
  readonly keepalivedLog: string;
}

export function loadBalancersOf(ctx: LaunchContext, star: NetnsStar): LoadBalancer[] {
  return LB_ROLES.map((r) => {
    const runDir = path.join(ctx.opts.dataDir, r.name);
    return {
      ...r,
      host: star.host(r.name),
      peer: star.host(r.name === 'lb1' ? 'lb2' : 'lb1'),
      runDir,
      pidfile: path.join(runDir, 'haproxy.pid'),
      socket: path.join(runDir, 'haproxy.sock'),
      keepalivedLog: path.join(ctx.logsDir, `keepalived-${r.name}.log`),
    };
  });
}

export function infoOf(lb: LoadBalancer): LbInfo {
  return {
    name: lb.name,
    role: lb.role,
    priority: lb.priority,
    ns: lb.host.ns,
    address: lb.host.address,
    pidfile: lb.pidfile,
    socket: lb.socket,
    keepalivedLog: lb.keepalivedLog,
  };
}

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

/**
 * keepalived runs its check script as root only if no part of its path is writable by others:
 * the repository's script, or a copy in a root-only directory of run `id`.
 */
export function checkScriptFor(id: string): string {
  if (rootOnly(CHECK_HAPROXY_SCRIPT)) return CHECK_HAPROXY_SCRIPT;
  mkdirSync(scriptDir(id), { recursive: true, mode: 0o755 });
  const checkScript = path.join(scriptDir(id), 'check_haproxy.sh');
  copyFileSync(CHECK_HAPROXY_SCRIPT, checkScript);
  chmodSync(checkScript, 0o755);
  return checkScript;
}

/** keepalived (VRRP only, foreground) inside `host`'s namespace; logs to its file, state changes to the user. */
function startKeepalived(ctx: LaunchContext, lb: LoadBalancer, conf: string): SupervisedHandle {
  const log = logFile(lb.keepalivedLog);
  const [cmd = 'ip', ...rest] = endingWithThisProcess([
    ...netnsExec(lb.host.ns),
    ...keepalivedArgs(conf, lb.runDir),
  ]);
  const ka = spawn(cmd, rest, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(ka);
  onSpawnError(ka, (err) => log.note(`keepalived ${lb.name}: ${err.message}`));
  let partial = '';
  const onData = (b: Buffer) => {
    log.write(b);
    partial += b.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    if (partial.length > 4096) partial = '';
    for (const line of lines) {
      const state = /Entering (MASTER|BACKUP|FAULT) STATE/.exec(line)?.[1];
      if (state && !ctx.stopping)
        ctx.say(`keepalived ${lb.name}: ${state}${state === 'MASTER' ? ` (VIP ${VIP} on ${lb.name})` : ''}`);
    }
  };
  ka.stdout?.on('data', onData);
  ka.stderr?.on('data', onData);
  return {
    process: ka,
    stop: async () => {
      await stopChild(ka, { graceMs: 5000, killWaitMs: 2000 });
    },
  };
}

export interface LoadBalancerSetup {
  readonly id: string;
  readonly tlsPem: string;
  readonly checkScript: string;
  readonly redisCheckPassword: string;
  /** keepalived's VRRP password (the same on both members; kept in the data directory). */
  readonly vrrpPassword: string;
  /** The cluster's masters as HAProxy's Redis frontend reaches them. */
  readonly redisServers: readonly { host: string; port: number }[];
  readonly redis: RedisClient;
  readonly register: Register;
}

/** HAProxy and keepalived in `lb`'s namespace, and the registry sync of that HAProxy. */
export async function startLoadBalancer(
  ctx: LaunchContext,
  lb: LoadBalancer,
  setup: LoadBalancerSetup,
): Promise<void> {
  ctx.checkpoint();
  ctx.say(`starting HAProxy and keepalived ${lb.role} in ${lb.host.ns} (${lb.host.address}) ...`);
  rmSync(lb.runDir, { recursive: true, force: true });
  const configPath = await writeHaproxyConfig({
    runDir: lb.runDir,
    tlsPem: setup.tlsPem,
    redisCheckPassword: setup.redisCheckPassword,
    bindAddress: '0.0.0.0',
    httpPort: VIP_PORTS.http,
    tlsPort: VIP_PORTS.tls,
    statsPort: VIP_PORTS.stats,
    redisPort: VIP_PORTS.redis,
    redisServers: [...setup.redisServers],
  });
  // Master-worker (-W): haproxy writes its pidfile (the master's pid), which keepalived checks.
  const haproxyLog = path.join(ctx.logsDir, `haproxy-${lb.name}.log`);
  const start = () =>
    startHaproxy({
      configPath,
      socket: lb.socket,
      prefix: netnsExec(lb.host.ns),
      args: ['-W'],
      logFile: haproxyLog,
    });
  const haproxy = new Supervisor(await start(), {
    name: `HAProxy ${lb.name}`,
    kind: 'haproxy',
    say: ctx.say,
    stopping: () => ctx.stopping,
    firstDelayMs: ctx.opts.haproxyRestartDelayMs ?? 1000,
    log: logFile(haproxyLog),
    restart: async () => {
      // Its workers too (they leave once the master is gone), and the old socket: the new
      // process is ready when it answers there.
      haproxy.current.kill('SIGKILL');
      // Gone before the new one binds: it shares no port (noreuseport in the template).
      await groupGone(haproxy.current.process.pid, 3000);
      rmSync(lb.socket, { force: true });
      return start();
    },
    onRestarted: () =>
      ctx.say(`HAProxy ${lb.name} is back; keepalived's check on it passes again within a few seconds`),
  });
  await setup.register(`HAProxy ${lb.name}`, () => haproxy.stop());
  const pidReady = await ctx.waitUntil(
    async () => (await readFile(lb.pidfile, 'utf8')).trim() !== '' || ctx.stopping,
    10_000,
  );
  ctx.checkpoint();
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
      // 200 only while HAProxy's api backend has a server up: a restarted HAProxy takes the VIP
      // back once the registry sync has given it servers that pass their checks.
      haproxyProbe: `http://127.0.0.1:${VIP_PORTS.stats}/ready`,
      checkScript: setup.checkScript,
      routerId: `sb_${setup.id}_${lb.name}`,
      authPass: setup.vrrpPassword,
    },
    path.join(lb.runDir, 'keepalived.conf'),
  );
  const ka = new Supervisor(startKeepalived(ctx, lb, kaConf), {
    name: `keepalived ${lb.name}`,
    kind: 'keepalived',
    say: ctx.say,
    stopping: () => ctx.stopping,
    log: logFile(lb.keepalivedLog),
    restart: async () => {
      // Its VRRP child too, should it outlive the parent; and gone before the new one starts,
      // which would otherwise find it in vrrp.pid, say it is already running and exit 0.
      signalGroup(ka.current.process, 'SIGKILL');
      await groupGone(ka.current.process.pid, 3000);
      return startKeepalived(ctx, lb, kaConf);
    },
  });
  await setup.register(`keepalived ${lb.name}`, () => ka.stop());

  let lastError = '';
  const sync = syncBackends(setup.redis, haproxyRuntime(lb.socket), {
    onSync: () => {
      lastError = '';
    },
    onError: (err) => {
      const m = (err as Error).message;
      if (m !== lastError && !ctx.stopping) ctx.say(`HAProxy ${lb.name} sync: ${m}`);
      lastError = m;
    },
  });
  await setup.register(`the ${lb.name} registry sync`, () => sync.stop());
}
