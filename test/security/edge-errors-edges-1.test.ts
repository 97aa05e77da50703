/**
 * What the HTTP edge answers and logs before any route runs.
 *
 * - An API key or a ticket percent-encoded in a URL (`?key=sb%5F<id>%5F<secret>`, a path segment,
 *   a URL encoded twice) was written in clear on the request's log line at info: only the literal
 *   form was masked. Now every form keeps only the key's public id.
 * - With CORS_ORIGINS, the answers written before any route (431 headers too large from Node's
 *   parser; fastify's 400 for a bad percent-encoding and 414 for an over-long path segment) lacked
 *   the CORS headers every other refusal carries, so a page of an allowed origin could not read
 *   their problem+json (fetch failed with a network error). Now they carry the same headers.
 * - Those two of fastify's (400 invalid-url, 414 uri-too-long) wrote no request line at all (no
 *   hook runs for them): the refusal a client was given under its X-Request-Id could not be found
 *   in the log, nor was it counted in the requests' metric. Now they have their line at info,
 *   a WebSocket upgrade refused there too.
 * One in-process instance (AUTH=on, CORS_ORIGINS) whose log lines are captured at debug.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggedUrl } from '../../src/adapters/http/request-log.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { capturedLogger } from '../support/log-capture.ts';
import { type RawAnswer, rawHttp, rawRequest } from '../support/raw-http.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { bearer, keyOf } from './harness.ts';

const WS = 'edge-errors';
const ORIGIN = 'https://app.example';
let redis: TestRedis;
let sb: Running;
let port = 0;
const { logger, lines } = capturedLogger('debug');

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSwitchboard(
    loadConfig({ ...redis.env, PORT: '0', ROLES: 'api', WORKSPACES: WS, AUTH: 'on', CORS_ORIGINS: ORIGIN }),
    logger,
  );
  port = Number(new URL(sb.url!).port);
}, 60_000);

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

/** Every character of `s` as %XX. */
const encodeAll = (s: string) =>
  [...s].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('');

describe('secrets percent-encoded in a URL', () => {
  it('a key or a ticket in any URL form keeps only its public id on the log line', async () => {
    const client = redis.client();
    const { key, keyId } = await keyOf(client, WS, 'admin');
    client.disconnect();
    const secret = key.slice(`sb_${keyId}_`.length);
    const made = await fetch(`${sb.url}/v1/workspaces/${WS}/ws-tickets`, {
      method: 'POST',
      headers: bearer(key),
    });
    expect(made.status).toBe(201);
    const { ticket } = (await made.json()) as { ticket: string };
    const base = `${sb.url}/v1/workspaces/${WS}`;
    const targets = [
      `${base}/agents?key=sb%5F${keyId}%5F${secret}`,
      // Lower-case hex, the secret's own `_` and `-` encoded too.
      `${base}/agents/sb%5f${keyId}%5f${secret.replace(/[_-]/g, (c) => encodeAll(c).toLowerCase())}`,
      `${base}/agents?key=sb%255F${keyId}%255F${secret}`,
      `${base}/agents/${encodeAll(key)}`,
      `${base}/agents?t=${encodeAll(ticket)}`,
    ];
    for (const url of targets) {
      const res = await fetch(url, { headers: bearer(key) });
      expect(res.status).toBeGreaterThanOrEqual(400);
      await res.text();
    }
    const logged = lines.filter((l) => l.msg === 'request' && String(l.url).includes('/agents'));
    expect(logged).toHaveLength(targets.length);
    const text = JSON.stringify(lines);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(ticket.slice(4));
    expect(text).not.toContain(encodeAll(secret).slice(0, 30));
    expect(text).not.toContain(encodeAll(ticket.slice(4)).slice(0, 30));
    // The key's id stays, for whoever reads the log.
    expect(String(logged[0]!.url)).toBe(`/v1/workspaces/${WS}/agents?key=sb%5F${keyId}%5F[redacted]`);
  });
});

