/**
 * A Redis Cluster none of whose nodes can be reached (down, a wrong address, a refused login):
 * requests answer 503 redis-unavailable within a few seconds, as with a single Redis, rather than
 * waiting for ever in the cluster client's queue of commands sent while it is not connected, and
 * the process still stops. The requests are sent as soon as the API is built, before the health
 * watch has seen Redis fail (the rate limit still counts then, on a connection of its own).
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { freePort } from '../../src/topology/redis-server.ts';

let sb: Running;

beforeAll(async () => {
  // Ports nothing listens on.
  const seeds = [await freePort(), await freePort()].map((p) => `127.0.0.1:${p}`).join(',');
  sb = await startSwitchboard(
    loadConfig({
      REDIS_CLUSTER_NODES: seeds,
      DURABILITY: 'local',
      ROLES: 'api',
      AUTH: 'off',
      PORT: '0',
      WORKSPACES: 'cluster-unreachable',
      DISCOVER_WORKSPACES: 'false',
    }),
    pino({ level: 'silent' }),
  );
});

afterAll(async () => {
  await sb?.stop();
});

describe('a Redis Cluster that cannot be reached', () => {
  it('answers a query and a command 503 redis-unavailable, not never', async () => {
    const began = Date.now();
    const within = <T>(p: Promise<T>) =>
      Promise.race([p, new Promise<'no answer'>((r) => setTimeout(() => r('no answer'), 10_000))]);
    const [query, command] = await Promise.all([
      within(sb.api!.inject({ url: '/v1/workspaces/cluster-unreachable/agents' })),
      within(
        sb.api!.inject({
          method: 'POST',
          url: '/v1/workspaces/cluster-unreachable/agents',
          headers: { 'content-type': 'application/json', 'idempotency-key': 'unreachable-1' },
          payload: JSON.stringify({ id: 'a1', skills: ['English'] }),
        }),
      ),
    ]);
    for (const r of [query, command]) {
      expect(r).not.toBe('no answer');
      if (r === 'no answer') continue;
      expect(r.statusCode, r.body).toBe(503);
      expect((r.json() as { type: string }).type).toBe('/problems/redis-unavailable');
    }
    expect(Date.now() - began).toBeLessThan(8_000);
    const health = await sb.api!.inject({ url: '/health' });
    expect(health.statusCode).toBe(503);
  }, 20_000);
});
