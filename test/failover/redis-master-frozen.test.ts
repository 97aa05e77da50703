/**
 * The Redis master holding a workspace stops answering without closing its connections (SIGSTOP:
 * a frozen or cut-off host, where no connection is refused or reset). A local Redis Cluster (3
 * masters + 3 replicas, cluster-node-timeout 2000) promotes its replica within seconds; the
 * Switchboard processes (an API, a projector, a dispatcher; DURABILITY=local, as the promoted
 * replica has no replica of its own while the old master is frozen) must find the new master by
 * themselves: a command on the workspace answers 201 again, the live feed (open on the API
 * before the freeze) carries its event, and a contact queued then is assigned. Without a periodic read of the slot map the clients never
 * heard of the failover (no MOVED, no connection error) and every command of the workspace
 * answered 503 for as long as the old master stayed frozen.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { type RedisClusterHandle, startRedisCluster } from '../../src/topology/redis-cluster.ts';
import { killAllProcesses, startProcess } from '../support/processes.ts';
import { sleep, waitFor } from '../support/wait.ts';

const execFileP = promisify(execFile);
// cluster-key-slot (ioredis' own slot function) ships no type declarations.
const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;
type SlotRange = [from: number, to: number, master: [host: string, port: number, id: string]];

/** How long after the promotion the workspace must answer 201 again. */
const RECOVERY_LIMIT_MS = 12_000;

describe('the Redis master of a workspace frozen (SIGSTOP), its replica promoted', () => {
  let cluster: RedisClusterHandle | undefined;
  let admin: RedisClient | undefined;
  afterAll(async () => {
    admin?.disconnect();
    await killAllProcesses();
    for (const s of cluster?.servers ?? []) s.kill('SIGCONT');
    await cluster?.stop();
  }, 60_000);

  it('serves the workspace again from the promoted replica: commands, live feed and routing', async () => {
    cluster = await startRedisCluster({});
    const role = async (port: number) =>
      (
        await execFileP('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'ROLE'], {
          timeout: 5_000,
          env: { ...process.env, ...cluster!.cliEnv },
        })
      ).stdout.split('\n')[0];
    const seeds = cluster.nodes.map((n) => `${n.host}:${n.port}`);
    admin = connectRedis({ clusterNodes: seeds, password: cluster.credentials.admin.password });
    const slots = (await admin.cluster('SLOTS')) as unknown as SlotRange[];
    const masterOf = (slot: number) => slots.find(([from, to]) => slot >= from && slot <= to)![2];
    // A workspace on the first master; that master's replica, once it has joined.
    const [, victimPort, victimId] = slots[0]![2];
    let ws = '';
    do ws = `frozen-${randomUUID().slice(0, 8)}`;
    while (masterOf(keySlot(workspaceKeys(ws).commands))[1] !== victimPort);
    const replicaPort = await waitFor(
      'a replica of the victim master',
      async () => {
        const line = String(await admin!.cluster('NODES'))
          .split('\n')
          .find((l) => l.split(' ')[3] === victimId && l.includes('slave'));
        return line ? Number(/:(\d+)@/.exec(line)?.[1]) : undefined;
      },
      { timeoutMs: 15_000 },
    );

    const { app } = cluster.credentials;
    const redis = {
      env: { REDIS_CLUSTER_NODES: seeds.join(','), REDIS_USERNAME: app.user, REDIS_PASSWORD: app.password },
    };
    const env = { WORKSPACES: ws, DURABILITY: 'local' };
    const [api] = await Promise.all([
      startProcess({ roles: ['api'], redis, env, name: 'api' }),
      startProcess({ roles: ['projector'], redis, env, name: 'projector' }),
      startProcess({ roles: ['dispatcher'], redis, env, name: 'dispatcher' }),
    ]);
    const base = `${api!.url}/v1/workspaces/${ws}`;
    const register = async (id: string) => {
      const res = await fetch(`${base}/agents`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `register-${id}` },
        body: JSON.stringify({ id, skills: ['English'] }),
        signal: AbortSignal.timeout(8_000),
      }).catch(() => undefined);
      return res?.status ?? 0;
    };
    expect(await register('before')).toBe(201);

    // The live feed, open before the freeze.
    const seen: string[] = [];
    const socket = new WebSocket(`${base.replace('http', 'ws')}/events/live?heartbeat=0`);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    socket.on('message', (m) => {
      const e = JSON.parse(String(m)) as { type?: string; data?: { id?: string } };
      if (e.type === 'AgentRegistered' && e.data?.id) seen.push(e.data.id);
    });

    cluster.servers.find((s) => s.port === victimPort)!.kill('SIGSTOP');
    await waitFor('the replica to be promoted', async () => (await role(replicaPort)) === 'master', {
      timeoutMs: 20_000,
      everyMs: 200,
    });
    const promotedAt = Date.now();
    const answers: number[] = [];
    let answer = await register('after');
    answers.push(answer);
    while (answer !== 201 && Date.now() - promotedAt < RECOVERY_LIMIT_MS) {
      await sleep(250);
      answer = await register('after');
      answers.push(answer);
    }
    expect(answer, `answers after the promotion: ${answers.join(' ')}\n${api!.logText()}`).toBe(201);
    await waitFor('the live feed to carry its event', () => seen.includes('after'), { timeoutMs: 5_000 });
    socket.close();
    // Routing resumes too: the dispatcher's blocking connection moved with the others.
    const send = (path: string, body: unknown, key: string) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(8_000),
      }).then((r) => r.status);
    expect(await send('/agents/after/state', { state: 'available' }, 'available-after')).toBe(200);
    expect(await send('/contacts', { id: 'c-after', skills: ['English'] }, 'queue-c-after')).toBe(201);
    await waitFor(
      'the contact queued after the promotion to be assigned',
      async () =>
        ((await (await fetch(`${base}/contacts/c-after`)).json()) as { state?: string }).state === 'assigned',
      { timeoutMs: 10_000, everyMs: 100 },
    );
    console.log(
      JSON.stringify({ suite: 'redis-master-frozen', recoveredMs: Date.now() - promotedAt, answers }),
    );
  }, 60_000);
});
