/**
 * Five edges of the client, each against a fake fetch or a raw server (no Switchboard, no Redis):
 *
 * - failover over a hole: a base URL that answered a 503 `archive-unreadable` stopped the tries as
 *   soon as it came round again, and the call answered whatever the try before got: `url: A,
 *   failover: [B]`, A a hole and B unreachable, was a `network` failure with no `hole`, after two
 *   tries. Now the holed base URL is passed over (B is tried again), and when the tries run out (or
 *   every base URL has answered a hole) the answer is the 503 with its `hole`.
 * - the live feed's ticket was taken with `request()` (any 2xx), not as `createWsTicket()` takes
 *   one: a 2xx that is no ticket (an HTML page, `{}`, JSON null) opened the upgrade with
 *   `?ticket=undefined`, or threw a TypeError. Now it is a SwitchboardError naming the answer, and
 *   no socket is opened (`createWsTicket()` answers `{}` the same way).
 * - the heartbeat watchdog was armed when the socket was made, so a handshake slower than twice
 *   `heartbeatMs` was dropped as "nothing received ... the path is taken for dead", though the
 *   upgrade's limit is `timeoutMs`. Now the watchdog starts once the socket is open.
 * - a refused upgrade's SwitchboardError had no `retryAfterMs` (0) though its `Retry-After` was
 *   read: a `429 too-many-websockets` with `Retry-After: 5` now carries 5000.
 * - an Idempotency-Key made any write repeatable: a bare `request('POST', '.../keys', {body,
 *   idempotencyKey})` was sent again after a lost answer, which could make two keys (the server
 *   ignores the key there). Now only the command routes are: `POST /keys`, `DELETE /keys/{id}` and
 *   `POST /ws-tickets` are tried again after a 429 only, key or not.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { SwitchboardClient, SwitchboardError } from 'switchboard/client';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';

const A = 'http://a.invalid';
const B = 'http://b.invalid';
const WS = 'edges-8';

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json', ...headers },
  });

const HOLE = {
  type: '/problems/archive-unreadable',
  title: 'Archive unreadable',
  status: 503,
  detail: 'a segment of the archive cannot be read',
  lostAfter: '100-0',
  resumeAt: '200-0',
  resumeAfter: '199-0',
};

/** A fetch answering by base URL; every call recorded as `<base> <method> <path>`. */
function fakeFetch(answer: (base: string, method: string) => Response | 'network') {
  const calls: string[] = [];
  const f = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const base = `${url.protocol}//${url.host}`;
    const method = init?.method ?? 'GET';
    calls.push(`${base} ${method} ${url.pathname}`);
    const a = answer(base, method);
    if (a === 'network') throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    return a;
  }) as typeof fetch;
  return { f, calls };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

/** A raw HTTP server on loopback whose upgrades `onUpgrade` answers; its base URL. */
async function upgradeServer(
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
): Promise<string> {
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', onUpgrade);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('failover over a hole of the archive', () => {
  it('passes over the holed base URL, and answers the 503 with its hole when the tries run out', async () => {
    const { f, calls } = fakeFetch((base) => (base === A ? json(503, HOLE) : 'network'));
    const c = new SwitchboardClient({
      url: A,
      failover: [B],
      workspace: WS,
      retries: 4,
      backoffMs: 1,
      fetch: f,
    });
    const err = await c.listEvents({ after: '50-0' }).then(
      () => new Error('answered'),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(SwitchboardError);
    const e = err as SwitchboardError;
    expect({ status: e.status, type: e.type, hole: e.hole }).toEqual({
      status: 503,
      type: '/problems/archive-unreadable',
      hole: { lostAfter: '100-0', resumeAt: '200-0', resumeAfter: '199-0' },
    });
    // A once (its hole), then B for every try left: B may come back and read another archive.
    expect(calls.map((c) => c.split(' ')[0])).toEqual([A, B, B, B, B]);
    expect(e.attempts).toBe(5);
  });

  it('answers the hole, not a later 502, when B fails otherwise; stops once every base URL is holed', async () => {
    const bad = fakeFetch((base) => (base === A ? json(503, HOLE) : json(502, { oops: true })));
    const c = new SwitchboardClient({
      url: A,
      failover: [B],
      workspace: WS,
      retries: 2,
      backoffMs: 1,
      fetch: bad.f,
    });
    const err = (await c.listEvents().catch((e: unknown) => e)) as SwitchboardError;
    expect(err.status).toBe(503);
    expect(err.hole?.resumeAfter).toBe('199-0');
    expect(bad.calls.map((c) => c.split(' ')[0])).toEqual([A, B, B]);

    const both = fakeFetch(() => json(503, HOLE));
    const d = new SwitchboardClient({ url: A, failover: [B], workspace: WS, backoffMs: 1, fetch: both.f });
    const holed = (await d.listEvents().catch((e: unknown) => e)) as SwitchboardError;
    expect(holed.hole?.resumeAfter).toBe('199-0');
    expect(both.calls.map((c) => c.split(' ')[0])).toEqual([A, B]);
    expect(holed.attempts).toBe(2);

    // B answers: its answer is the call's.
    const good = fakeFetch((base) => (base === A ? json(503, HOLE) : json(200, { events: [], next: null })));
    const g = new SwitchboardClient({ url: A, failover: [B], workspace: WS, backoffMs: 1, fetch: good.f });
    await expect(g.listEvents()).resolves.toEqual({ events: [], next: null });
  });
});

