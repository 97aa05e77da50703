/**
 * The Redis master holding a workspace dies. A local Redis Cluster (3 masters + 3 replicas,
 * cluster-node-timeout 2000) and Switchboard processes on it (REDIS_CLUSTER_NODES; DURABILITY is
 * `replicated`, the cluster default: a command is acknowledged only once a replica holds it).
 * Two workspaces: one whose slot (`sb:{ws}:commands`, computed with cluster-key-slot and checked
 * with CLUSTER KEYSLOT) is on the victim master, one on another master as a control. The victim
 * is the master that holds none of the global keys (`sb:workspaces`, ...), so the control shows
 * what a workspace on a healthy master sees. Under load the victim's redis-server is SIGKILLed
 * and nobody acts: its replica is promoted and routing resumes; the cluster's supervisor (as
 * the topology launcher runs it) starts the killed node again on its port with its directory
 * once its slots have moved, it rejoins as a replica of the promoted node, and replicated
 * acknowledgements work again. Meanwhile commands on the victim's slot are answered 503 (`not-replicated`, or Redis
 * unreachable) and the load driver retries them with the same Idempotency-Key within a bounded
 * time.
 *
 * Proves: for every command ACKNOWLEDGED (2xx) nothing is lost and the guarantees (a)-(e) of the
 * audit hold in both workspaces; no client request fails after its retries; the live feed shows
 * every assignment of the final log. Assignments the feed showed that the failover rolled back
 * (unreplicated, never acknowledged) are counted, and only completions of those may be rejected.
 * Reports (one JSON line) promotion and rejoin times, the time until traffic resumed (first 2xx
 * after the kill, longest gap between 2xx answers), failed and retried requests.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { globalKeys, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { type RedisClusterHandle, startRedisCluster } from '../../src/topology/redis-cluster.ts';
import {
  type AuditReport,
  auditWorkspace,
  LoadDriver,
  positionMs,
  trafficGap,
  waitProjectorSettled,
} from '../support/audit.ts';
import { killAllProcesses, type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { sleep, waitFor } from '../support/wait.ts';

const execFileP = promisify(execFile);
// cluster-key-slot (ioredis' own slot function) ships no type declarations.
const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

const CONTACTS_PER_WS = 300;
const AGENTS_PER_WS = 15;
const RATE_PER_S_PER_WS = 20;
// The load takes about 15 s on a quiet machine; the bound leaves room for a loaded one (it stopped
// short of every contact at 25 s with a load average of 14) and still ends a stuck run.
const LOAD_DEADLINE_MS = 50_000;
const KILL_AT_MS = 5_000;

type SlotNode = [host: string, port: number, id: string, ...rest: unknown[]];
type SlotRange = [from: number, to: number, master: SlotNode, ...replicas: SlotNode[]];

/** redis-cli logs in as the cluster's admin (REDISCLI_AUTH). */
let cliEnv: Record<string, string> = {};

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await execFileP('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    timeout: 5_000,
    env: { ...process.env, ...cliEnv },
  });
  return stdout;
}

const roleOf = async (port: number): Promise<string | undefined> =>
  (await cli(port, 'ROLE').catch(() => '')).split('\n')[0]?.trim() || undefined;

