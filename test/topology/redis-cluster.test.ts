/**
 * The local Redis Cluster launcher: 3 masters + 3 replicas on loopback, AOF on, node timeout 2 s,
 * `cluster_state:ok` everywhere, the least-privilege `haproxy-check` user on every node; and a
 * master killed with SIGKILL is replaced by its replica, with a write acknowledged by WAIT still
 * readable afterwards. Failover time is logged as JSON.
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { waitExit } from '../../src/topology/child-processes.ts';
import {
  HAPROXY_CHECK_USER,
  type RedisClusterHandle,
  startRedisCluster,
} from '../../src/topology/redis-cluster.ts';
import { startRedisServer } from '../../src/topology/redis-server.ts';
import { timed, waitFor } from '../support/wait.ts';

let cluster: RedisClusterHandle;
const metrics: Record<string, number> = {};
/** The default user needs the admin password (replicas log in to their master as `replica`). */
const admin = () => ({ password: cluster.credentials.admin.password });

beforeAll(async () => {
  const t0 = Date.now();
  cluster = await startRedisCluster({ haproxyCheckPassword: 'cluster-check-pw' });
  metrics.startMs = Date.now() - t0;
});

afterAll(async () => {
  console.log(JSON.stringify({ test: 'redis-cluster', ...metrics }));
  await cluster?.stop();
});

describe('startRedisCluster', () => {
  it('runs 3 masters and 3 replicas, cluster_state:ok, AOF on, node timeout 2000', async () => {
    expect(cluster.nodes).toHaveLength(6);
    expect(cluster.nodes.filter((n) => n.role === 'master')).toHaveLength(3);
    expect(cluster.nodes.filter((n) => n.role === 'replica')).toHaveLength(3);
    for (const n of cluster.nodes) {
      expect(n.host).toBe('127.0.0.1');
      const r = new Redis(n.port, n.host, { ...admin(), lazyConnect: true, maxRetriesPerRequest: 1 });
      await r.connect();
      expect(String(await r.cluster('INFO'))).toContain('cluster_state:ok');
      expect(await r.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      expect(await r.config('GET', 'cluster-node-timeout')).toEqual(['cluster-node-timeout', '2000']);
      // Least-privilege check user on every node: AUTH + PING work, nothing else.
      const check = new Redis(n.port, n.host, {
        username: HAPROXY_CHECK_USER,
        password: 'cluster-check-pw',
        enableReadyCheck: false, // the check user may not run INFO
        lazyConnect: true,
        maxRetriesPerRequest: 0,
      });
      await check.connect();
      expect(await check.ping()).toBe('PONG');
      await expect(check.get('sb:{x}:k')).rejects.toThrow(/NOPERM/);
      await expect(check.call('CLUSTER', 'INFO')).rejects.toThrow(/NOPERM/);
      check.disconnect();
      // Without the admin password the default user is refused.
      const anonymous = new Redis(n.port, n.host, {
        enableReadyCheck: false,
        lazyConnect: true,
        maxRetriesPerRequest: 0,
      });
      await anonymous.connect();
      await expect(anonymous.get('sb:{x}:k')).rejects.toThrow(/NOAUTH/);
      anonymous.disconnect();
      r.disconnect();
    }
  });

  it('promotes a replica when a master is killed; an acknowledged write survives', async () => {
    const client = new Cluster(
      cluster.nodes.map(({ host, port }) => ({ host, port })),
      {
        redisOptions: admin(),
        clusterRetryStrategy: () => 100,
      },
    );
    const key = 'sb:{failover}:probe';
    // Write on the master holding the key and wait until its replica acknowledged it.
    const slot = Number(await client.cluster('KEYSLOT', key));
    const slots = await client.cluster('SLOTS');
    const owner = slots.find(([from, to]) => slot >= from && slot <= to);
    const masterPort = owner?.[2]?.[1];
    expect(masterPort).toBeDefined();
    const master = new Redis(Number(masterPort), '127.0.0.1', {
      ...admin(),
      lazyConnect: true,
      maxRetriesPerRequest: 1,
    });
    await master.connect();
    await master.set(key, 'kept');
    expect(await master.call('WAIT', '1', '2000')).toBe(1);
    master.disconnect();
    client.disconnect();

    const idx = cluster.servers.findIndex((s) => s.port === Number(masterPort));
    const victim = cluster.servers[idx];
    if (!victim) throw new Error('master not found');
    const t0 = Date.now();
    victim.kill('SIGKILL');
    // The dead master's port is free: another suite's server may take it (freePort's reservation
    // lasts a minute). A stranger there, a master of nothing, is no node of this cluster.
    expect(await waitExit(victim.process, 10_000)).toBe(true);
    const stranger = await startRedisServer({ port: victim.port });
    onTestFinished(() => stranger.stop());
    let seen = '';
    const { elapsedMs } = await timed(
      waitFor(
        () => `a replica promoted (3 masters again, none of them the dead one); roles seen: ${seen}`,
        async () => {
          const roles = await cluster.roles();
          seen = roles.map((r) => `${r.port} ${r.role}`).join(', ');
          const masters = roles.filter((r) => r.role === 'master');
          return masters.length === 3 && !masters.some((m) => m.port === victim.port);
        },
        { timeoutMs: 40_000, everyMs: 100 },
      ),
    );
    metrics.masterFailoverMs = elapsedMs;
    const survivors = cluster.nodes.filter((n) => n.port !== victim.port);
    await waitFor(
      'cluster_state:ok after failover',
      async () => {
        const r = new Redis(survivors[0]?.port ?? 0, '127.0.0.1', {
          ...admin(),
          lazyConnect: true,
          maxRetriesPerRequest: 0,
        });
        try {
          await r.connect();
          return String(await r.cluster('INFO')).includes('cluster_state:ok');
        } finally {
          r.disconnect();
        }
      },
      { timeoutMs: 20_000, everyMs: 100 },
    );
    metrics.clusterOkAfterKillMs = Date.now() - t0;
    const after = new Cluster(
      survivors.map(({ host, port }) => ({ host, port })),
      { redisOptions: admin() },
    );
    expect(await after.get(key)).toBe('kept');
    after.disconnect();
  }, 90_000);
});