describe("the live feed's ticket", () => {
  const answers: [string, () => Response][] = [
    [
      'an HTML page',
      () => new Response('<html>portal</html>', { status: 200, headers: { 'content-type': 'text/html' } }),
    ],
    ['{}', () => json(201, {})],
    [
      'JSON null',
      () => new Response('null', { status: 201, headers: { 'content-type': 'application/json' } }),
    ],
  ];
  it.each(answers)(
    'a 2xx that is no ticket (%s) is a SwitchboardError naming it, no socket opened',
    async (what, answer) => {
      const opened: string[] = [];
      // The page's WebSocket (no headers: tickets); one that is made at all fails the test.
      class NoSocket {
        constructor(url: string) {
          opened.push(url);
          throw new Error(`a socket was opened: ${url}`);
        }
      }
      const { f, calls } = fakeFetch(() => answer());
      const c = new SwitchboardClient({
        url: A,
        workspace: WS,
        key: 'sb_k_s',
        fetch: f,
        WebSocket: NoSocket,
      });
      const errors: Error[] = [];
      const sub = c.subscribe({ onError: (e) => errors.push(e) }, () => {});
      const err = await sub.ready.then(
        () => new Error(`${what}: opened`),
        (e: unknown) => e as Error,
      );
      await sub.ended;
      expect(err).toBeInstanceOf(SwitchboardError);
      expect(err.message).toMatch(/^POST \/v1\/workspaces\/edges-8\/ws-tickets: 20[01] /);
      expect((err as SwitchboardError).detail).toMatch(
        what === '{}' ? /the answer is no ticket \(no ticket\): \{\}/ : /the answer is not a JSON document/,
      );
      expect(errors).toEqual([err]);
      expect(opened).toEqual([]);
      expect(calls).toEqual([`${A} POST /v1/workspaces/${WS}/ws-tickets`]);
    },
  );

  it('createWsTicket() answers `{}` the same way', async () => {
    const { f } = fakeFetch(() => json(201, {}));
    const c = new SwitchboardClient({ url: A, workspace: WS, fetch: f });
    const err = (await c.createWsTicket().catch((e: unknown) => e)) as SwitchboardError;
    expect(err).toBeInstanceOf(SwitchboardError);
    expect(err.status).toBe(201);
    expect(err.detail).toBe('the answer is no ticket (no ticket): {}');
  });
});

describe('a slow handshake', () => {
  it('is held to timeoutMs, not to the heartbeat: the watchdog starts once the socket is open', async () => {
    const wss = new WebSocketServer({ noServer: true });
    const url = await upgradeServer((req, socket, head) => {
      // The handshake answered after 600 ms: three times twice the heartbeat interval.
      setTimeout(
        () =>
          wss.handleUpgrade(req, socket, head, (ws) => {
            ws.send(JSON.stringify({ heartbeat: { after: '5-0', everyMs: 60_000 } }));
          }),
        600,
      );
    });
    const errors: Error[] = [];
    const closes: { code: number; reason: string }[] = [];
    const sub = new SwitchboardClient({ url, workspace: WS, timeoutMs: 5_000 }).subscribe(
      { heartbeatMs: 100, onError: (e) => errors.push(e), onClose: (i) => closes.push(i) },
      () => {},
    );
    try {
      const opened = await sub.ready.then(
        () => 'opened',
        (e: unknown) => (e as Error).message,
      );
      expect(opened).toBe('opened');
      expect(errors).toEqual([]);
      expect(closes).toEqual([]);
      await expect.poll(() => sub.position, { timeout: 2_000 }).toBe('5-0');
    } finally {
      sub.close();
      wss.close();
    }
  });
});

