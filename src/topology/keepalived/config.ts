/**
 * Render keepalived.conf for one member of the HAProxy pair (MASTER 101 / BACKUP 100) from
 * infra/keepalived/keepalived.conf.tmpl, and validate it with `keepalived -t -f`. Two checks
 * lower the priority: HAProxy alive (-50) and its /ready 200 (-20), so a dead HAProxy loses the
 * VIP to any live one, and a live one with no API server up to one that has one. The VRRP
 * password has no default: the local topology makes a random one per data directory
 * (loadOrCreateVrrpPassword), a deployment brings its own.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { writePrivateFile } from '../redis-users.ts';

const execFileP = promisify(execFile);

const INFRA_DIR = fileURLToPath(new URL('../../../infra/', import.meta.url));
export const KEEPALIVED_TEMPLATE = path.join(INFRA_DIR, 'keepalived', 'keepalived.conf.tmpl');
/** The vrrp_script check shipped with the repo (root-owned path required by enable_script_security). */
export const CHECK_HAPROXY_SCRIPT = path.join(INFRA_DIR, 'keepalived', 'check_haproxy.sh');

export type VrrpRole = 'MASTER' | 'BACKUP';

export interface KeepalivedConfigOptions {
  role: VrrpRole;
  /** Interface carrying VRRP and the VIP, e.g. eth0. */
  interface: string;
  /** VIP with prefix length, e.g. 10.231.0.100/24. */
  vip: string;
  /** Default 101 for MASTER, 100 for BACKUP. */
  priority?: number;
  /** 1..255, identical on both members. Default 51. */
  virtualRouterId?: number;
  /**
   * VRRP PASS authentication, identical on both members: 1-8 characters of [A-Za-z0-9_-]
   * (keepalived uses only the first 8). Required: there is no default password.
   */
  authPass: string;
  /** This node's address for unicast VRRP; with `unicastPeers`. Omit both for multicast. */
  unicastSrcIp?: string;
  unicastPeers?: string[];
  /** HAProxy pidfile the check reads. Default /run/haproxy.pid. */
  haproxyPidfile?: string;
  /**
   * Optional probe of HAProxy: `host:port` the liveness check (chk_haproxy, weight -50) connects
   * to (e.g. the stats frontend), or `http://host:port/path` (the stats frontend's /ready): then
   * the liveness check connects to its host:port and the readiness check (chk_haproxy_ready,
   * weight -20) wants a 200 from it. Without a URL the readiness check repeats the liveness one.
   */
  haproxyProbe?: string;
  /** Check script. Default infra/keepalived/check_haproxy.sh. */
  checkScript?: string;
  routerId?: string;
  instanceName?: string;
  /**
   * Master-down timer in advert intervals (keepalived `down_timer_adverts`, 1-100). Default: not
   * set, i.e. the RFC's 3 intervals + skew. Must be the same on both members.
   */
  downTimerAdverts?: number;
  templatePath?: string;
}

const IPV4_CIDR = /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/;
const IPV4 = /^(\d{1,3}\.){3}\d{1,3}$/;
const WORD = /^[A-Za-z0-9_.:/-]+$/;
const VRRP_PASSWORD = /^[A-Za-z0-9_-]{1,8}$/;

/** A random VRRP password: 8 characters of [A-Za-z0-9_-] (48 bits, all keepalived's PASS takes). */
export function newVrrpPassword(): string {
  return randomBytes(6).toString('base64url');
}

/**
 * The VRRP password kept in `file` (0600, one line), made on first use: both members of the pair
 * and every later launch on the same data directory use the same one.
 */
export function loadOrCreateVrrpPassword(file: string): string {
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    if (VRRP_PASSWORD.test(kept)) {
      chmodSync(file, 0o600);
      return kept;
    }
  }
  const made = newVrrpPassword();
  writePrivateFile(file, `${made}\n`);
  return made;
}

function word(v: string, what: string): string {
  if (!WORD.test(v)) throw new Error(`keepalived config: invalid ${what} "${v}"`);
  return v;
}

