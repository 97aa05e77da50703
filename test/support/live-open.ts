/**
 * A live feed's upgrade tried once with the `ws` package: `{open: true}` (the socket then closed),
 * or the refusal's status and problem body as answered before the upgrade.
 */
import WebSocket from 'ws';

export interface LiveRefusal {
  readonly type: string;
  readonly detail: string;
  readonly lastPosition?: string | null;
  readonly errors?: { path: string; message: string }[];
}

export type LiveOpen = { open: true } | { status: number; body: LiveRefusal };

/** `base`: the instance's http(s) URL; `path`: from `/v1/...`, with its query. */
export function tryLiveOpen(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<LiveOpen> {
  const socket = new WebSocket(`${base.replace(/^http/, 'ws')}${path}`, { headers });
  return new Promise((resolve, reject) => {
    socket.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(body) as LiveRefusal }));
    });
    socket.on('error', reject);
    socket.on('open', () => {
      socket.close();
      resolve({ open: true });
    });
  });
}

/**
 * A live feed's upgrade kept open: `{socket}`, or the refusal's status, headers and body text as
 * answered before the upgrade (`base`: the instance's http(s) URL; `path`: from `/v1/...`).
 */
export function openLiveSocket(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ socket: WebSocket } | { status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${base.replace(/^http/, 'ws')}${path}`, { headers });
    socket.on('open', () => resolve({ socket }));
    socket.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, body }),
      );
    });
    socket.on('error', reject);
  });
}
