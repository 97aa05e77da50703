/**
 * The launcher's own status (`npm run topology`): every process it supervises (Redis nodes,
 * HAProxy instances, keepalived, each Switchboard process) with its pid, state, restart count and
 * last restart. Served as JSON by `GET /status` on 127.0.0.1:<--status-port> (default 8099, or the
 * next free port up to 8119) and written to `<data dir>/status.json` on every change, so it can
 * be read also where the port cannot be reached, and after the launcher stopped (every component
 * then `stopped`).
 *
 *   { "launcher": { "pid": 4242, "mode": "single", "startedAt": "...", "dataDir": "..." },
 *     "updatedAt": "...",
 *     "components": [ { "name": "redis-server 127.0.0.1:15207", "kind": "redis", "pid": 4250,
 *       "state": "running", "restarts": 1, "lastRestartAt": "...", "lastExit": "SIGKILL",
 *       "lastExitAt": "..." }, ... ] }
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PROBLEM_TYPE, type Problem, problem } from '../adapters/http/problem.ts';
import { type ComponentKind, type ComponentStatus, onSupervisorChange, supervisors } from './supervisor.ts';

export interface LauncherStatus {
  readonly launcher: {
    /** The launcher's pid (the process serving /status). */
    readonly pid: number;
    /** With --vrrp: the launcher's part inside the app namespace, which supervises everything. */
    readonly appNamespacePid?: number;
    readonly mode: 'single' | 'vrrp';
    readonly startedAt: string;
    readonly dataDir: string;
  };
  readonly updatedAt: string;
  readonly components: readonly ComponentStatus[];
}

/** The default port of `/status`; taken, the next ones up to DEFAULT_STATUS_PORT + 20 are tried. */
export const DEFAULT_STATUS_PORT = 8099;

const KIND_ORDER: readonly ComponentKind[] = ['switchboard', 'redis', 'haproxy', 'keepalived'];

/** Every supervisor of this process: Switchboard processes first, then Redis, HAProxy, keepalived. */
export function componentStatuses(): ComponentStatus[] {
  return supervisors
    .map((s) => s.status())
    .sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind));
}

export function statusFile(dataDir: string): string {
  return path.join(dataDir, 'status.json');
}

/** Writes `status` to `<dataDir>/status.json` whole (a temporary file renamed over it). */
export function writeStatusFile(dataDir: string, status: LauncherStatus): void {
  const file = statusFile(dataDir);
  try {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(`${file}.tmp`, `${JSON.stringify(status, null, 2)}\n`);
    renameSync(`${file}.tmp`, file);
  } catch {
    /* a full disk must not stop the launcher */
  }
}

/**
 * Keeps `<dataDir>/status.json` equal to this process's supervisors, and calls `publish` (e.g.
 * to send it to the launcher in the root namespace) on every change. Returns the current status.
 */
export function trackStatus(
  launcher: LauncherStatus['launcher'],
  publish?: (status: LauncherStatus) => void,
): () => LauncherStatus {
  const current = (): LauncherStatus => ({
    launcher,
    updatedAt: new Date().toISOString(),
    components: componentStatuses(),
  });
  const write = () => {
    const status = current();
    writeStatusFile(launcher.dataDir, status);
    publish?.(status);
  };
  onSupervisorChange(write);
  write();
  return current;
}

/**
 * `GET /status` (and `/`) on 127.0.0.1:`port`, answering `status()` as JSON. `port` undefined:
 * DEFAULT_STATUS_PORT or the next free one up to 20 above, passing over `avoid` (the ports the
 * launcher was given for what it starts after: free now, and not to be taken from it); 0: any free
 * port. Resolves with the server and the port it listens on.
 */
export async function serveStatus(
  status: () => LauncherStatus | undefined,
  port: number | undefined,
  avoid: readonly number[] = [],
): Promise<{ server: http.Server; port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    // Errors as the API answers them (problem+json, docs/API.md "Problems"); HEAD as GET, without
    // the body (node leaves it out).
    const refuse = (status: number, p: Problem, headers: Record<string, string> = {}) =>
      res
        .writeHead(status, { 'content-type': PROBLEM_TYPE, 'cache-control': 'no-store', ...headers })
        .end(`${JSON.stringify(p)}\n`);
    if ((req.method !== 'GET' && req.method !== 'HEAD') || (url !== '/status' && url !== '/')) {
      refuse(
        404,
        problem(
          404,
          'no-route',
          'No such route',
          `${req.method} ${url}: the launcher serves GET /status only (its components as JSON)`,
        ),
      );
      return;
    }
    const s = status();
    if (!s) {
      refuse(
        503,
        problem(
          503,
          'starting',
          'Starting',
          'the launcher has not started its processes yet; ask again in a second',
        ),
        { 'retry-after': '1' },
      );
      return;
    }
    res
      .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      .end(`${JSON.stringify(s, null, 2)}\n`);
  });
  const listen = (p: number) =>
    new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen({ host: '127.0.0.1', port: p, exclusive: true }, () => {
        server.off('error', onError);
        resolve();
      });
    });
  const candidates =
    port === undefined
      ? Array.from({ length: 21 }, (_, i) => DEFAULT_STATUS_PORT + i).filter((p) => !avoid.includes(p))
      : [port];
  let lastError: Error | undefined;
  for (const p of candidates) {
    try {
      await listen(p);
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err as Error;
    }
  }
  if (lastError)
    throw new Error(
      `cannot listen on 127.0.0.1:${candidates.length > 1 ? `${candidates[0]}-${candidates.at(-1)}` : candidates[0]} (--status-port): ${lastError.message}`,
    );
  server.unref();
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
