/**
 * A stopping API instance lets its requests finish for half of SHUTDOWN_TIMEOUT_MS, then cuts the
 * connections still open, so a stop always ends: a client that began a request and never finished
 * it (or keeps sending on a keep-alive connection), or a live-feed client that never answers the
 * close (1001) the stop sends, cannot hold an instance up. The HTTP server's own
 * behaviour, whatever Redis is behind it: run on the single target.
 */
import { connect } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let redis: TestRedis;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});

/** An API-only instance with a 2 s shutdown time (1 s of it for the drain), and `more`. */
const startApi = (more: Record<string, string> = {}) =>
  startSwitchboard(
    loadConfig({
      AUTH: 'off',
      ...redis.env,
      PORT: '0',
      LOG_LEVEL: 'silent',
      ROLES: 'api',
      SHUTDOWN_TIMEOUT_MS: '2000',
      ...more,
    }),
    pino({ level: 'silent' }),
  );

describe('an instance that stops', () => {
  it('cuts a connection still busy after the drain time (a request never finished), and the stop ends', async () => {
    // The headers timeout (60 s here) would end the connection only long after the drain time.
    const own = await startApi({ HEADERS_TIMEOUT_MS: '60000', REQUEST_TIMEOUT_MS: '60000' });
    const { hostname, port } = new URL(own.url!);
    const socket = connect(Number(port), hostname);
    await new Promise((resolve) => socket.once('connect', resolve));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    // Headers begun and never ended: the connection is not idle, so closing alone would wait.
    socket.write('GET /v1/workspaces/default/stats HTTP/1.1\r\nHost: localhost\r\n');
    await sleep(100);
    const t0 = Date.now();
    await Promise.race([
      own.stop(),
      sleep(15_000).then(() => {
        throw new Error('the stop waited for the busy connection');
      }),
    ]);
    await closed;
    // The drain time (1 s: half of SHUTDOWN_TIMEOUT_MS), not the headers timeout (60 s) or the client.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(Date.now() - t0).toBeLessThan(9_000);
  }, 30_000);

  it('cuts a live feed whose client never answers the close after the drain time, and the stop ends', async () => {
    const own = await startApi();
    const { hostname, port } = new URL(own.url!);
    // A client on a dead path: the upgrade done, then nothing read or answered.
    const socket = connect(Number(port), hostname);
    await new Promise((resolve) => socket.once('connect', resolve));
    let answer = '';
    socket.on('data', (b: Buffer) => {
      answer += b.toString('latin1');
    });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(
      'GET /v1/workspaces/default/events/live HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n' +
        'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    for (let i = 0; i < 50 && !answer.includes('\r\n\r\n'); i++) await sleep(50);
    expect(answer).toMatch(/^HTTP\/1\.1 101 /);
    const t0 = Date.now();
    await Promise.race([
      own.stop(),
      sleep(15_000).then(() => {
        throw new Error('the stop waited for the silent WebSocket');
      }),
    ]);
    await closed;
    // The drain time (1 s), not the WebSocket library's 30 s wait for the closing handshake.
    expect(Date.now() - t0).toBeLessThan(9_000);
  }, 30_000);
});