describe('a handshake never answered, on a WebSocket that takes no options', () => {
  it('is dropped after timeoutMs (the client keeps the limit itself)', async () => {
    // Accepts the upgrade's connection and answers nothing: a proxy holding it, a half-open path.
    const held: Duplex[] = [];
    const url = await upgradeServer((_req, socket) => {
      held.push(socket);
    });
    const closes: { code: number; reason: string }[] = [];
    // `ws` given as the WebSocket class: made with the URL alone, as a browser's is.
    const sub = new SwitchboardClient({ url, workspace: WS, timeoutMs: 300, WebSocket }).subscribe(
      { heartbeatMs: 100, onClose: (i) => closes.push(i) },
      () => {},
    );
    try {
      const ended = await Promise.race([
        sub.ready.then(
          () => 'opened',
          (e: unknown) => (e as Error).message,
        ),
        new Promise((r) => setTimeout(() => r('still pending after 3 s'), 3000)),
      ]);
      expect(ended).toMatch(/not answered within 300 ms/);
      expect(closes[0]).toMatchObject({ code: 1006 });
    } finally {
      sub.close();
      for (const socket of held) socket.destroy();
    }
  });
});

describe("a refused upgrade's Retry-After", () => {
  it("is the SwitchboardError's retryAfterMs (429 too-many-websockets, Retry-After: 5)", async () => {
    const problem = JSON.stringify({
      type: '/problems/too-many-websockets',
      title: 'Too many WebSockets',
      status: 429,
      detail: 'This key has too many live feeds open.',
    });
    const url = await upgradeServer((_req, socket) => {
      socket.end(
        `HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/problem+json\r\nRetry-After: 5\r\nContent-Length: ${Buffer.byteLength(problem)}\r\nConnection: close\r\n\r\n${problem}`,
      );
    });
    const sub = new SwitchboardClient({ url, workspace: WS }).subscribe({}, () => {});
    const err = await sub.ready.then(
      () => new Error('opened'),
      (e: unknown) => e as Error,
    );
    await sub.ended;
    expect(err).toBeInstanceOf(SwitchboardError);
    const e = err as SwitchboardError;
    expect({ status: e.status, type: e.type, retryAfterMs: e.retryAfterMs }).toEqual({
      status: 429,
      type: '/problems/too-many-websockets',
      retryAfterMs: 5_000,
    });
  });
});

describe('an Idempotency-Key on a route that ignores it', () => {
  it('does not make the write repeatable: POST /keys, DELETE /keys/{id}, POST /ws-tickets are sent once', async () => {
    const W = `/v1/workspaces/${WS}`;
    const writes: [string, string, unknown][] = [
      ['POST', `${W}/keys`, { role: 'admin' }],
      ['DELETE', `${W}/keys/0123456789abcdef`, undefined],
      ['POST', `${W}/ws-tickets`, undefined],
      ['POST', `${W}/ws-tickets?x=1`, undefined],
    ];
    for (const [method, path, body] of writes) {
      const what = `${method} ${path}`;
      const { f, calls } = fakeFetch(() => 'network');
      const c = new SwitchboardClient({ url: A, workspace: WS, backoffMs: 1, fetch: f });
      for (const keyed of [{ idempotencyKey: 'k-1' }, { headers: { 'Idempotency-Key': 'k-2' } }]) {
        calls.length = 0;
        const err = (await c
          .request(method, path, { ...(body !== undefined ? { body } : {}), ...keyed })
          .catch((e: unknown) => e)) as SwitchboardError;
        expect(err, what).toBeInstanceOf(SwitchboardError);
        expect(err.status, what).toBe('network');
        expect(err.attempts, what).toBe(1);
        expect(calls, what).toHaveLength(1);
      }
      // A 429 changed nothing: that one is still tried again.
      let n = 0;
      const limited = fakeFetch(() => (n++ === 0 ? json(429, { oops: true }) : json(201, { ok: true })));
      const d = new SwitchboardClient({ url: A, workspace: WS, backoffMs: 1, fetch: limited.f });
      const a = await d.request(method, path, { idempotencyKey: 'k-3' });
      expect(a.attempts, what).toBe(2);
    }
    // A command's route still is: its key makes a repeat harmless.
    const { f, calls } = fakeFetch(() => 'network');
    const c = new SwitchboardClient({ url: A, workspace: WS, backoffMs: 1, fetch: f });
    for (const [method, path] of [
      ['POST', `${W}/contacts`],
      ['DELETE', `${W}/agents/ana`],
      ['PUT', `${W}/settings`],
    ] as const) {
      calls.length = 0;
      const err = (await c
        .request(method, path, { idempotencyKey: 'k-4' })
        .catch((e: unknown) => e)) as SwitchboardError;
      expect(err.attempts, `${method} ${path}`).toBe(5);
      expect(calls, `${method} ${path}`).toHaveLength(5);
    }
  });
});
