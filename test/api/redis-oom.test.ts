/**
 * Redis at its memory limit (`maxmemory` reached with `noeviction`, the setting a queue must run
 * with) refuses every write: commands cannot be appended. Each request is answered 503
 * problem+json, never a 500, and the process keeps serving; once memory is freed, commands are
 * taken again.
 */
import { Cluster } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

const WS = 'redis-oom';

/** Each master of the target (a Cluster client's, or the one server). */
function masters(admin: RedisClient): RedisClient[] {
  return admin instanceof Cluster ? admin.nodes('master') : [admin];
}

/** Each master's memory limit: half of what it uses (every write refused with OOM), or none (0). */
async function setMaxmemory(admin: RedisClient, limit: 'half' | 0): Promise<void> {
  await admin.ping(); // a Cluster client knows its nodes once connected
  const all = masters(admin);
  expect(all.length).toBeGreaterThan(0);
  for (const m of all) {
    const used = Number(/used_memory:(\d+)/.exec(await m.info('memory'))![1]);
    await m.config('SET', 'maxmemory-policy', 'noeviction');
    await m.config('SET', 'maxmemory', String(limit === 'half' ? Math.floor(used / 2) : 0));
  }
}

describe('Redis out of memory', () => {
  let redis: TestRedis;
  let running: Running;
  beforeAll(async () => {
    redis = await startTestRedis();
    running = await startSwitchboard(
      loadConfig({
        AUTH: 'off',
        ...redis.env,
        PORT: '0',
        LOG_LEVEL: 'silent',
        COMMAND_TIMEOUT_MS: '2000',
        WORKSPACES: WS,
        DISCOVER_WORKSPACES: 'false',
      }),
      pino({ level: 'silent' }),
    );
    await projectorReady(running.redis, [WS]);
  });
  afterAll(async () => {
    const admin = redis?.adminClient();
    if (admin) await setMaxmemory(admin, 0).catch(() => undefined);
    admin?.disconnect();
    await running?.stop();
    await redis?.stop();
  });

  const post = (url: string, payload: object) =>
    running.api!.inject({ method: 'POST', url: `/v1/workspaces/${WS}${url}`, payload });

  it('answers 503 problem+json while Redis refuses writes, and takes commands again once it has room', async () => {
    expect((await post('/agents', { id: 'a1', skills: ['x'] })).statusCode).toBe(201);
    const admin = redis.adminClient();
    try {
      await setMaxmemory(admin, 'half');
      for (const [url, body] of [
        ['/contacts', { skills: ['x'] }],
        ['/agents', { id: 'a2', skills: ['x'] }],
        ['/agents/a1/state', { state: 'available' }],
      ] as const) {
        const r = await post(url, body);
        expect(r.statusCode, `${url}: ${r.body}`).toBe(503);
        expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
        const p = r.json() as { type: string; detail: string };
        expect(p.type).toBe('/problems/redis-unavailable');
        expect(p.detail).toMatch(/memory/i);
      }
      expect(
        (await running.api!.inject({ method: 'GET', url: `/v1/workspaces/${WS}/agents/a1` })).statusCode,
      ).toBe(200);
      await setMaxmemory(admin, 0);
      expect((await post('/contacts', { skills: ['x'] })).statusCode).toBe(201);
    } finally {
      await setMaxmemory(admin, 0);
      admin.disconnect();
    }
  });
});
