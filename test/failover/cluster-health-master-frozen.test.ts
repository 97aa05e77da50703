/**
 * One master of a Redis Cluster stops answering (SIGSTOP: a frozen or cut-off host) and no replica
 * takes its slots over (it has none here; on a cluster with replicas, the seconds before the
 * promotion). The workspaces of the other masters are served all along, so the process's health
 * must say so every time it is asked, and its status must name the master that does not answer.
 * The watch used to PING whichever node the cluster client picked for a command with no key: one
 * check in three went to the frozen master and failed, so `/health` turned 503 and back at random
 * (HAProxy, checking every second with fall 2, took every instance out now and then: the healthy
 * masters' workspaces unreachable too), and nothing named the master at fault.
 */
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { RedisWatch } from '../../src/adapters/redis/health-watch.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { type RedisClusterHandle, startRedisCluster } from '../../src/topology/redis-cluster.ts';
import { sleep, waitFor } from '../support/wait.ts';

describe('the health of a Redis Cluster with one master frozen', () => {
  let cluster: RedisClusterHandle | undefined;
  let redis: RedisClient | undefined;
  let watch: RedisWatch | undefined;
  let frozen = -1;

  beforeAll(async () => {
    cluster = await startRedisCluster({ replicasPerMaster: 0 });
    const { app } = cluster.credentials;
    redis = connectRedis({
      clusterNodes: cluster.nodes.map((n) => `${n.host}:${n.port}`),
      username: app.user,
      password: app.password,
    });
    // Connected to every master before the freeze.
    await waitFor('the cluster client connected to every master', async () => {
      if ((redis as Cluster).status !== 'ready') return undefined;
      const masters = (redis as Cluster).nodes('master');
      return masters.length === 3 ? masters : undefined;
    });
  });

  afterAll(async () => {
    watch?.stop();
    redis?.disconnect();
    if (frozen >= 0) cluster?.servers[frozen]?.kill('SIGCONT');
    await cluster?.stop();
  }, 60_000);

  it('stays reachable at every check while the other masters answer, and names the frozen one', async () => {
    expect(redis).toBeInstanceOf(Cluster);
    // Checks every 50 ms: a check that meets the frozen master waits out its 1-s limit.
    watch = new RedisWatch(redis!, 'cluster', 50);
    watch.start();
    await waitFor('a first check', async () => watch!.status.reachable || undefined);
    frozen = cluster!.nodes.findIndex((n) => n.role === 'master');
    const victim = cluster!.nodes[frozen]!;
    cluster!.servers[frozen]!.kill('SIGSTOP');

    // Past the 5 s after which the client drops a connection that hears nothing (client.ts): the
    // master is still named then, from the slot map.
    const unreachable: boolean[] = [];
    const named: boolean[] = [];
    const name = `${victim.host}:${victim.port}`;
    const ended = Date.now() + 8_000;
    while (Date.now() < ended) {
      unreachable.push(!watch.status.reachable || watch.pausedReason !== undefined);
      named.push((watch.status as { unreachable?: string[] }).unreachable?.includes(name) === true);
      await sleep(50);
    }
    expect(unreachable.filter(Boolean).length, 'checks that said Redis was unreachable').toBe(0);
    const first = named.indexOf(true);
    expect(first, 'the frozen master named').toBeGreaterThanOrEqual(0);
    expect(named.slice(first).filter((n) => !n).length, 'checks since that did not name it').toBe(0);
    expect((watch.status as { unreachable?: string[] }).unreachable).toEqual([name]);
  });
});