describe('the Redis master of a workspace SIGKILLed (cluster, replicated durability)', () => {
  const supervision: string[] = [];
  let stopping = false;
  let cluster: RedisClusterHandle | undefined;
  let redis: RedisClient;
  let processes: SwitchboardProcess[] = [];
  let victimPort = 0;
  let victimIndex = -1;
  let replicaPort = 0;
  let victimWs = '';
  let controlWs = '';

  beforeAll(async () => {
    // Supervised as the topology launcher runs it: a dead node is started again, unattended.
    cluster = await startRedisCluster({
      supervise: { say: (line) => supervision.push(`${Date.now()} ${line}`), stopping: () => stopping },
    });
    cliEnv = cluster.cliEnv;
    const seeds = cluster.nodes.map((n) => `${n.host}:${n.port}`);
    // The test reads the slot map and nodes as the admin; Switchboard logs in as its ACL user.
    redis = connectRedis({ clusterNodes: seeds, password: cluster.credentials.admin.password });
    const { app } = cluster.credentials;

    // The slot map: the victim is a master that holds none of the global keys.
    const slots = (await redis.cluster('SLOTS')) as unknown as SlotRange[];
    // CLUSTER SLOTS leaves out replicas that have not reported a replication offset yet (a fresh
    // cluster with no writes): take each master's replica from CLUSTER NODES.
    // A replica may still be joining right after the cluster is made: wait until every master has one.
    const readNodes = async () =>
      String(await redis.cluster('NODES'))
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => l.split(' '));
    const mastersWithReplica = (lines: string[][]) =>
      new Set(lines.filter((f) => f[2]?.includes('slave') && f[3] !== '-').map((f) => f[3])).size;
    const masterCount = new Set(slots.map(([, , m]) => m[2])).size;
    const { value: nodeLines } = await waitFor(
      () => `a replica for each of the ${masterCount} masters in CLUSTER NODES`,
      async () => {
        const lines = await readNodes();
        return mastersWithReplica(lines) >= masterCount ? { value: lines } : undefined;
      },
      { timeoutMs: 15_000, everyMs: 100 },
    );
    const masterOf = (slot: number) => {
      const range = slots.find(([from, to]) => slot >= from && slot <= to);
      if (!range) throw new Error(`slot ${slot} is not served`);
      const [, , [, port, id]] = range;
      const replica = nodeLines.find((f) => f[3] === id && f[2]?.includes('slave'));
      return { master: port, replica: Number(/:(\d+)@/.exec(replica?.[1] ?? '')?.[1] ?? 0) };
    };
    const globalSlots = Object.values(globalKeys).map(keySlot);
    const busy = new Set(globalSlots.map((s) => masterOf(s).master));
    const masters = [...new Set(slots.map(([, , m]) => m[1]))];
    victimPort = masters.find((p) => !busy.has(p)) ?? masters[0]!;
    victimIndex = cluster.servers.findIndex((s) => s.port === victimPort);
    const slotOfWs = (ws: string) => keySlot(workspaceKeys(ws).commands);
    const pick = (want: (port: number) => boolean) => {
      for (let i = 0; i < 10_000; i++) {
        const ws = `rp-${randomUUID().slice(0, 8)}`;
        if (want(masterOf(slotOfWs(ws)).master)) return ws;
      }
      throw new Error('no workspace name found for the wanted master');
    };
    victimWs = pick((p) => p === victimPort);
    controlWs = pick((p) => p !== victimPort);
    replicaPort = masterOf(slotOfWs(victimWs)).replica;
    expect(replicaPort, 'the victim master has a replica').toBeGreaterThan(0);
    for (const ws of [victimWs, controlWs]) {
      expect(
        await redis.cluster('KEYSLOT', workspaceKeys(ws).commands),
        'cluster-key-slot agrees with Redis',
      ).toBe(slotOfWs(ws));
    }

    const env = { WORKSPACES: `${victimWs},${controlWs}`, DURABILITY: 'replicated' };
    const redisEnv = {
      env: { REDIS_CLUSTER_NODES: seeds.join(','), REDIS_USERNAME: app.user, REDIS_PASSWORD: app.password },
    };
    processes = await Promise.all([
      startProcess({ roles: ['api'], redis: redisEnv, env, name: 'api-1' }),
      startProcess({ roles: ['api'], redis: redisEnv, env, name: 'api-2' }),
      startProcess({ roles: ['projector'], redis: redisEnv, env, name: 'projector' }),
      startProcess({ roles: ['dispatcher'], redis: redisEnv, env, name: 'dispatcher' }),
    ]);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop().catch(() => undefined)));
    await killAllProcesses();
    redis?.disconnect();
    stopping = true;
    await cluster?.stop();
  }, 60_000);

  it('loses no acknowledged command and keeps every guarantee', async () => {
    const apiUrls = processes.filter((p) => p.url).map((p) => p.url!);
    const retry = { maxAttempts: 40, retryBudgetMs: 30_000, requestTimeoutMs: 8_000 };
    const [victimLoad, controlLoad] = [victimWs, controlWs].map(
      (ws) =>
        new LoadDriver({
          apiUrls,
          ws,
          contacts: CONTACTS_PER_WS,
          agents: AGENTS_PER_WS,
          ratePerS: RATE_PER_S_PER_WS,
          deadlineMs: LOAD_DEADLINE_MS,
          ...retry,
        }),
    ) as [LoadDriver, LoadDriver];
    await Promise.all([victimLoad.prepare(), controlLoad.prepare()]);

    // Mid-run: SIGKILL the victim master; nobody acts (the supervisor brings it back).
    const measured: Record<string, number | null> = {};
    let killedAt = 0;
    const failover = sleep(KILL_AT_MS).then(async () => {
      const victim = cluster!.servers[victimIndex]!;
      const killed = victim.process;
      expect(await roleOf(victimPort)).toBe('master');
      killedAt = Date.now();
      victim.kill('SIGKILL');
      await new Promise<void>((r) =>
        killed.exitCode !== null || killed.signalCode !== null ? r() : killed.once('exit', () => r()),
      );
      const applied = waitFor(
        `a command appended after the kill applied in ${victimWs}`,
        async () =>
          positionMs((await redis.hget(workspaceKeys(victimWs).meta, 'applied')) ?? '0-0') > killedAt,
        { timeoutMs: 40_000, everyMs: 50 },
      ).then(() => {
        measured.victimFirstApplyAfterKillMs = Date.now() - killedAt;
      });
      const assigned = waitFor(
        `an assignment after the kill in ${victimWs}`,
        () => victimLoad.follower.seenAfter(killedAt),
        { timeoutMs: 40_000, everyMs: 20 },
      ).then(() => {
        measured.victimFirstAssignmentAfterKillMs = Date.now() - killedAt;
      });
      await waitFor('the replica promoted', async () => (await roleOf(replicaPort)) === 'master', {
        timeoutMs: 20_000,
        everyMs: 50,
      });
      measured.promotedMs = Date.now() - killedAt;
      await waitFor(
        'the killed node back as a replica with its link up',
        async () =>
          (await roleOf(victimPort)) === 'slave' &&
          /master_link_status:up/.test(await cli(victimPort, 'INFO', 'replication')) &&
          /master_port:(\d+)/.exec(await cli(victimPort, 'INFO', 'replication'))?.[1] === String(replicaPort),
        { timeoutMs: 30_000, everyMs: 100 },
      );
      measured.rejoinedAfterKillMs = Date.now() - killedAt;
      // The supervisor takes the new process as its handle once its start resolves, which can be
      // a moment after the node already answers as a replica (seen once in a fresh-clone run).
      await waitFor('the supervisor holding the restarted process', () => victim.process !== killed, {
        timeoutMs: 5_000,
        everyMs: 20,
      }).catch(() => undefined);
      expect(victim.process, 'a new redis-server process').not.toBe(killed);
      await Promise.all([applied, assigned]);
    });

    const [victimRun, controlRun] = await Promise.all([victimLoad.run(), controlLoad.run()]);
    await failover;
    await Promise.all(
      [victimLoad, controlLoad].map((l) =>
        l.quiesce(redis, 40_000).catch((err: Error) => {
          const role = l === victimLoad ? 'victim' : 'control';
          const workers = processes
            .filter((p) => !p.url)
            .map((p) => p.logText().split('\n').slice(-12).join('\n'));
          throw new Error(`${role} workspace: ${err.message}\n${workers.join('\n')}`);
        }),
      ),
    );
    victimLoad.stop();
    controlLoad.stop();

    const audits: AuditReport[] = [];
    const rolledBack: Record<string, number> = {};
    for (const load of [victimLoad, controlLoad]) {
      const ws = load.opts.ws;
      // Assignments the feed showed that are not in the final log: made on the old master and
      // lost with it (never acknowledged to anyone). Only completions of those may be refused.
      const finalEvents = new Set(
        ((await redis.xrange(workspaceKeys(ws).events, '-', '+')) as [string, string[]][]).map(([id]) => id),
      );
      const lostSeen = load.follower.seen.filter((e) => !finalEvents.has(e.position));
      const lostContacts = new Set(lostSeen.map((e) => String((e.data as { contactId: string }).contactId)));
      rolledBack[ws] = lostSeen.length;
      const audit = await auditWorkspace(redis, ws, load.acknowledged.keys(), {
        allowRejected: (r) =>
          r.command === 'CompleteContact' && r.target !== undefined && lostContacts.has(r.target),
      });
      audits.push(audit);
      expect(load.follower.duplicates, `${ws}: duplicates on the live feed`).toBe(0);
      const seen = new Set(load.follower.seen.map((e) => e.position));
      expect(
        audit.assignmentPositions.filter((p) => !seen.has(p)),
        `${ws}: assignments of the final log the feed never showed`,
      ).toEqual([]);
      const refused = load.client.failures.filter(
        (f) => !lostContacts.has(/^\/contacts\/([^/]+)\/complete .*: 409 /.exec(f)?.[1] ?? ''),
      );
      expect(refused, `${ws}: requests that failed`).toEqual([]);
      expect(load.client.failed, `${ws}: failed client requests after retries`).toBe(0);
      expect(load.unanswered).toEqual([]);
      expect(load.acknowledged.size).toBe(CONTACTS_PER_WS);
      expect(load.completedOk.size).toBe(audit.assignments);
      await waitProjectorSettled(redis, ws);
    }
    expect(rolledBack[controlWs], 'nothing rolled back on the healthy master').toBe(0);

    // Redis moving slots is "storage unavailable, retry" (503), never an internal error (500).
    for (const load of [victimLoad, controlLoad])
      expect(load.client.statuses['500'] ?? 0, 'answers 500').toBe(0);
    const victimGap = trafficGap(victimLoad.client.okAt, killedAt, killedAt + 30_000);
    const controlGap = trafficGap(controlLoad.client.okAt, killedAt, killedAt + 30_000);
    console.log(
      JSON.stringify({
        suite: 'failover/redis-primary',
        restart: 'unattended (the cluster supervisor, src/topology/supervisor.ts)',
        supervision,
        victim: {
          ws: victimWs,
          master: victimPort,
          replica: replicaPort,
          slot: keySlot(workspaceKeys(victimWs).commands),
        },
        ...measured,
        victimFirstOkAfterKillMs: victimGap.firstOkAfterMs,
        victimLongestGapMs: victimGap.longestGapMs,
        controlLongestGapMs: controlGap.longestGapMs,
        failedRequests: victimLoad.client.failed + controlLoad.client.failed,
        retriedRequests: victimLoad.client.retriedRequests + controlLoad.client.retriedRequests,
        retries: victimLoad.client.retries + controlLoad.client.retries,
        rolledBackAssignmentsSeen: rolledBack,
        rejected: Object.fromEntries(audits.map((a) => [a.ws, a.rejected.length])),
        victimLoad: { ...victimLoad.summary(), loadMs: victimRun.loadMs },
        controlLoad: { ...controlLoad.summary(), loadMs: controlRun.loadMs },
      }),
    );
  }, 150_000);
});
