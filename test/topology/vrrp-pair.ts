/**
 * A VRRP pair of HAProxy + keepalived hosts in network namespaces this harness creates, on one /24
 * (`10.x.y.0/24`; suites that run side by side take different ones):
 *
 *   sbtest-cl-XXXX (client .50) ──┐
 *   sbtest-lb1-XXXX (.11) ────────┼── br0 in sbtest-br-XXXX, VIP .100/24
 *   sbtest-lb2-XXXX (.12) ────────┘
 *
 * Each lb namespace runs what the suite starts first (`beforeHaproxy`), then HAProxy (master-worker,
 * pidfile, frontend 0.0.0.0:8000) and keepalived (lb1 MASTER, lb2 BACKUP, unicast VRRP).
 * Addresses exist only inside these namespaces; nothing is sent anywhere else. Requires root and
 * `ip netns` (see `vrrpEnv`): namespaces, veth pairs and VRRP need CAP_NET_ADMIN/CAP_NET_RAW.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  ensureSelfSignedCert,
  type HaproxyConfigOptions,
  writeHaproxyConfig,
} from '../../src/topology/haproxy/config.ts';
import { type HaproxyHandle, startHaproxy } from '../../src/topology/haproxy/process.ts';
import {
  keepalivedArgs,
  newVrrpPassword,
  writeKeepalivedConfig,
} from '../../src/topology/keepalived/config.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { execFileP, tempDir } from './helpers.ts';

export type LbKey = 'lb1' | 'lb2';

/** Whether this machine can run a VRRP pair: Linux, root, ip/haproxy/keepalived, `ip netns add`. */
export function vrrpEnv(): { ok: boolean; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'not Linux' };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not root (ip netns / VRRP need CAP_NET_ADMIN)' };
  for (const bin of ['ip', 'haproxy', 'keepalived']) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    } catch {
      return { ok: false, reason: `${bin} not installed` };
    }
  }
  const probe = `sbtest-probe-${randomBytes(3).toString('hex')}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore' });
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  } catch {
    return {
      ok: false,
      reason: '`ip netns add` does not work here (no CAP_SYS_ADMIN or /run/netns not writable)',
    };
  }
  return { ok: true, reason: '' };
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

function killPids(pids: string): void {
  for (const pid of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export interface VrrpPairStart {
  /** The temp dir's name prefix. */
  tempName: string;
  /** Run in each lb namespace (lb1 first) before its HAProxy starts, e.g. a backend. */
  beforeHaproxy?: (key: LbKey, ns: string) => Promise<void>;
  /** Added to each HAProxy's configuration (e.g. its API servers). */
  haproxy?: Pick<HaproxyConfigOptions, 'apiServers' | 'apiCheckInter'>;
  /** keepalived's HAProxy probe (host:port or http URL). */
  haproxyProbe: string;
  /** keepalived's router_id is this followed by the lb key. */
  routerIdPrefix: string;
  downTimerAdverts?: number;
}

export class VrrpPair {
  readonly suffix = randomBytes(3).toString('hex');
  readonly ns = {
    br: `sbtest-br-${this.suffix}`,
    lb1: `sbtest-lb1-${this.suffix}`,
    lb2: `sbtest-lb2-${this.suffix}`,
    cl: `sbtest-cl-${this.suffix}`,
  };
  readonly vip: string;
  readonly addr: Readonly<Record<LbKey | 'cl', string>>;
  readonly haproxies: Partial<Record<LbKey, HaproxyHandle>> = {};
  /** Each lb's keepalived output (the last 400 chunks). */
  readonly keepalivedLogs: Record<LbKey, string[]> = { lb1: [], lb2: [] };
  private tmp: { dir: string; remove(): Promise<void> } | undefined;
  private readonly children: ChildProcess[] = [];
  private readonly createdNs: string[] = [];

  /** `subnet`: a /24 such as `10.231.0.0/24`. */
  constructor(subnet: string) {
    const m = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(subnet);
    if (!m) throw new Error(`VrrpPair: subnet must be a.b.c.0/24, got ${subnet}`);
    const net = m[1];
    this.vip = `${net}.100`;
    this.addr = { lb1: `${net}.11`, lb2: `${net}.12`, cl: `${net}.50` };
  }

  async ip(...args: string[]): Promise<string> {
    const { stdout } = await execFileP('ip', args, { timeout: 10_000 });
    return stdout;
  }

  /** Spawns `cmd` in `ns` (its own process group, killed by cleanup); its output goes to `logTo`. */
  spawnIn(ns: string, cmd: string[], logTo?: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...cmd], {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.children.push(child);
    const keep = (b: Buffer) => {
      if (logTo) {
        logTo.push(b.toString());
        if (logTo.length > 400) logTo.shift();
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    return child;
  }

  async vipOn(ns: string): Promise<boolean> {
    const out = await this.ip('-n', ns, '-4', '-o', 'addr', 'show', 'dev', 'eth0');
    return out.includes(`inet ${this.vip}/`);
  }

  /** Both keepalived logs' tails, for assertion messages. */
  dump(): string {
    return `\n--- keepalived lb1 ---\n${this.keepalivedLogs.lb1.join('').slice(-3000)}\n--- keepalived lb2 ---\n${this.keepalivedLogs.lb2.join('').slice(-3000)}`;
  }

  /** Creates the namespaces and the bridge, then starts each lb; cleans up and rethrows on failure. */
  async start(opts: VrrpPairStart): Promise<void> {
    process.once('exit', () => this.cleanupSync());
    const tmp = await tempDir(opts.tempName);
    this.tmp = tmp;
    const { ns: NS, addr: ADDR } = this;
    try {
      for (const ns of Object.values(NS)) {
        await this.ip('netns', 'add', ns);
        this.createdNs.push(ns);
        await this.ip('-n', ns, 'link', 'set', 'lo', 'up');
      }
      await this.ip('-n', NS.br, 'link', 'add', 'br0', 'type', 'bridge');
      await this.ip('-n', NS.br, 'link', 'set', 'br0', 'up');
      for (const key of ['lb1', 'lb2', 'cl'] as const) {
        const ns = NS[key];
        const port = `p-${key}`;
        await this.ip('-n', NS.br, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
        await this.ip('-n', NS.br, 'link', 'set', port, 'master', 'br0');
        await this.ip('-n', NS.br, 'link', 'set', port, 'up');
        await this.ip('-n', ns, 'addr', 'add', `${ADDR[key]}/24`, 'dev', 'eth0');
        await this.ip('-n', ns, 'link', 'set', 'eth0', 'up');
      }

      const pem = await ensureSelfSignedCert(path.join(tmp.dir, 'certs'));
      const vrrpPassword = newVrrpPassword();
      for (const [key, role, self, peer] of [
        ['lb1', 'MASTER', ADDR.lb1, ADDR.lb2],
        ['lb2', 'BACKUP', ADDR.lb2, ADDR.lb1],
      ] as const) {
        const ns = NS[key];
        const dir = path.join(tmp.dir, key);
        await opts.beforeHaproxy?.(key, ns);
        const configPath = await writeHaproxyConfig({
          runDir: dir,
          tlsPem: pem,
          redisCheckPassword: 'unused',
          bindAddress: '0.0.0.0',
          statsBindAddress: '127.0.0.1',
          ...opts.haproxy,
        });
        // Master-worker mode: haproxy writes its pidfile (the master's pid) as in production.
        this.haproxies[key] = await startHaproxy({
          configPath,
          socket: path.join(dir, 'haproxy.sock'),
          prefix: ['ip', 'netns', 'exec', ns],
          args: ['-W'],
        });
        const pidfile = path.join(dir, 'haproxy.pid');
        await waitFor(
          `${key} haproxy pidfile`,
          async () => existsSync(pidfile) && (await readFile(pidfile, 'utf8')).trim() !== '',
        );
        const kaConf = await writeKeepalivedConfig(
          {
            role,
            interface: 'eth0',
            vip: `${this.vip}/24`,
            unicastSrcIp: self,
            unicastPeers: [peer],
            haproxyPidfile: pidfile,
            haproxyProbe: opts.haproxyProbe,
            routerId: `${opts.routerIdPrefix}${key}`,
            downTimerAdverts: opts.downTimerAdverts,
            authPass: vrrpPassword,
          },
          path.join(dir, 'keepalived.conf'),
        );
        this.spawnIn(ns, keepalivedArgs(kaConf, dir), this.keepalivedLogs[key]);
      }
    } catch (err) {
      await this.cleanup();
      throw err;
    }
  }

  /** Last resort if the worker exits before afterAll (e.g. killed on timeout): synchronous cleanup. */
  cleanupSync(): void {
    for (const c of this.children) killGroup(c);
    for (const ns of this.createdNs) {
      try {
        killPids(execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }));
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* already removed */
      }
    }
  }

  async cleanup(): Promise<void> {
    for (const h of Object.values(this.haproxies)) h?.kill('SIGKILL');
    for (const c of this.children) killGroup(c);
    // Anything still running inside our namespaces (e.g. keepalived's children) goes too.
    for (const ns of this.createdNs) killPids(await this.ip('netns', 'pids', ns).catch(() => ''));
    await sleep(200);
    for (const ns of this.createdNs) await this.ip('netns', 'del', ns).catch(() => undefined);
    this.createdNs.length = 0;
    await this.tmp?.remove();
  }

  /** This pair's namespaces still listed by `ip netns list` (none after cleanup). */
  async leftNamespaces(): Promise<string[]> {
    return (await this.ip('netns', 'list').catch(() => ''))
      .split('\n')
      .filter((l) => l.includes(this.suffix));
  }
}
