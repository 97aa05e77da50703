/**
 * On a Redis Cluster, the archiver and the forgetting of finished contacts read Redis's clock
 * (TIME) on the master that holds the workspace's slot, the clock its Lua steps and stream ids
 * use, never on another master: with clocks apart between hosts, a retention or archive decision
 * would otherwise be taken against another host's clock. Counted by each master's
 * `INFO commandstats` (cmdstat_time) over several passes, each of whose reads a client that picks
 * a node at random would send to another master two times in three.
 */
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { forgetFinishedContacts } from '../../src/archive/forgetting.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { type RedisClusterHandle, startRedisCluster } from '../../src/topology/redis-cluster.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';

const log = pino({ level: 'silent' });

describe("Redis's clock read on the workspace's own master (a cluster)", () => {
  const tempDir = suiteTempDirs();
  let cluster: RedisClusterHandle;
  let redis: RedisClient;
  /** One admin connection per master, by port. */
  const masters = new Map<number, Redis>();

  beforeAll(async () => {
    cluster = await startRedisCluster({ replicasPerMaster: 0 });
    const { app, admin } = cluster.credentials;
    const nodes = cluster.nodes.filter((x) => x.role === 'master');
    for (const n of nodes)
      masters.set(n.port, new Redis(n.port, n.host, { username: admin.user, password: admin.password }));
    redis = connectRedis({
      clusterNodes: nodes.map((n) => `${n.host}:${n.port}`),
      username: app.user,
      password: app.password,
    });
  }, 60_000);

  afterAll(async () => {
    redis?.disconnect();
    for (const m of masters.values()) m.disconnect();
    await cluster?.stop();
  }, 60_000);

  /** The port of the master that holds `key`'s slot. */
  async function ownerOf(key: string): Promise<number> {
    const probe = masters.values().next().value!;
    const slot = Number(await probe.call('CLUSTER', 'KEYSLOT', key));
    const ranges = (await probe.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    return ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
  }

  async function resetStats(): Promise<void> {
    for (const m of masters.values()) await m.call('CONFIG', 'RESETSTAT');
  }

  /** TIME calls per master since the last reset, by port. */
  async function timeCalls(): Promise<Record<number, number>> {
    const out: Record<number, number> = {};
    for (const [port, m] of masters)
      out[port] = Number(/^cmdstat_time:calls=(\d+)/m.exec(await m.info('commandstats'))?.[1] ?? 0);
    return out;
  }

  function expectOnlyOn(what: string, owner: number, calls: Record<number, number>): void {
    expect
      .soft(calls[owner], `${what}: TIME on the workspace's master ${owner}: ${JSON.stringify(calls)}`)
      .toBeGreaterThan(0);
    for (const [port, n] of Object.entries(calls))
      if (Number(port) !== owner)
        expect.soft(n, `${what}: TIME on master ${port}, not the workspace's ${owner}`).toBe(0);
  }

  it('an archive pass and forgetting passes call TIME on no master but the one of the workspace', async () => {
    expect(masters.size).toBe(3);
    const ws = `clock-${Date.now().toString(36)}`;
    const owner = await ownerOf(workspaceKeys(ws).commands);
    await writeLog(redis, ws, { events: 600, agents: 8, seed: 3 });

    // Archived in segments of 50 (one TIME read per step of each stream, a dozen or more).
    await resetStats();
    const archiver = new Archiver(redis, new DiskArchive(await tempDir('sb-clock-')), log, {
      retention: { count: 10 },
      segmentEntries: 50,
      everyMs: 50,
    });
    expect(await archiver.drain(ws)).toBeGreaterThan(0);
    expectOnlyOn('archive pass', owner, await timeCalls());

    // Ten forgetting passes (one TIME read each); a day's retention forgets nothing.
    await resetStats();
    for (let i = 0; i < 10; i++) expect(await forgetFinishedContacts(redis, ws, 86_400_000)).toBe(0);
    expectOnlyOn('forgetting passes', owner, await timeCalls());
  }, 60_000);
});
