/**
 * Redis at its memory limit (`maxmemory` reached with `noeviction`, the setting a queue must run
 * with) refuses every write: commands cannot be appended. Each request is answered 503
 * problem+json, never a 500, and the process keeps serving; once memory is freed, commands are
 * taken again.
 */
import { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'redis-oom';
const api = inProcessApi([WS]);

/** Each master's memory limit: half of what it uses (every write refused with OOM), or none (0). */
async function setMaxmemory(admin: RedisClient, limit: 'half' | 0): Promise<void> {
  await admin.ping(); // a Cluster client knows its nodes once connected
  const masters = admin instanceof Cluster ? admin.nodes('master') : [admin];
  expect(masters.length).toBeGreaterThan(0);
  for (const m of masters) {
    const used = Number(/used_memory:(\d+)/.exec(await m.info('memory'))![1]);
    await m.config('SET', 'maxmemory-policy', 'noeviction');
    await m.config('SET', 'maxmemory', String(limit === 'half' ? Math.floor(used / 2) : 0));
  }
}

describe('Redis out of memory', () => {
  afterAll(async () => {
    const admin = api.server.adminClient();
    await setMaxmemory(admin, 0).catch(() => undefined);
    admin.disconnect();
  });

  const post = (url: string, body: object) => api.call('POST', `/v1/workspaces/${WS}${url}`, body);

  it('answers 503 problem+json while Redis refuses writes, and takes commands again once it has room', async () => {
    expect((await post('/agents', { id: 'a1', skills: ['x'] })).status).toBe(201);
    const admin = api.server.adminClient();
    try {
      await setMaxmemory(admin, 'half');
      for (const [url, body] of [
        ['/contacts', { skills: ['x'] }],
        ['/agents', { id: 'a2', skills: ['x'] }],
        ['/agents/a1/state', { state: 'available' }],
      ] as const) {
        const r = await post(url, body);
        expect(r.status, `${url}: ${JSON.stringify(r.body)}`).toBe(503);
        expect(r.type).toMatch(/^application\/problem\+json/);
        expect(r.body.type).toBe('/problems/redis-unavailable');
        expect(r.body.detail).toMatch(/memory/i);
      }
      expect((await api.call('GET', `/v1/workspaces/${WS}/agents/a1`)).status).toBe(200);
      await setMaxmemory(admin, 0);
      expect((await post('/contacts', { skills: ['x'] })).status).toBe(201);
    } finally {
      await setMaxmemory(admin, 0);
      admin.disconnect();
    }
  });
});
