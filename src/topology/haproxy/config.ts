/**
 * Render the local haproxy.cfg from infra/haproxy/haproxy.cfg.tmpl, make the self-signed TLS
 * certificate the TLS frontend needs, and validate a rendered file with `haproxy -c -f`.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const INFRA_DIR = fileURLToPath(new URL('../../../infra/', import.meta.url));
export const HAPROXY_TEMPLATE = path.join(INFRA_DIR, 'haproxy', 'haproxy.cfg.tmpl');
export const HAPROXY_DOCKER_CONFIG = path.join(INFRA_DIR, 'haproxy', 'haproxy.docker.cfg');

export interface Endpoint {
  host: string;
  port: number;
}

export interface HaproxyConfigOptions {
  /** Directory for the runtime socket (haproxy.sock) and pidfile (haproxy.pid). */
  runDir: string;
  /** PEM file holding certificate and key for the TLS frontend (see ensureSelfSignedCert). */
  tlsPem: string;
  /** Password of the Redis ACL user the layer-7 check logs in with. */
  redisCheckPassword: string;
  /** ACL user for the Redis check. Default `haproxy-check`. */
  redisCheckUser?: string;
  /** Address the API, TLS and Redis frontends bind to. Default 127.0.0.1 (use 0.0.0.0 behind a VIP). */
  bindAddress?: string;
  /** Address of the stats page. Default: bindAddress. */
  statsBindAddress?: string;
  httpPort?: number;
  tlsPort?: number;
  statsPort?: number;
  redisPort?: number;
  /** Static API servers (optional: the registry adds servers at run time). */
  apiServers?: Endpoint[];
  /** Redis servers (or Redis Enterprise proxies) behind the Redis frontend. */
  redisServers?: Endpoint[];
  /** Health-check interval of API servers, HAProxy time syntax. Default `1s`. */
  apiCheckInter?: string;
  /** Health-check interval of Redis servers. Default `1s`. */
  redisCheckInter?: string;
  /** Read timeout of a health check once connected (`timeout check`). Default `2s`. */
  checkTimeout?: string;
  /**
   * Most client connections at once (every live-feed WebSocket is one for its life). Default: not
   * set, so HAProxy derives it from its file-descriptor limit (about half the hard limit).
   */
  maxconn?: number;
  /** Argument of the global `log` line. Default `stderr format raw local0 notice`. */
  logTarget?: string;
  /** Template file. Default infra/haproxy/haproxy.cfg.tmpl. */
  templatePath?: string;
}

export const HAPROXY_DEFAULTS = {
  httpPort: 8000,
  tlsPort: 8443,
  statsPort: 8404,
  redisPort: 12000,
  redisCheckUser: 'haproxy-check',
} as const;

const TIME_RE = /^\d+(us|ms|s|m|h|d)?$/;
const NAME_RE = /^[A-Za-z0-9_.:-]+$/;
const HOST_RE = /^[A-Za-z0-9_.:-]+$/;

function port(value: number | undefined, fallback: number, what: string): string {
  const p = value ?? fallback;
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`haproxy config: invalid ${what} ${p}`);
  return String(p);
}

function positiveInt(value: number, what: string): string {
  if (!Number.isInteger(value) || value < 1) throw new Error(`haproxy config: invalid ${what} ${value}`);
  return String(value);
}

function time(value: string | undefined, fallback: string, what: string): string {
  const t = value ?? fallback;
  if (!TIME_RE.test(t)) throw new Error(`haproxy config: invalid ${what} ${t}`);
  return t;
}

