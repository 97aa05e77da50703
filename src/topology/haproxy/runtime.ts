/**
 * Tiny client for the HAProxy runtime API (the `stats socket ... level admin` unix socket).
 *
 * Each command opens a connection, writes one line and reads the reply until HAProxy closes the
 * connection (non-interactive mode). Several commands may be joined with `;` in one line.
 *
 *   const rt = haproxyRuntime('/run/switchboard/haproxy.sock');
 *   await rt.addServer('api', 'sb_127.0.0.1_3001', '127.0.0.1', 3001);
 *   await rt.serverState('api', 'sb_127.0.0.1_3001'); // { status: 'UP', ... }
 */
import net from 'node:net';

export interface ServerInfo {
  backend: string;
  name: string;
  /** Address without port ('' when unknown). */
  host: string;
  port: number;
  /**
   * HAProxy status string: UP, DOWN, MAINT, DRAIN, NOLB, 'UP 1/2' (going down), 'DOWN 1/2' (going
   * up), 'MAINT (via ...)', 'no check' (no health check).
   */
  status: string;
  /** Last check status (L4OK, L7OK, L4CON, L7RSP, L7STS, L4TOUT, ...), '' without checks. */
  checkStatus: string;
  /** Seconds since the last UP<->DOWN transition. */
  lastChangeSec: number;
  /** Current sessions on the server. */
  sessions: number;
  /** Total sessions the server has handled. */
  totalSessions: number;
}

export interface AddServerOptions {
  /** Health-check the server (uses the backend's check rules). Default true. */
  check?: boolean;
  /** Check interval (HAProxy time syntax). Default `1s`. */
  inter?: string;
  fall?: number;
  rise?: number;
  weight?: number;
  /** Further `server` keywords supported by `add server` (see management.txt). */
  extra?: string[];
  /** Leave the server in maintenance instead of enabling it. Default false. */
  disabled?: boolean;
}

export interface RemoveServerOptions {
  /** How long to keep retrying `del server` while connections drain. Default 5000 ms. */
  timeoutMs?: number;
  /**
   * How long the requests in progress on the server (in maintenance, it takes no new ones) are
   * given to finish before its sessions are cut. Default 2000 ms.
   */
  drainMs?: number;
}

export interface HaproxyRuntime {
  readonly socketPath: string;
  /** Send one command line, return HAProxy's reply text. */
  command(cmd: string): Promise<string>;
  addServer(
    backend: string,
    name: string,
    host: string,
    port: number,
    opts?: AddServerOptions,
  ): Promise<void>;
  /**
   * Maintenance mode, the requests in progress given `drainMs` to finish, its sessions (those
   * left: a WebSocket tunnel, a request still running) cut, then `del server` (retried until
   * connections are gone).
   */
  removeServer(backend: string, name: string, opts?: RemoveServerOptions): Promise<void>;
  listServers(backend: string): Promise<ServerInfo[]>;
  serverState(backend: string, name: string): Promise<ServerInfo | undefined>;
  /** `show stat` parsed as CSV rows (header names as keys). */
  showStat(): Promise<Record<string, string>[]>;
}

export class HaproxyRuntimeError extends Error {
  constructor(
    readonly cmd: string,
    readonly reply: string,
  ) {
    super(`haproxy runtime: "${cmd}" failed: ${reply.trim() || '(empty reply)'}`);
    this.name = 'HaproxyRuntimeError';
  }
}

const NAME_RE = /^[A-Za-z0-9_.:-]+$/;
const HOST_RE = /^[A-Za-z0-9_.:-]+$/;

function checkName(what: string, v: string): void {
  if (!NAME_RE.test(v)) throw new Error(`haproxy runtime: invalid ${what} "${v}"`);
}

