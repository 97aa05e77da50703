/**
 * Spawn a single local redis-server on a free loopback port.
 *
 * Used by test fixtures and by the local launcher. The process is started in its own
 * process group (detached) so `stop()` / `kill()` reach it and nothing else; handles that
 * are still running when the Node process exits are killed by an exit hook.
 *
 *   const redis = await startRedisServer({ appendonly: true });
 *   // redis.url === 'redis://127.0.0.1:<port>'
 *   await redis.stop();
 *
 * With `users`, the server reads its ACL users from `<dataDir>/users.acl` (hashed passwords,
 * 0600); with `adminPassword` the `default` user needs it. `startPrivateRedis` is the one
 * `npm start` runs: the Switchboard user and an admin password kept under the data directory.
 * With `tls`, the server listens for TLS only (`--port 0 --tls-port`) and `url` is rediss://.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { endingWithThisProcess, hasExited, killOnExit, signalGroup, stopChild } from './child-processes.ts';
import { logFile } from './log-file.ts';
import {
  type AclUser,
  aclFileText,
  loadOrCreateCredentials,
  loginUrl,
  type RedisCredentials,
  switchboardUsers,
  writePrivateFile,
} from './redis-users.ts';

export interface RedisServerOptions {
  /** Working directory (AOF/RDB files). Created if missing. Default: a fresh temp dir, removed by stop(). */
  dataDir?: string;
  /** `appendonly yes` with `appendfsync everysec`. Default false. */
  appendonly?: boolean;
  /**
   * Extra command-line config, e.g. `['--requirepass', 's3cret']` or
   * `['--user', 'haproxy-check', 'on', '>pw', '+ping', '+auth', '+quit']`.
   * Each `--name` starts a new config line; following words are its arguments.
   */
  args?: string[];
  /** redis-server binary. Default `redis-server` from PATH. */
  binary?: string;
  /** Environment variables on top of this process's (e.g. a locale: LC_ALL, LOCPATH). */
  env?: Readonly<Record<string, string>>;
  /** Milliseconds to wait for the server to answer. Default 10 000. */
  startTimeoutMs?: number;
  /** ACL users, written to `<dataDir>/users.acl` (SHA-256 hashes, 0600) and loaded with --aclfile. */
  users?: readonly AclUser[];
  /** Password the `default` (admin) user needs; unset: `default` has none. Implies the ACL file. */
  adminPassword?: string;
  /**
   * Config lines too secret for the command line (e.g. `masterauth`): written to
   * `<dataDir>/secrets.conf` (0600), which the server reads as its config file.
   */
  secretConfig?: Readonly<Record<string, string>>;
  /** Listen for TLS only, with these PEM files (the server's certificate and key, the CA of clients). */
  tls?: RedisServerTls;
  /** This port rather than a free one (a node restarted where it was). */
  port?: number;
  /**
   * Append the server's log (its stdout and stderr) to this file, capped by size (log-file.ts),
   * after a line with the exact command line it was started with (`[launcher] command line: ...`),
   * so it can be started again by hand the same way.
   */
  logFile?: string;
  /**
   * What that logged command line starts with, when this process runs in a network namespace,
   * e.g. `['ip', 'netns', 'exec', 'sb-x-app']` (the server inherits the namespace; a command run by
   * hand from the host must enter it).
   */
  shownPrefix?: readonly string[];
}