function expectCors(a: RawAnswer, status: number, type: string): void {
  expect(a.status).toBe(status);
  expect(a.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect((JSON.parse(a.body) as { type: string }).type).toBe(`/problems/${type}`);
  expect(a.headers['access-control-allow-origin']).toBe(ORIGIN);
  expect(a.headers.vary).toBe('Origin');
  expect(a.headers['access-control-expose-headers']).toContain('X-Request-Id');
}

describe('the masking of a logged URL, character by character', () => {
  it('finds the secret behind characters outside the Basic Multilingual Plane too', () => {
    const secret = 'A'.repeat(43);
    // Each of these is two UTF-16 units: a mapping by code point put the range one unit early.
    const url = `/v1/workspaces/${'\u{1F642}'.repeat(3)}%20x?key=sb_0123456789abcdef_${secret}`;
    const logged = loggedUrl(url);
    expect(logged).not.toContain(secret.slice(-3));
    expect(logged).toContain('sb_0123456789abcdef_[redacted]');
  });
});

describe('CORS on the answers written before any route', () => {
  const agents = `/v1/workspaces/${WS}/agents`;

  it('431 headers too large, 400 bad percent-encoding and 414 long segment are readable by an allowed origin', async () => {
    // As a browser sends them: Origin among the first headers, then a large cookie.
    expectCors(
      await rawHttp(
        port,
        rawRequest('GET', agents, [`Origin: ${ORIGIN}`, `Cookie: c=${'a'.repeat(20_000)}`]),
      ),
      431,
      'headers-too-large',
    );
    expectCors(
      await rawHttp(port, rawRequest('GET', `${agents}/%zz`, [`Origin: ${ORIGIN}`])),
      400,
      'invalid-url',
    );
    expectCors(
      await rawHttp(port, rawRequest('GET', `${agents}/${'a'.repeat(300)}`, [`Origin: ${ORIGIN}`])),
      414,
      'uri-too-long',
    );
    // What fetch sees: the body readable, not a network error.
    const res = await fetch(`${sb.url}${agents}/%zz`, { headers: { origin: ORIGIN } });
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    await res.text();
  });

  it('an Origin line of refused bytes is read in linear time, however it is padded', async () => {
    // Blanks with no line end after them: a pattern that backtracks over them blocked the event
    // loop for seconds per such request, every other request of the instance waiting.
    for (const pad of [' ', '\t']) {
      const started = performance.now();
      const a = await rawHttp(
        port,
        `GET ${agents} HTTP/1.1\r\nHost: x\r\nOrigin: ${ORIGIN}${pad.repeat(60_000)}\x01`,
        5_000,
      );
      const ms = performance.now() - started;
      expect(a.status, JSON.stringify(a.body).slice(0, 200)).toBeGreaterThanOrEqual(400);
      expect(ms, `answered in ${Math.round(ms)} ms`).toBeLessThan(1_000);
    }
  });

  it('an origin not allowed, or none, gets no CORS header on them', async () => {
    for (const headers of [['Origin: https://evil.example'], []]) {
      for (const a of [
        await rawHttp(port, rawRequest('GET', agents, [...headers, `Cookie: c=${'a'.repeat(20_000)}`])),
        await rawHttp(port, rawRequest('GET', `${agents}/%zz`, headers)),
      ]) {
        expect(a.status).toBeGreaterThanOrEqual(400);
        expect(Object.keys(a.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
      }
    }
  });
});

describe('the request line of the answers written before any route', () => {
  it('a bad percent-encoding and an over-long segment are logged at info under their request id, and counted', async () => {
    const agents = `/v1/workspaces/${WS}/agents`;
    const key = `sb_${'0'.repeat(16)}_${'k'.repeat(43)}`;
    const bad = await fetch(`${sb.url}${agents}/%zz/${key}`);
    const long = await fetch(`${sb.url}${agents}/${'a'.repeat(300)}`);
    for (const [res, status] of [
      [bad, 400],
      [long, 414],
    ] as const) {
      expect(res.status).toBe(status);
      await res.text();
      const id = res.headers.get('x-request-id');
      const line = lines.find((l) => l.msg === 'request' && l.reqId === id);
      expect(line, `no request line for the ${status}`).toMatchObject({ level: 30, method: 'GET', status });
    }
    const line = lines.find((l) => l.msg === 'request' && l.reqId === bad.headers.get('x-request-id'));
    expect(line?.url).toBe(`${agents}/%zz/sb_${'0'.repeat(16)}_[redacted]`);
    const metrics = await (await fetch(`${sb.url}/metrics`)).text();
    // The 414s of this file: the one above and the one of the CORS suite.
    expect(metrics).toMatch(
      /switchboard_http_request_duration_seconds_count\{[^}]*status="414"[^}]*\} [1-9]/,
    );
  });

  it('a WebSocket upgrade the router refuses is logged and counted too', async () => {
    const count = async () => {
      const text = await (await fetch(`${sb.url}/metrics`)).text();
      const m =
        /switchboard_http_request_duration_seconds_count\{(?=[^}]*route="unknown")(?=[^}]*status="400")[^}]*\} (\d+)/.exec(
          text,
        );
      return Number(m?.[1] ?? 0);
    };
    const before = await count();
    const a = await rawHttp(
      port,
      rawRequest('GET', `/v1/workspaces/${WS}/events/live/%zz`, [
        'Upgrade: websocket',
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'X-Request-Id: edge-errors-upgrade',
      ]).replace('Connection: close', 'Connection: Upgrade'),
    );
    expect(a.status).toBe(400);
    expect(a.closed).toBe(true);
    const line = lines.find((l) => l.msg === 'request' && l.reqId === 'edge-errors-upgrade');
    expect(line, 'no request line for the refused upgrade').toMatchObject({ level: 30, status: 400 });
    expect(await count()).toBe(before + 1);
  });
});
