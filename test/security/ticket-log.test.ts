/**
 * A WebSocket ticket that a request leaves unused never reaches the log: the request line names
 * the URL with the ticket's value replaced. A plain GET of the live feed with a ticket (426) and a
 * ticket tried on another workspace's feed (401) leave it unused, and both lines are at info; the
 * ticket then still opens its feed, so a log reader holding it could have opened the feed.
 */
import http from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loggedUrl } from '../../src/adapters/http/request-log.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { bearer, keyOf } from './harness.ts';

const WS = 'sec-ticket-log';
const OTHER = 'sec-ticket-log-other';
let redis: TestRedis;
let sb: Running;
const logged: string[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logged.push(chunk.toString());
      done();
    },
  });
  sb = await startSwitchboard(
    loadConfig({
      ...redis.env,
      AUTH: 'on',
      PORT: '0',
      ROLES: 'api',
      WORKSPACES: `${WS},${OTHER}`,
      DISCOVER_WORKSPACES: 'false',
    }),
    pino({ level: 'debug' }, sink),
  );
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

/** Opens the live feed over a real socket; resolves with the handshake's status (101: opened). */
function upgrade(ws: string, query: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${sb.url!.replace('http', 'ws')}/v1/workspaces/${ws}/events/live${query}`);
    socket.once('open', () => {
      socket.close();
      resolve(101);
    });
    socket.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    socket.once('error', reject);
  });
}

describe('a WebSocket ticket in the log', () => {
  it('is never written, even when the request leaves it unused', async () => {
    const { key } = await keyOf(sb.redis, WS, 'supervisor');
    const made = await fetch(`${sb.url}/v1/workspaces/${WS}/ws-tickets`, {
      method: 'POST',
      headers: bearer(key),
    });
    expect(made.status).toBe(201);
    const { ticket } = (await made.json()) as { ticket: string };

    const plain = await fetch(`${sb.url}/v1/workspaces/${WS}/events/live?ticket=${ticket}`);
    expect(plain.status).toBe(426);
    expect(await upgrade(OTHER, `?ticket=${ticket}`)).toBe(401);
    // Both left it unused: it still opens its feed (and is spent by that upgrade).
    expect(await upgrade(WS, `?after=0-0&ticket=${ticket}`)).toBe(101);

    // An Expect the server refuses (417) never reaches the route: the ticket is unused too.
    const expectation = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${sb.url}/v1/workspaces/${WS}/events/live?ticket=${ticket}`, {
        headers: { expect: 'something-else' },
      });
      req.once('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.once('error', reject);
      req.end();
    });
    expect(expectation).toBe(417);

    const lines = logged.join('');
    expect(lines).toContain('"status":426');
    expect(lines).toContain('"status":401');
    expect(lines).toContain('expectation refused');
    expect(lines).not.toContain(ticket);
    expect(lines).not.toContain(ticket.slice(4));
  });
  it('is replaced wherever it is in the query, its name encoded or not', () => {
    expect(loggedUrl('/v1/workspaces/w/events/live?after=1-0&ticket=wst_a&agent=x')).toBe(
      '/v1/workspaces/w/events/live?after=1-0&ticket=[redacted]&agent=x',
    );
    expect(loggedUrl('/x?%74icket=wst_a&ticket=wst_b')).toBe('/x?%74icket=[redacted]&ticket=[redacted]');
    expect(loggedUrl('/x?tickets=1&%zz=2')).toBe('/x?tickets=1&%zz=2');
    expect(loggedUrl('/x')).toBe('/x');
  });
});
