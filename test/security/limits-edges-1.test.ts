/**
 * Limits at their edges (docs/SECURITY.md, "Limits"). An instance that stopped (a rolling restart)
 * left its sockets' WS_MAX_PER_KEY slots taken in Redis until they lapsed, 60 s later: a key at its
 * cap that reconnected to another instance was refused 429 too-many-websockets all that time. Now
 * the slots go as the instance stops. Also: behind a trusted proxy, callers without a key are
 * counted per forwarded address (one client's flood does not refuse another), and an upgrade past
 * the rate limit is refused before the upgrade with Retry-After.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { openLiveSocket } from '../support/live-open.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'limits-edges-1';
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
      SHUTDOWN_TIMEOUT_MS: '4000',
      LB_DRAIN_MS: '0',
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

const openLive = (url: string, headers: Record<string, string> = {}) =>
  openLiveSocket(url, `${B}/events/live`, headers);

describe('limits at their edges', () => {
  it('an instance that stops gives its sockets slots back at once: a client reconnects to another', async () => {
    const env = { WS_MAX_PER_KEY: '1', WS_MAX_PER_INSTANCE: 'off' };
    const [a, b] = await Promise.all([instance(env), instance(env)]);
    for (const r of [a, b])
      await waitFor('the instance to see Redis', async () => (await fetch(`${r.url}/health`)).status === 200);
    const first = await openLive(a.url!);
    if (!('socket' in first)) throw new Error(`refused: ${first.status} ${first.body}`);
    first.socket.on('close', () => {});
    // At the cap: refused before the upgrade, with the documented wait.
    const refused = await openLive(b.url!);
    if ('socket' in refused) throw new Error('a second socket opened past WS_MAX_PER_KEY=1');
    expect(refused.status).toBe(429);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(refused.body)).toMatchObject({ type: '/problems/too-many-websockets' });
    expect(refused.headers['retry-after']).toBe('5');
    // A rolling restart: the instance stops (its socket closed with 1001); the client reconnects to
    // the other at once. Its slot used to stay taken until it lapsed (60 s), refusing it meanwhile.
    await a.stop();
    const again = await openLive(b.url!);
    if (!('socket' in again))
      throw new Error(`refused after the instance stopped: ${again.status} ${again.body}`);
    again.socket.terminate();
  });

  it('behind a trusted proxy, callers without a key are counted per forwarded address', async () => {
    const a = await instance({ RATE_LIMIT: '1', RATE_LIMIT_BURST: '2', TRUST_PROXY: '127.0.0.1,::1' });
    const get = (xff?: string) =>
      fetch(`${a.url}${B}/stats`, xff ? { headers: { 'x-forwarded-for': xff } } : {}).then(async (res) => {
        await res.arrayBuffer();
        return { status: res.status, retryAfter: res.headers.get('retry-after') };
      });
    const flood = [];
    for (let i = 0; i < 5; i++) flood.push(await get('10.9.0.1'));
    expect(flood.map((r) => r.status)).toContain(429);
    expect((await get('10.9.0.2')).status).toBe(200);
    // A client naming an address of its own before the proxy's is still counted by the proxy's.
    const spoof = [];
    for (let i = 0; i < 5; i++) spoof.push(await get(`10.9.1.${i}, 10.9.0.3`));
    expect(spoof.map((r) => r.status)).toContain(429);
  });

  it('an upgrade past the rate limit answers 429 rate-limited with Retry-After, before the upgrade', async () => {
    const a = await instance({ RATE_LIMIT: '1', RATE_LIMIT_BURST: '1', WS_MAX_PER_KEY: 'off' });
    await waitFor('the instance to see Redis', async () => (await fetch(`${a.url}/health`)).status === 200);
    const results = [];
    for (let i = 0; i < 2; i++) results.push(await openLive(a.url!));
    const refused = results.find((r) => !('socket' in r));
    for (const r of results) if ('socket' in r) r.socket.terminate();
    if (!refused || 'socket' in refused) throw new Error('no upgrade refused');
    expect(refused.status).toBe(429);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(refused.body)).toMatchObject({ type: '/problems/rate-limited' });
    expect(Number(refused.headers['retry-after'])).toBe(1);
  });
});