/** `words` as one line a POSIX shell runs as the same argument vector. */
export function shellLine(words: readonly string[]): string {
  return words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export interface RedisServerTls {
  certFile: string;
  keyFile: string;
  caFile: string;
  /** Require client certificates signed by the CA (`tls-auth-clients yes`). Default false. */
  authClients?: boolean;
}

export interface RedisServerHandle {
  host: string;
  port: number;
  url: string;
  process: ChildProcess;
  /** SIGTERM (clean shutdown, AOF flushed), SIGKILL after 5 s; resolves when the process has exited. */
  stop(): Promise<void>;
  /** Send a signal to the server's process group (e.g. 'SIGKILL' to simulate a crash, 'SIGSTOP' to freeze it). */
  kill(signal?: NodeJS.Signals): void;
}

const HOST = '127.0.0.1';
/**
 * A free TCP port for a server to bind a moment later. Picked at random below the kernel's
 * ephemeral range (32768-60999 by default) so outgoing connections cannot take it in between, and
 * below 20000 so a Redis Cluster node's bus port (port + 10000) stays below that range too. Each
 * pick is reserved for a minute in a shared folder, so concurrent processes never pick the same.
 */
export async function freePort(host = HOST): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * 10_000);
    if (!reserve(port)) continue;
    if ((await canBind(host, port)) && (await canBind(host, port + 10_000))) return port;
  }
  return bindAny(host);
}

const reservations = path.join(os.tmpdir(), 'switchboard-ports');

function reserve(port: number): boolean {
  const file = path.join(reservations, String(port));
  try {
    mkdirSync(reservations, { recursive: true });
    closeSync(openSync(file, 'wx'));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return true;
    try {
      // A reservation older than a minute has been used or abandoned: take it over.
      if (Date.now() - statSync(file).mtimeMs < 60_000) return false;
      utimesSync(file, new Date(), new Date());
      return true;
    } catch {
      return false;
    }
  }
}

/** Whether `host:port` can be bound now (nothing listens there). */
export function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function bindAny(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not determine a free port'));
        return;
      }
      const { port } = addr;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * How host:port answers a PING: 'up' with any RESP reply (+PONG, -NOAUTH, ...), 'loading' while it
 * loads its dataset (-LOADING), 'down' with none. With `password`, the `default` user's, it logs in
 * first: a server that requires a login answers -NOAUTH before it checks whether it is loading, so
 * without one a server still loading its AOF looked up, and its first commands got -LOADING.
 */
function pingOnce(
  host: string,
  port: number,
  timeoutMs: number,
  secure?: RedisServerTls,
  password?: string,
): Promise<'up' | 'loading' | 'down'> {
  return new Promise((resolve) => {
    // Over TLS the server's own certificate serves as the client's (it may require one).
    const sock = secure
      ? tls.connect({
          host,
          port,
          rejectUnauthorized: false,
          cert: readFileSync(secure.certFile),
          key: readFileSync(secure.keyFile),
        })
      : net.createConnection({ host, port });
    const connected = secure ? 'secureConnect' : 'connect';
    let done = false;
    const finish = (state: 'up' | 'loading' | 'down') => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(state);
    };
    const timer = setTimeout(() => finish('down'), timeoutMs);
    const bulk = (word: string) => `$${Buffer.byteLength(word)}\r\n${word}\r\n`;
    // AUTH is answered while loading; PING is not (-LOADING). Each reply is one line here.
    const login = password === undefined ? '' : `*3\r\n${bulk('AUTH')}${bulk('default')}${bulk(password)}`;
    const replies = password === undefined ? 1 : 2;
    sock.once(connected, () => sock.write(`${login}PING\r\n`));
    let text = '';
    sock.on('data', (buf) => {
      text += buf.toString('latin1');
      const lines = text.split('\r\n').slice(0, -1);
      if (lines.length < replies) return;
      // "-LOADING" means the dataset is still being loaded: not ready yet.
      if (lines.some((l) => l.startsWith('-LOADING'))) finish('loading');
      else finish(lines.every((l) => l.startsWith('+') || l.startsWith('-')) ? 'up' : 'down');
    });
    sock.once('error', () => finish('down'));
    sock.once('close', () => finish('down'));
  });
}

/** The umask 077 for what this process spawns next, until `restore()` (none in a worker thread). */
function ownerOnlyUmask(): { restore(): void } {
  try {
    const was = process.umask(0o077);
    return { restore: () => process.umask(was) };
  } catch {
    return { restore: () => {} };
  }
}

