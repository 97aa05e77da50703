/**
 * One node of a Redis Cluster given as a single Redis (REDIS_URL instead of REDIS_CLUSTER_NODES).
 * A client of one node cannot use a cluster: every command on a key of another node's slots fails
 * with MOVED, so the workspaces of the other nodes answer 503 "Redis is not reachable right now"
 * for ever. The process used to say `running` and `/health` 200 all the same, with nothing naming
 * the mistake; it says `paused` now, with the reason and what to set instead.
 */
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { type RedisClusterHandle, startRedisCluster } from '../../src/topology/redis-cluster.ts';
import { loginUrl } from '../../src/topology/redis-users.ts';
import { waitFor } from '../support/wait.ts';

describe('a node of a Redis Cluster given as REDIS_URL', () => {
  let cluster: RedisClusterHandle | undefined;
  let sb: Running | undefined;
  afterAll(async () => {
    await sb?.stop();
    await cluster?.stop();
  }, 60_000);

  it('is reported paused, naming REDIS_CLUSTER_NODES, not running', async () => {
    cluster = await startRedisCluster({ replicasPerMaster: 0 });
    const node = cluster.nodes.find((n) => n.role === 'master')!;
    sb = await startSwitchboard(
      loadConfig({
        REDIS_URL: loginUrl(cluster.credentials.app, node.host, node.port),
        ROLES: 'api',
        AUTH: 'off',
        PORT: '0',
        DURABILITY: 'local',
        WORKSPACES: 'cluster-node-url',
        DISCOVER_WORKSPACES: 'false',
      }),
      pino({ level: 'silent' }),
    );
    // Past the first check (the state before it is "not checked yet").
    const status = await waitFor('a first check of Redis', async () => {
      const s = (await sb!.api!.inject({ url: '/status' })).json() as {
        state: string;
        reason?: string;
        redis: { error?: string };
      };
      return s.redis.error === 'not checked yet' ? undefined : s;
    });
    expect(status.state).toBe('paused');
    expect(status.reason).toMatch(/node of a Redis Cluster.*REDIS_CLUSTER_NODES/);
    const health = await sb.api!.inject({ url: '/health' });
    expect(health.statusCode).toBe(503);
    expect((health.json() as { detail: string }).detail).toMatch(/REDIS_CLUSTER_NODES/);
  });
});
