/**
 * Limits (docs/SECURITY.md, "Limits"): the request rate per caller holds across two API instances
 * on one Redis (429 problem+json with Retry-After); WebSocket caps per caller (across instances)
 * and per instance refuse the upgrade with a problem+json; the request line, headers and target
 * have a size limit; a client that sends its request slowly is cut off while others are served;
 * and no route answers CORS headers.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { Cluster } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createApiKey, revokeApiKey } from '../../src/adapters/redis/api-keys.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { openLiveSocket } from '../support/live-open.ts';
import { unappliedPosition } from '../support/positions.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = 'sec-limits';
const B = `/v1/workspaces/${WS}`;

let redis: TestRedis;
const started: Running[] = [];

async function instance(env: Record<string, string>): Promise<Running> {
  const r = await startSwitchboard(
    loadConfig({
      ...redis.env,
      PORT: '0',
      LOG_LEVEL: 'silent',
      ROLES: 'api',
      WORKSPACES: WS,
      AUTH: 'off',
      ...env,
    }),
    pino({ level: 'silent' }),
  );
  started.push(r);
  return r;
}

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  await Promise.all(started.map((r) => r.stop()));
  await redis?.stop();
});

interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The server closed the connection. */
  readonly closed: boolean;
  /** When the first byte of the answer came, ms after the request began. */
  readonly afterMs: number;
}

/** Writes `chunks` (with `everyMs` between them) on a new connection; reads the first answer. */
function raw(
  url: string,
  chunks: readonly (string | Buffer)[],
  everyMs = 0,
  waitMs = 10_000,
): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const began = Date.now();
    let firstAt = -1;
    let text = '';
    let closed = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(timer);
      clearTimeout(giveUp);
      socket.destroy();
      const at = text.indexOf('\r\n\r\n');
      if (at < 0) return reject(new Error(`no answer (closed: ${closed}): ${JSON.stringify(text)}`));
      const [line = '', ...lines] = text.slice(0, at).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({
        status: Number(line.split(' ')[1]),
        headers,
        body: text.slice(at + 4),
        closed,
        afterMs: firstAt - began,
      });
    };
    const giveUp = setTimeout(finish, waitMs);
    socket.on('data', (c: Buffer) => {
      if (firstAt < 0) firstAt = Date.now();
      text += c.toString('latin1');
      const at = text.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: (\d+)/i.exec(text)?.[1];
      if (at >= 0 && length !== undefined && text.length >= at + 4 + Number(length)) {
        // The whole answer: wait to see whether the server closes (a close ends the wait at once).
        // The server runs in this process: on a loaded machine its close after the write came
        // later than 100 ms, and a connection closed was read as kept open.
        setTimeout(finish, 1000);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      finish();
    });
    let i = 0;
    const next = () => {
      if (i >= chunks.length || socket.destroyed) return;
      socket.write(chunks[i++]!);
      if (everyMs > 0) timer = setTimeout(next, everyMs);
      else next();
    };
    socket.on('connect', next);
  });
}

function expectProblem(a: { status: number; headers: Record<string, string>; body: string }, type: string) {
  expect(a.headers['content-type'], a.body).toMatch(/^application\/problem\+json/);
  const p = JSON.parse(a.body) as { type: string; status: number; title: string; detail: string };
  expect(p, a.body).toMatchObject({ type: `/problems/${type}`, status: a.status });
  expect(p.title && p.detail).toBeTruthy();
  return p;
}

/** Opens a live feed; resolves when open, or with the refusal's status, headers and problem. */
/** The workspace's live feed through `url`, with the key when given. */
const openLive = (url: string, key?: string) =>
  openLiveSocket(url, `${B}/events/live`, key ? { authorization: `Bearer ${key}` } : {});