export function renderKeepalivedConfig(opts: KeepalivedConfigOptions, template?: string): string {
  const tmpl = template ?? readFileSync(opts.templatePath ?? KEEPALIVED_TEMPLATE, 'utf8');
  const priority = opts.priority ?? (opts.role === 'MASTER' ? 101 : 100);
  const vrid = opts.virtualRouterId ?? 51;
  if (!Number.isInteger(priority) || priority < 1 || priority > 254)
    throw new Error(`keepalived: bad priority ${priority}`);
  if (!Number.isInteger(vrid) || vrid < 1 || vrid > 255)
    throw new Error(`keepalived: bad virtual_router_id ${vrid}`);
  if (!IPV4_CIDR.test(opts.vip)) throw new Error(`keepalived: VIP must be IPv4 with prefix, got ${opts.vip}`);
  const authPass = opts.authPass;
  if (typeof authPass !== 'string' || !VRRP_PASSWORD.test(authPass))
    throw new Error('keepalived: authPass (the VRRP password) is required, 1-8 [A-Za-z0-9_-]');
  const downTimer = opts.downTimerAdverts;
  if (downTimer !== undefined && (!Number.isInteger(downTimer) || downTimer < 1 || downTimer > 100)) {
    throw new Error(`keepalived: downTimerAdverts must be 1..100, got ${downTimer}`);
  }
  let unicast = '';
  if (opts.unicastPeers && opts.unicastPeers.length > 0) {
    for (const p of [opts.unicastSrcIp ?? '', ...opts.unicastPeers]) {
      if (!IPV4.test(p)) throw new Error(`keepalived: unicast addresses must be IPv4, got "${p}"`);
    }
    unicast = [
      `    unicast_src_ip ${opts.unicastSrcIp}`,
      '    unicast_peer {',
      ...opts.unicastPeers.map((p) => `        ${p}`),
      '    }',
    ].join('\n');
  }
  const script = word(opts.checkScript ?? CHECK_HAPROXY_SCRIPT, 'checkScript');
  const pidfile = word(opts.haproxyPidfile ?? '/run/haproxy.pid', 'haproxyPidfile');
  const probe = opts.haproxyProbe === undefined ? undefined : word(opts.haproxyProbe, 'haproxyProbe');
  // An http:// probe is the readiness check's; the liveness check only connects to its host:port,
  // so an HAProxy that runs with no server up still outranks one that is dead.
  const hostPort = probe?.startsWith('http://') ? probe.slice('http://'.length).split('/')[0] : probe;
  if (hostPort !== undefined && !/^[^:/]+:\d+$/.test(hostPort))
    throw new Error(
      `keepalived config: haproxyProbe must be host:port or http://host:port/path, got "${probe}"`,
    );
  const values: Record<string, string> = {
    ROUTER_ID: word(opts.routerId ?? `switchboard_${opts.role.toLowerCase()}`, 'routerId'),
    CHECK_COMMAND: [script, pidfile, ...(hostPort === undefined ? [] : [hostPort])].join(' '),
    READY_COMMAND: [script, pidfile, ...(probe === undefined ? [] : [probe])].join(' '),
    INSTANCE: word(opts.instanceName ?? 'VI_SWITCHBOARD', 'instanceName'),
    STATE: opts.role,
    INTERFACE: word(opts.interface, 'interface'),
    VIRTUAL_ROUTER_ID: String(vrid),
    PRIORITY: String(priority),
    AUTH_PASS: authPass,
    UNICAST: unicast,
    VIP: opts.vip,
    DOWN_TIMER_ADVERTS: downTimer === undefined ? '' : `\n    down_timer_adverts ${downTimer}`,
  };
  return tmpl.replace(/\{\{([A-Z_]+)\}\}/g, (whole, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`keepalived config: placeholder ${whole} has no value`);
    return v;
  });
}

export async function writeKeepalivedConfig(opts: KeepalivedConfigOptions, file: string): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, renderKeepalivedConfig(opts), { mode: 0o644 });
  return file;
}

/** `keepalived -t -f <file>` (config test, keepalived >= 2.1). */
export async function checkKeepalivedConfig(file: string): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await execFileP('keepalived', ['-t', '-f', file, '-l', '-n'], {
      timeout: 30_000,
    });
    return { ok: true, output: `${stdout}${stderr}` };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message };
  }
}

/**
 * keepalived's command line for a VRRP-only instance kept in the foreground (the caller owns the
 * process), logging to its console, with its pid files in `runDir`.
 */
export function keepalivedArgs(configFile: string, runDir: string): string[] {
  return [
    'keepalived',
    '--dont-fork',
    '--log-console',
    '--log-detail',
    '--vrrp',
    '--no-syslog',
    '-f',
    configFile,
    '-p',
    path.join(runDir, 'keepalived.pid'),
    '-r',
    path.join(runDir, 'vrrp.pid'),
    '-c',
    path.join(runDir, 'checkers.pid'),
  ];
}