async function startOnce(
  opts: RedisServerOptions,
  dataDir: string,
): Promise<RedisServerHandle | 'port-in-use'> {
  const port = opts.port ?? (await freePort());
  const secure = opts.tls;
  const config: string[] = [];
  if (opts.secretConfig && Object.keys(opts.secretConfig).length > 0) {
    const file = path.join(dataDir, 'secrets.conf');
    const lines = Object.entries(opts.secretConfig).map(([k, v]) => `${k} "${v}"`);
    writePrivateFile(file, `${lines.join('\n')}\n`);
    config.push(file);
  }
  if (opts.users !== undefined || opts.adminPassword !== undefined) {
    const file = path.join(dataDir, 'users.acl');
    writePrivateFile(file, aclFileText(opts.users ?? [], opts.adminPassword));
    config.push('--aclfile', file);
  }
  const listen = secure
    ? [
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--tls-cert-file',
        secure.certFile,
        '--tls-key-file',
        secure.keyFile,
        '--tls-ca-cert-file',
        secure.caFile,
        '--tls-auth-clients',
        secure.authClients ? 'yes' : 'no',
      ]
    : ['--port', String(port)];
  const args = [
    ...config,
    ...listen,
    '--bind',
    HOST,
    '--dir',
    dataDir,
    '--daemonize',
    'no',
    '--save',
    '',
    '--appendonly',
    opts.appendonly ? 'yes' : 'no',
    '--appendfsync',
    'everysec',
    '--logfile',
    '',
    '--loglevel',
    'notice',
    ...(opts.args ?? []),
  ];
  const binary = opts.binary ?? 'redis-server';
  if (opts.logFile)
    logFile(opts.logFile).note(`command line: ${shellLine([...(opts.shownPrefix ?? []), binary, ...args])}`);
  const [cmd, ...rest] = endingWithThisProcess([binary, ...args]);
  // Owner-only, whatever this process's umask: the server's folders and files (appendonlydir, the
  // AOF, an RDB) hold every document in clear, also in a data directory readable by others.
  const umask = ownerOnlyUmask();
  let child: ChildProcess;
  try {
    child = spawn(cmd!, rest, {
      cwd: dataDir,
      ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } finally {
    umask.restore();
  }
  killOnExit(child);
  let output = '';
  const collect = (b: Buffer) => {
    if (output.length < 16_384) output += b.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  if (opts.logFile) {
    const log = logFile(opts.logFile);
    log.follow(child.stdout);
    log.follow(child.stderr);
  }
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  for (;;) {
    const err = await Promise.race([spawnError, new Promise<null>((r) => setTimeout(() => r(null), 25))]);
    if (err) throw new Error(`cannot spawn redis-server: ${err.message}`);
    if (exited) {
      if (/Address already in use/i.test(output)) return 'port-in-use';
      throw new Error(`redis-server exited during start (port ${port}):\n${output}`);
    }
    const state = await pingOnce(HOST, port, 500, secure, opts.adminPassword);
    if (state === 'up') break;
    // A server loading a large AOF answers, and may take longer than the start timeout to load:
    // the timeout is for one that does not answer. One that fails to load exits (above).
    if (state === 'down' && Date.now() > deadline) {
      signalGroup(child, 'SIGKILL');
      throw new Error(`redis-server on port ${port} did not answer within the start timeout:\n${output}`);
    }
  }
  // Keep draining the pipes so the server never blocks on a full pipe; drop the text.
  child.stdout?.off('data', collect);
  child.stderr?.off('data', collect);
  child.stdout?.resume();
  child.stderr?.resume();

  const handle: RedisServerHandle = {
    host: HOST,
    port,
    url: `${secure ? 'rediss' : 'redis'}://${HOST}:${port}`,
    process: child,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      signalGroup(child, signal);
    },
    async stop() {
      if (hasExited(child)) return;
      signalGroup(child, 'SIGCONT'); // in case a test froze it with SIGSTOP
      await stopChild(child, { graceMs: 5_000 });
    },
  };
  return handle;
}

export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServerHandle> {
  const ownDir = opts.dataDir === undefined;
  // Absolute: the server runs with the data directory as its working directory.
  const dataDir = path.resolve(opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'sb-redis-'))));
  // Owner-only: the AOF and RDB Redis writes here hold every document in clear.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // An appendonlydir an earlier server made readable by others (the umask's) is owner-only again.
  try {
    chmodSync(path.join(dataDir, 'appendonlydir'), 0o700);
  } catch {
    /* none yet */
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    const result = await startOnce(opts, dataDir);
    if (result === 'port-in-use') {
      if (opts.port !== undefined) throw new Error(`redis-server: port ${opts.port} is in use`);
      continue; // lost the race for the free port: pick another one
    }
    if (!ownDir) return result;
    const stopServer = result.stop;
    return {
      ...result,
      async stop() {
        await stopServer();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  }
  throw new Error('redis-server: could not bind a free loopback port after 5 attempts');
}

/** A private redis-server and how Switchboard logs in to it. */
export interface PrivateRedis {
  readonly server: RedisServerHandle;
  readonly credentials: RedisCredentials;
  /** `redis://switchboard:<password>@127.0.0.1:<port>`: the least-privilege user. */
  readonly url: string;
}

/** Where a private redis-server keeps its passwords (owner-only), under its data directory. */
export function credentialsFile(dataDir: string): string {
  return path.join(dataDir, 'redis-credentials.json');
}

/**
 * Where a running private redis-server says where it listens (`{host, port, pid}`, written when it
 * starts, removed when it stops), so the command-line tools (`npm run audit`, `rebuild`, `keys`)
 * find the Redis of `npm start` with nothing configured.
 */
export function privateRedisFile(dataDir: string): string {
  return path.join(dataDir, 'private-redis.json');
}

/** The login URL of the private redis-server running for `dataDir`, if one says it runs. */
export function runningPrivateRedis(dataDir: string): string | undefined {
  try {
    const at = JSON.parse(readFileSync(privateRedisFile(dataDir), 'utf8')) as {
      host?: string;
      port?: number;
      pid?: number;
    };
    const saved = JSON.parse(readFileSync(credentialsFile(dataDir), 'utf8')) as Partial<RedisCredentials>;
    if (typeof at.host !== 'string' || typeof at.port !== 'number' || !saved.app?.password) return undefined;
    // Left behind by a process that was killed: nothing runs there (this throws).
    if (typeof at.pid === 'number') process.kill(at.pid, 0);
    return loginUrl(saved.app, at.host, at.port);
  } catch {
    return undefined;
  }
}

/**
 * The redis-server `npm start` runs when no Redis is configured: AOF under `dataDir`, the
 * Switchboard ACL user and an admin password made on first start and kept in
 * `<dataDir>/redis-credentials.json` (0600), the same on every later start.
 */
export async function startPrivateRedis(
  dataDir: string,
  opts: RedisServerOptions = {},
): Promise<PrivateRedis> {
  // DATA_DIR holds the AOF, the archive, the passwords and the admin key: owner-only when made here.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const credentials = loadOrCreateCredentials(credentialsFile(path.resolve(dataDir)));
  const started = await startRedisServer({
    appendonly: true,
    ...opts,
    dataDir,
    users: switchboardUsers(credentials),
    adminPassword: credentials.admin.password,
  });
  const where = privateRedisFile(path.resolve(dataDir));
  writeFileSync(where, `${JSON.stringify({ host: started.host, port: started.port, pid: process.pid })}\n`, {
    mode: 0o600,
  });
  const server: RedisServerHandle = {
    ...started,
    async stop() {
      rmSync(where, { force: true });
      await started.stop();
    },
  };
  return { server, credentials, url: loginUrl(credentials.app, server.host, server.port) };
}