describe('limits', () => {
  it('the request rate per caller holds across two instances on one Redis: 429 problem+json with Retry-After', async () => {
    const env = { RATE_LIMIT: '5', RATE_LIMIT_BURST: '10' };
    const [a, b] = await Promise.all([instance(env), instance(env)]);
    const urls = [a.url!, b.url!];
    const began = Date.now();
    // All at once: however loaded the machine, they arrive within a short window.
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => fetch(`${urls[i % 2]}${B}/stats`)),
    );
    const elapsedS = (Date.now() - began) / 1000;
    const ok = answers.filter((r) => r.status === 200);
    const limited = answers.filter((r) => r.status === 429);
    expect(ok.length + limited.length).toBe(30);
    // Counted per instance, each would let its own burst through (20 in all).
    expect(ok.length).toBeGreaterThanOrEqual(10);
    expect(ok.length).toBeLessThanOrEqual(10 + Math.ceil(5 * elapsedS) + 1);
    // Both instances refused.
    expect(new Set(answers.map((r, i) => (r.status === 429 ? i % 2 : -1)).filter((x) => x >= 0)).size).toBe(
      2,
    );
    const refusal = limited[0]!;
    const p = expectProblem(
      {
        status: refusal.status,
        headers: { 'content-type': refusal.headers.get('content-type')! },
        body: await refusal.text(),
      },
      'rate-limited',
    ) as unknown as { retryAfterMs: number };
    const retryAfter = Number(refusal.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(p.retryAfterMs).toBeGreaterThan(0);
    expect(p.retryAfterMs).toBeLessThanOrEqual(retryAfter * 1000);

    // A refused command changes nothing: of commands sent at once with the budget spent, only the
    // ones let through are appended.
    const k = workspaceKeys(WS);
    const admin = redis.client();
    try {
      const before = await admin.xlen(k.commands);
      const sent = await Promise.all(
        Array.from({ length: 15 }, (_, i) =>
          fetch(`${[a, b][i % 2]!.url}${B}/agents`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ id: `limited-${i}`, skills: ['x'] }),
          }).then(async (res) => {
            await res.arrayBuffer();
            return res.status;
          }),
        ),
      );
      const through = sent.filter((st) => st !== 429).length;
      expect(through).toBeLessThan(15);
      expect(await admin.xlen(k.commands)).toBe(before + through);
    } finally {
      admin.disconnect();
    }
    // The health check is never limited.
    for (let i = 0; i < 20; i++) expect((await fetch(`${a.url}/health`)).status).toBe(200);
    // After Retry-After, the budget is back.
    await sleep(retryAfter * 1000);
    expect((await fetch(`${b.url}${B}/stats`)).status).toBe(200);
  });

  it('WebSockets per caller are capped across instances (429) and per instance (503), before the upgrade', async () => {
    const [a, b] = await Promise.all([
      instance({ WS_MAX_PER_KEY: '3', WS_MAX_PER_INSTANCE: 'off' }),
      instance({ WS_MAX_PER_KEY: '3', WS_MAX_PER_INSTANCE: 'off' }),
    ]);
    // The count lets sockets through while an instance does not see Redis (its first PING, or one
    // a loaded machine answers after a second): both must see it first.
    const seeRedis = async () =>
      (await Promise.all([a, b].map((r) => fetch(`${r.url}/health`).then((res) => res.status)))).every(
        (st) => st === 200,
      );
    await waitFor('both instances to see Redis', seeRedis);
    const open: WebSocket[] = [];
    try {
      for (const url of [a.url!, b.url!, a.url!]) {
        const r = await openLive(url);
        if (!('socket' in r)) throw new Error(`refused: ${r.status} ${r.body}`);
        open.push(r.socket);
      }
      for (const url of [a.url!, b.url!]) {
        const r = await openLive(url);
        if ('socket' in r)
          throw new Error(`a fourth socket opened (both instances see Redis now: ${await seeRedis()})`);
        expect(r.status).toBe(429);
        expectProblem(r, 'too-many-websockets');
      }
      // One closed frees a slot, on either instance.
      open.shift()!.close();
      const again = await waitFor('a slot freed', async () => {
        const r = await openLive(b.url!);
        if ('socket' in r) return r.socket;
        return undefined;
      });
      open.push(again);
    } finally {
      for (const s of open) s.terminate();
    }

    const c = await instance({ WS_MAX_PER_KEY: 'off', WS_MAX_PER_INSTANCE: '2' });
    const held: WebSocket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const r = await openLive(c.url!);
        if (!('socket' in r)) throw new Error(`refused: ${r.status} ${r.body}`);
        held.push(r.socket);
      }
      const r = await openLive(c.url!);
      if ('socket' in r) throw new Error('a third socket opened');
      expect(r.status).toBe(503);
      expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
      expectProblem(r, 'too-many-connections');
    } finally {
      for (const s of held) s.terminate();
    }
  });

  it('with API keys: each key has its budget across instances, and requests that fail authentication spend none', async () => {
    const env = { AUTH: 'on', RATE_LIMIT: '5', RATE_LIMIT_BURST: '10', WS_MAX_PER_KEY: '2' };
    const [a, b] = await Promise.all([instance(env), instance(env)]);
    const client = redis.client();
    let one: string;
    let two: string;
    let revoked: string;
    try {
      one = (await createApiKey(client, { workspace: WS, role: 'supervisor' })).key;
      two = (await createApiKey(client, { workspace: WS, role: 'supervisor' })).key;
      const r = await createApiKey(client, { workspace: WS, role: 'supervisor' });
      revoked = r.key;
      await revokeApiKey(client, WS, r.info.keyId);
    } finally {
      client.disconnect();
    }
    const get = (url: string, key?: string) =>
      fetch(`${url}${B}/stats`, key ? { headers: { authorization: `Bearer ${key}` } } : {});
    // A flood that does not authenticate: 401 every time, and no key's budget is touched.
    const wrongSecret = `${one.slice(0, -1)}${one.endsWith('A') ? 'B' : 'A'}`;
    for (let i = 0; i < 40; i++) {
      const res = await get(i % 2 ? a.url! : b.url!, [undefined, wrongSecret, revoked, 'garbage'][i % 4]);
      expect(res.status).toBe(401);
    }
    // The key's whole burst is there (the flood spent none of it), and no more, across both instances.
    const began = Date.now();
    const statuses = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        get(i % 2 ? a.url! : b.url!, one).then(async (res) => {
          await res.arrayBuffer();
          return res.status;
        }),
      ),
    );
    const ok = statuses.filter((st) => st === 200).length;
    expect(ok).toBeGreaterThanOrEqual(10);
    expect(ok).toBeLessThanOrEqual(10 + Math.ceil((5 * (Date.now() - began)) / 1000));
    expect(statuses.filter((st) => st === 429).length).toBe(16 - ok);
    // Another key of the same workspace has its own budget.
    expect((await get(a.url!, two)).status).toBe(200);

    // WebSockets per key, across instances: two for `one`; `two` is not counted with it.
    const open: WebSocket[] = [];
    try {
      await sleep(1000); // the upgrades are requests too: let the budget refill
      for (const url of [a.url!, b.url!]) {
        const r = await openLive(url, one);
        if (!('socket' in r)) throw new Error(`refused: ${r.status} ${r.body}`);
        open.push(r.socket);
      }
      const third = await openLive(a.url!, one);
      if ('socket' in third) throw new Error('a third socket opened for the key');
      expect(third.status).toBe(429);
      expectProblem(third, 'too-many-websockets');
      const other = await openLive(b.url!, two);
      if (!('socket' in other)) throw new Error(`refused: ${other.status} ${other.body}`);
      open.push(other.socket);
    } finally {
      for (const s of open) s.terminate();
    }
  });

  it('a limiter that cannot count in Redis lets the request through: no 5xx of its own', async () => {
    const a = await instance({ RATE_LIMIT: '1000' });
    const root = redis.adminClient();
    try {
      // Writes wait (the rate-limit script among them) for 2 s, longer than a count waits (1 s).
      await root.call('CLIENT', 'PAUSE', '2000', 'WRITE');
      const began = Date.now();
      const res = await fetch(`${a.url}${B}/stats`);
      expect(res.status, await res.text()).toBe(200);
      // The count gave up after 1 s (limits.ts, COUNT_WAIT_MS); the request's own steps, held by
      // the pause as well, went on once it ended, within their command timeout (2 s).
      expect(Date.now() - began).toBeLessThan(5000);
    } finally {
      await root.call('CLIENT', 'UNPAUSE').catch(() => {});
      root.disconnect();
    }
  });

  it('the request line, headers and target have size limits: 431 and 414 problem+json', async () => {
    const a = await instance({ MAX_HEADER_BYTES: '4096', MAX_URL_BYTES: '1024' });
    const big = await raw(a.url!, [
      `GET ${B}/stats HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`,
    ]);
    expect(big.status).toBe(431);
    expectProblem(big, 'headers-too-large');
    expect(big.closed).toBe(true);
    // A HEAD's refusal has no body (a client would read it as garbage).
    const headStatus = await new Promise<number>((resolve, reject) => {
      const req = request(`${a.url}${B}/stats`, { method: 'HEAD', headers: { 'x-big': 'a'.repeat(5000) } });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    expect(headStatus).toBe(431);
    const longUrl = await raw(a.url!, [
      `GET ${B}/stats?type=${'A'.repeat(2000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    ]);
    expect(longUrl.status).toBe(414);
    expectProblem(longUrl, 'uri-too-long');
    const longerThanHeaders = await raw(a.url!, [
      `GET ${B}/stats?x=${'A'.repeat(6000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    ]);
    expect(longerThanHeaders.status).toBe(431);
    expectProblem(longerThanHeaders, 'headers-too-large');
    const upgrade = await raw(a.url!, [
      `GET ${B}/events/live?x=${'A'.repeat(2000)} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ]);
    expect(upgrade.status).toBe(414);
    expectProblem(upgrade, 'uri-too-long');
    expect(upgrade.closed).toBe(true);
  });

  it('a client sending its request one byte at a time is cut off with 408; others are served meanwhile', async () => {
    const a = await instance({
      HEADERS_TIMEOUT_MS: '1000',
      REQUEST_TIMEOUT_MS: '1700',
      QUERY_TIMEOUT_MS: '2700',
    });
    const began = Date.now();
    const head = `GET ${B}/stats HTTP/1.1\r\nHost: localhost\r\nX-Slow: ${'s'.repeat(100)}\r\n\r\n`;
    const slowHeaders = raw(a.url!, [...head], 300);
    const body = JSON.stringify({ id: 'slow', skills: ['x'] });
    const slowBody = raw(
      a.url!,
      [
        `POST ${B}/agents HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
        ...body,
      ],
      300,
    );
    const silent = raw(a.url!, []);
    // A request waiting for a position longer than REQUEST_TIMEOUT_MS arrived whole: it is not cut off.
    const root = redis.adminClient();
    const waiting = await unappliedPosition(root, 'limits-unserved').finally(() => root.disconnect());
    const longPoll = fetch(`${a.url}/v1/workspaces/limits-unserved/stats?minPosition=${waiting}`);
    const served: number[] = [];
    // For 1.4 s, and (on a loaded machine, where a round may take long) until 6 were served.
    while ((Date.now() - began < 1400 || served.length < 6) && Date.now() - began < 10_000) {
      served.push((await fetch(`${a.url}${B}/stats`)).status);
      await sleep(100);
    }
    expect(served.length).toBeGreaterThan(5);
    expect(served.every((s) => s === 200)).toBe(true);
    const [h, b, s] = await Promise.all([slowHeaders, slowBody, silent]);
    for (const [what, r, limit] of [
      ['slow headers', h, 1000],
      ['slow body', b, 1700],
      ['nothing sent', s, 1000],
    ] as const) {
      expect(r.status, what).toBe(408);
      expectProblem(r, 'request-timeout');
      expect(r.closed, what).toBe(true);
      expect(r.afterMs, what).toBeGreaterThanOrEqual(limit - 50);
      expect(r.afterMs, what).toBeLessThan(limit + 2000);
    }
    const poll = await longPoll;
    expect(poll.status).toBe(503);
    expect((await poll.json()) as { type: string }).toMatchObject({ type: '/problems/position-not-reached' });
    expect(Date.now() - began).toBeGreaterThan(2600);
  });

  it('an upgrade whose client vanished while it was checked takes no slot: the caps are not spent for ever', async () => {
    const c = await instance({ WS_MAX_PER_KEY: '1', WS_MAX_PER_INSTANCE: '1' });
    const admin = redis.adminClient();
    await admin.ping();
    const nodes = admin instanceof Cluster ? admin.nodes('all') : [admin];
    const { hostname, port } = new URL(c.url!);
    try {
      for (const end of ['reset', 'fin'] as const) {
        // Redis holds the route's checks before the upgrade; the client leaves meanwhile.
        await Promise.all(nodes.map((n) => n.call('CLIENT', 'PAUSE', '500', 'ALL')));
        const socket = connect(Number(port), hostname);
        socket.on('error', () => {});
        await new Promise((resolve) => socket.on('connect', resolve));
        socket.write(
          `GET ${B}/events/live HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
        );
        await sleep(150);
        if (end === 'reset') socket.resetAndDestroy();
        else socket.destroy();
        await sleep(600);
        // Both slots (the instance's one, the address's one) are free again.
        const r = await openLive(c.url!);
        if (!('socket' in r)) throw new Error(`after a ${end}: refused: ${r.status} ${r.body}`);
        r.socket.close();
        await waitFor('the socket closed', async () => {
          const again = await openLive(c.url!);
          if (!('socket' in again)) return false;
          again.socket.terminate();
          return true;
        });
        await sleep(100);
      }
    } finally {
      await Promise.all(nodes.map((n) => n.call('CLIENT', 'UNPAUSE').catch(() => {})));
      admin.disconnect();
    }
  });

  it('a WebSocket outlives the request timeouts', async () => {
    const a = await instance({
      HEADERS_TIMEOUT_MS: '300',
      REQUEST_TIMEOUT_MS: '500',
      KEEP_ALIVE_TIMEOUT_MS: '500',
    });
    const r = await openLive(a.url!);
    if (!('socket' in r)) throw new Error(`refused: ${r.status} ${r.body}`);
    await sleep(2000);
    expect(r.socket.readyState).toBe(WebSocket.OPEN);
    r.socket.terminate();
  });

  it('CORS is off: no route answers Access-Control-Allow-Origin, not even to a preflight', async () => {
    const a = started[0] ?? (await instance({}));
    const origin = { origin: 'https://evil.example' };
    const answers = await Promise.all([
      fetch(`${a.url}${B}/stats`, { headers: origin }),
      fetch(`${a.url}/health`, { headers: origin }),
      fetch(`${a.url}${B}/agents`, {
        method: 'OPTIONS',
        headers: { ...origin, 'access-control-request-method': 'POST' },
      }),
    ]);
    for (const res of answers) {
      for (const name of res.headers.keys()) expect(name).not.toMatch(/^access-control-/);
      if (res.status >= 400) expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
  });

  it('CORS_ORIGINS: an allowed origin gets its preflight (204) and its answers readable; others get no CORS header', async () => {
    const a = await instance({ CORS_ORIGINS: 'https://app.example,http://localhost:3000', AUTH: 'on' });
    const preflight = await fetch(`${a.url}${B}/contacts`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(preflight.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
    expect(preflight.headers.get('vary')).toMatch(/Origin/);
    // Every answer to an allowed origin is readable; /health may say 503 for a moment on a loaded
    // machine (its Redis check), and that answer carries the headers too.
    const res = await fetch(`${a.url}/health`, { headers: { origin: 'http://localhost:3000' } });
    expect([200, 503]).toContain(res.status);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    expect(res.headers.get('access-control-expose-headers')).toMatch(/Retry-After/);
    // A refusal is readable by the page too (its problem+json explains it), authentication's included.
    const refused = await fetch(`${a.url}${B}/stats`, { headers: { origin: 'https://app.example' } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('https://app.example');
    for (const origin of ['https://evil.example', 'https://app.example.evil', 'null']) {
      const other = await fetch(`${a.url}${B}/contacts`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST' },
      });
      expect(other.status).toBe(404);
      for (const name of other.headers.keys()) expect(name).not.toMatch(/^access-control-/);
    }
    expect(() => loadConfig({ CORS_ORIGINS: 'https://app.example/path' })).toThrow(/CORS_ORIGINS/);
    expect(() => loadConfig({ CORS_ORIGINS: '*' })).toThrow(/CORS_ORIGINS/);
  });
});
