/**
 * audit, rebuild and keys given one node of a Redis Cluster as their Redis (`--redis-url` or
 * REDIS_URL, where `--cluster-nodes` or REDIS_CLUSTER_NODES was meant) failed on a bare "MOVED
 * <slot> <node>" for a workspace of another node's slots, or went on with that node's keys alone.
 * They now ask the Redis at connect whether it is a node of a cluster, and exit 2 saying so and
 * which option or variable takes the cluster's nodes.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { type RedisClusterHandle, startRedisCluster } from '../../src/topology/redis-cluster.ts';
import { loginUrl } from '../../src/topology/redis-users.ts';
import { runCli } from './run-cli.ts';

describe('a node of a Redis Cluster given to a tool as a single Redis', () => {
  let cluster: RedisClusterHandle | undefined;
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it('audit, rebuild and keys exit 2 naming the cluster and --cluster-nodes / REDIS_CLUSTER_NODES', async () => {
    cluster = await startRedisCluster({ replicasPerMaster: 0 });
    const workspace = 'node-url';
    // A master that does not hold the workspace's slot: a client of it alone gets MOVED there.
    const first = cluster.nodes[0]!;
    const admin = new Redis({
      host: first.host,
      port: first.port,
      username: cluster.credentials.admin.user,
      password: cluster.credentials.admin.password,
    });
    const slot = (await admin.call('CLUSTER', 'KEYSLOT', workspaceKeys(workspace).commands)) as number;
    const ranges = (await admin.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    await admin.quit();
    const owner = ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
    const node = cluster.nodes.find((n) => n.role === 'master' && n.port !== owner)!;
    const url = loginUrl(cluster.credentials.app, node.host, node.port);
    const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: url };
    delete env.VITEST;
    delete env.REDIS_CLUSTER_NODES;
    const [audit, rebuild, keys] = await Promise.all([
      runCli('audit', ['--workspace', workspace, '--redis-url', url]),
      runCli('rebuild', ['--workspace', workspace, '--redis-url', url]),
      runCli('keys', ['list', '--workspace', workspace], env),
    ]);
    const shown = `redis://${cluster.credentials.app.user}:\\S+@${node.host}:${node.port}`;
    for (const [tool, run] of Object.entries({ audit, rebuild })) {
      expect(run.stderr, tool).toMatch(
        new RegExp(
          `^${tool}: ${shown} is a node of a Redis Cluster \\(cluster_enabled:1\\), not a single Redis: .*; give the cluster's nodes with --cluster-nodes host:port,\\.\\.\\. \\(or REDIS_CLUSTER_NODES\\) instead of --redis-url$`,
          'm',
        ),
      );
      expect(run.code, `${tool}: ${run.stderr}`).toBe(2);
    }
    expect(keys.stderr).toMatch(
      new RegExp(
        `^keys: ${shown} is a node of a Redis Cluster .*; set REDIS_CLUSTER_NODES to the cluster's nodes, host:port,\\.\\.\\. \\(or give --cluster-nodes\\) instead of REDIS_URL$`,
        'm',
      ),
    );
    expect(keys.code, keys.stderr).toBe(2);
  }, 60_000);
});