/** A value that goes into a weakly quoted ("...") HAProxy word and a Redis inline command. */
function redisWord(value: string, what: string): string {
  // Redis inline commands split on spaces and interpret quotes; keep to printable ASCII without
  // whitespace, quotes and backslash. `$` is escaped for HAProxy's environment-variable expansion.
  if (!/^[!#-&(-[\]-~]+$/.test(value)) {
    throw new Error(`haproxy config: ${what} must be printable ASCII without spaces, quotes or backslashes`);
  }
  return value.replace(/\$/g, '\\$');
}

function serverLine(prefix: string, index: number, ep: Endpoint): string {
  if (!HOST_RE.test(ep.host)) throw new Error(`haproxy config: invalid server host ${ep.host}`);
  const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
  return `    server ${prefix}${index + 1} ${host}:${port(ep.port, 0, 'server port')} check`;
}

export function renderHaproxyConfig(opts: HaproxyConfigOptions, template?: string): string {
  const tmpl = template ?? readFileSync(opts.templatePath ?? HAPROXY_TEMPLATE, 'utf8');
  const bind = opts.bindAddress ?? '127.0.0.1';
  const user = opts.redisCheckUser ?? HAPROXY_DEFAULTS.redisCheckUser;
  if (!NAME_RE.test(user)) throw new Error(`haproxy config: invalid Redis check user ${user}`);
  for (const p of [opts.runDir, opts.tlsPem]) {
    if (/[\s"'#\\$]/.test(p)) throw new Error(`haproxy config: path must not contain spaces or quotes: ${p}`);
  }
  const values: Record<string, string> = {
    LOG_TARGET: opts.logTarget ?? 'stderr format raw local0 notice',
    RUN_DIR: opts.runDir.replace(/\/+$/, ''),
    TLS_PEM: opts.tlsPem,
    MAXCONN_LINE:
      opts.maxconn === undefined
        ? '    # maxconn: not set, so HAProxy derives it from its file-descriptor limit (about half of it).'
        : `    maxconn ${positiveInt(opts.maxconn, 'maxconn')}`,
    BIND_ADDRESS: bind,
    STATS_BIND_ADDRESS: opts.statsBindAddress ?? bind,
    HTTP_PORT: port(opts.httpPort, HAPROXY_DEFAULTS.httpPort, 'httpPort'),
    TLS_PORT: port(opts.tlsPort, HAPROXY_DEFAULTS.tlsPort, 'tlsPort'),
    STATS_PORT: port(opts.statsPort, HAPROXY_DEFAULTS.statsPort, 'statsPort'),
    REDIS_PORT: port(opts.redisPort, HAPROXY_DEFAULTS.redisPort, 'redisPort'),
    API_CHECK_INTER: time(opts.apiCheckInter, '1s', 'apiCheckInter'),
    REDIS_CHECK_INTER: time(opts.redisCheckInter, '1s', 'redisCheckInter'),
    CHECK_TIMEOUT: time(opts.checkTimeout, '2s', 'checkTimeout'),
    REDIS_CHECK_USER: user,
    REDIS_CHECK_PASSWORD: redisWord(opts.redisCheckPassword, 'redisCheckPassword'),
    API_SERVERS: (opts.apiServers ?? []).map((ep, i) => serverLine('api', i, ep)).join('\n'),
    REDIS_SERVERS: (opts.redisServers ?? []).map((ep, i) => serverLine('redis', i, ep)).join('\n'),
  };
  for (const [k, v] of Object.entries(values)) {
    if (/[\r\n]/.test(v) && k !== 'API_SERVERS' && k !== 'REDIS_SERVERS') {
      throw new Error(`haproxy config: ${k} must be a single line`);
    }
  }
  const out = tmpl.replace(/\{\{([A-Z_]+)\}\}/g, (whole, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`haproxy config: template placeholder ${whole} has no value`);
    return v;
  });
  return out;
}

/** Render to `<runDir>/haproxy.cfg` (or `file`) and return the path. */
export async function writeHaproxyConfig(opts: HaproxyConfigOptions, file?: string): Promise<string> {
  await mkdir(opts.runDir, { recursive: true, mode: 0o700 });
  const target = file ?? path.join(opts.runDir, 'haproxy.cfg');
  await writeFile(target, renderHaproxyConfig(opts), { mode: 0o600 });
  return target;
}

/**
 * Create `<dir>/<name>.pem` (self-signed certificate followed by its private key, mode 600) with
 * openssl, unless it already exists. Returns the PEM path.
 */
export async function ensureSelfSignedCert(
  dir: string,
  opts: { name?: string; commonName?: string; days?: number; altNames?: string[] } = {},
): Promise<string> {
  const name = opts.name ?? 'switchboard';
  const pem = path.join(dir, `${name}.pem`);
  try {
    const existing = await readFile(pem, 'utf8');
    if (existing.includes('PRIVATE KEY') && existing.includes('CERTIFICATE')) return pem;
  } catch {
    /* create it */
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const key = path.join(dir, `${name}.key.tmp`);
  const crt = path.join(dir, `${name}.crt.tmp`);
  const cn = opts.commonName ?? 'localhost';
  const san = (opts.altNames ?? ['DNS:localhost', 'IP:127.0.0.1']).join(',');
  try {
    await execFileP(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-sha256',
        '-days',
        String(opts.days ?? 365),
        '-subj',
        `/CN=${cn}/O=Switchboard`,
        '-addext',
        `subjectAltName=${san}`,
        '-keyout',
        key,
        '-out',
        crt,
      ],
      { timeout: 30_000 },
    );
    const body = `${await readFile(crt, 'utf8')}${await readFile(key, 'utf8')}`;
    await writeFile(pem, body, { mode: 0o600 });
    await chmod(pem, 0o600);
  } finally {
    await rm(key, { force: true });
    await rm(crt, { force: true });
  }
  return pem;
}

export interface ConfigCheckResult {
  ok: boolean;
  output: string;
}

/** `haproxy -c -f <file>`: exit status 0 means the configuration is valid. */
export async function checkHaproxyConfig(file: string, env?: NodeJS.ProcessEnv): Promise<ConfigCheckResult> {
  try {
    const { stdout, stderr } = await execFileP('haproxy', ['-c', '-f', file], {
      timeout: 30_000,
      env: { ...process.env, ...env },
    });
    return { ok: true, output: `${stdout}${stderr}` };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message };
  }
}