/** Send `cmd` on the unix socket and resolve with everything HAProxy writes back. */
export function runtimeCommand(socketPath: string, cmd: string, timeoutMs = 5000): Promise<string> {
  if (/[\r\n]/.test(cmd)) return Promise.reject(new Error('haproxy runtime: command must be one line'));
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`haproxy runtime: "${cmd}" timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('connect', () => sock.end(`${cmd}\n`));
    sock.on('data', (b) => chunks.push(b));
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('close', (hadError) => {
      clearTimeout(timer);
      if (!hadError) resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

/** Parse the CSV of `show stat` ("# pxname,svname,..." header). */
export function parseStatCsv(text: string): Record<string, string>[] {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const header = lines.shift();
  if (header === undefined || !header.startsWith('# ')) return [];
  const cols = header.slice(2).split(',');
  return lines.map((line) => {
    const cells = line.split(',');
    const row: Record<string, string> = {};
    cols.forEach((c, i) => {
      if (c) row[c] = cells[i] ?? '';
    });
    return row;
  });
}

function splitAddr(addr: string): { host: string; port: number } {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(addr);
  if (!m) return { host: addr, port: 0 };
  return { host: m[1] ?? '', port: Number(m[2]) };
}

function toServerInfo(row: Record<string, string>): ServerInfo {
  const { host, port } = splitAddr(row.addr ?? '');
  return {
    backend: row.pxname ?? '',
    name: row.svname ?? '',
    host,
    port,
    status: row.status ?? '',
    checkStatus: (row.check_status ?? '').replace(/^\* ?/, ''),
    lastChangeSec: Number(row.lastchg ?? 0) || 0,
    sessions: Number(row.scur ?? 0) || 0,
    totalSessions: Number(row.stot ?? 0) || 0,
  };
}

// Replies HAProxy 2.6 gives on success to the commands below.
const OK_ADD = /New server registered/i;
const OK_DEL = /Server deleted/i;

export function haproxyRuntime(socketPath: string, opts: { timeoutMs?: number } = {}): HaproxyRuntime {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const command = (cmd: string) => runtimeCommand(socketPath, cmd, timeoutMs);
  /** Commands that answer with an empty reply on success. */
  const quiet = async (cmd: string) => {
    const reply = await command(cmd);
    if (reply.trim() !== '') throw new HaproxyRuntimeError(cmd, reply);
  };

  const showStat = async () => {
    const text = await command('show stat');
    return parseStatCsv(text);
  };

  const listServers = async (backend: string) => {
    checkName('backend', backend);
    const rows = await showStat();
    // type 2 = server
    return rows.filter((r) => r.pxname === backend && r.type === '2').map(toServerInfo);
  };

  return {
    socketPath,
    command,
    showStat,
    listServers,

    async serverState(backend, name) {
      checkName('server', name);
      return (await listServers(backend)).find((s) => s.name === name);
    },

    async addServer(backend, name, host, port, o = {}) {
      checkName('backend', backend);
      checkName('server', name);
      if (!HOST_RE.test(host)) throw new Error(`haproxy runtime: invalid host "${host}"`);
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new Error(`haproxy runtime: invalid port ${port}`);
      const addr = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      const check = o.check ?? true;
      const words = [`add server ${backend}/${name} ${addr}`];
      if (check) words.push(`check inter ${o.inter ?? '1s'} fall ${o.fall ?? 2} rise ${o.rise ?? 2}`);
      if (o.weight !== undefined) words.push(`weight ${o.weight}`);
      words.push(...(o.extra ?? []));
      const cmd = words.join(' ');
      const reply = await command(cmd);
      if (!OK_ADD.test(reply)) throw new HaproxyRuntimeError(cmd, reply);
      // A dynamic server starts in maintenance with its health check disabled.
      if (check) await quiet(`enable health ${backend}/${name}`);
      if (!o.disabled) await quiet(`enable server ${backend}/${name}`);
    },

    async removeServer(backend, name, o = {}) {
      checkName('backend', backend);
      checkName('server', name);
      const id = `${backend}/${name}`;
      await quiet(`set server ${id} state maint`);
      // In maintenance the server gets no new request; those it is serving finish first (an
      // instance that leaves gracefully answers them), so no client sees its request cut.
      const drainUntil = Date.now() + (o.drainMs ?? 2000);
      while (Date.now() < drainUntil) {
        const state = await listServers(backend).then(
          (list) => list.find((x) => x.name === name),
          () => undefined,
        );
        if (!state || state.sessions === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await quiet(`shutdown sessions server ${id}`);
      // `del server` refuses while the server still has active or idle connections or a queue.
      const deadline = Date.now() + (o.timeoutMs ?? 5000);
      for (;;) {
        const cmd = `del server ${id}`;
        const reply = await command(cmd);
        if (OK_DEL.test(reply)) return;
        if (Date.now() > deadline) throw new HaproxyRuntimeError(cmd, reply);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}
