/**
 * A Redis Cluster stops a Lua step midway when the step reaches a key of a slot being moved
 * (MIGRATING) that is not there: one the step itself emptied earlier (a queue's last contact
 * taken out), or one it deletes and writes again. The writes made before stay: a step was not
 * all or nothing while an operator resharded. The projector's step caught the stop as a
 * command's own failure and recorded it refused (`command-failed`), its effects half written; an
 * append forgot expired Idempotency-Key records and then failed. Every step whose keys are one
 * workspace's that could be stopped so (the projector's, the dispatcher's and its clock's, the
 * append) now also declares a key nothing writes, so while the slot is moving Redis refuses the
 * whole step before it runs (TRYAGAIN), and the step runs whole once the move is done; a one-key
 * step runs as before.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FOLD } from '../../src/adapters/http/wait-histogram.ts';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { listAgents } from '../../src/adapters/redis/projection-reads.ts';
import { type RedisClient, runLua } from '../../src/adapters/redis/scripts.ts';
import type { Command } from '../../src/domain/commands.ts';
import { INTERVALS_KEPT_MS, intervalStart } from '../../src/domain/intervals.ts';
import { IntervalProjection } from '../../src/projections/intervals.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { type RedisClusterHandle, startRedisCluster } from '../../src/topology/redis-cluster.ts';
import { slotOwnerId } from '../support/cluster-slots.ts';
import { sendAndSettle } from '../support/projector.ts';

const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

describe('a step while its workspace slot is being moved (cluster)', () => {
  let cluster: RedisClusterHandle | undefined;
  let redis: RedisClient;
  const conns: Redis[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster();
    redis = connectRedis(
      {
        clusterNodes: cluster.nodes.map((n) => `${n.host}:${n.port}`),
        password: cluster.credentials.admin.password,
      },
      { commandTimeout: 5000 },
    );
  }, 60_000);

  afterAll(async () => {
    redis?.disconnect();
    for (const c of conns) c.disconnect();
    await cluster?.stop();
  });

  /** The slot of `ws` set MIGRATING on its master (IMPORTING on another): no key moved yet. */
  async function migrating(ws: string): Promise<() => Promise<void>> {
    const slot = keySlot(workspaceKeys(ws).commands);
    const roles = await cluster!.roles();
    const masters = await Promise.all(
      roles
        .filter((r) => r.role === 'master')
        .map(async (r) => {
          const conn = new Redis({
            host: '127.0.0.1',
            port: r.port,
            password: cluster!.credentials.admin.password,
          });
          conns.push(conn);
          return { conn, id: String(await conn.cluster('MYID')) };
        }),
    );
    const owner = await slotOwnerId(masters[0]!.conn, slot);
    const src = masters.find((m) => m.id === owner)!;
    const dst = masters.find((m) => m.id !== owner)!;
    await dst.conn.cluster('SETSLOT', slot, 'IMPORTING', src.id);
    await src.conn.cluster('SETSLOT', slot, 'MIGRATING', dst.id);
    return async () => {
      await src.conn.cluster('SETSLOT', slot, 'STABLE');
      await dst.conn.cluster('SETSLOT', slot, 'STABLE');
    };
  }

  /** Every key of the workspace with its value, for "nothing changed". */
  async function snapshot(ws: string): Promise<Record<string, string>> {
    const k = workspaceKeys(ws);
    const out: Record<string, string> = {};
    for (const [name, key] of Object.entries(k)) {
      if (typeof key !== 'string' || name === 'workspace' || name === 'prefix') continue;
      const dump = (await redis.dumpBuffer(key).catch(() => null)) as Buffer | null;
      if (dump) out[name] = dump.toString('base64');
    }
    return out;
  }

  it('the projector: a batch whose first command empties the queue and whose second queues again', async () => {
    const ws = `slot-${randomUUID().slice(0, 6)}`;
    const k = workspaceKeys(ws);
    const send = (...c: Command[]) => sendAndSettle(redis, ws, ...c);
    await ensureGroup(redis, ws);
    await send(
      { type: 'RegisterAgent', agentId: 'a1', skills: ['C'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'a1', state: 'available' },
      { type: 'QueueContact', contactId: 'c0', skills: ['B'], priority: 0 },
      { type: 'AbandonContact', contactId: 'c0' },
    );
    // The last ones with Idempotency-Keys, projected and not yet dispatched (the dispatcher's
    // candidates and wake-up still there): every key the projector's step declares exists.
    await appendCommand(redis, {
      workspace: ws,
      idempotencyKey: 'k2',
      command: { type: 'QueueContact', contactId: 'c2', skills: ['B'], priority: 0, maxWaitMs: 600_000 },
    });
    await projectPending(redis, ws);
    await appendCommand(redis, { workspace: ws, command: { type: 'AbandonContact', contactId: 'c2' } });
    await appendCommand(redis, {
      workspace: ws,
      command: { type: 'QueueContact', contactId: 'c3', skills: ['B'], priority: 0 },
    });
    const before = await snapshot(ws);
    // Every key the step declares is there: Redis lets the step start while the slot moves.
    expect(Object.keys(before)).toEqual(
      expect.arrayContaining(['queue', 'idempotency', 'timers', 'ended', 'pools']),
    );
    const stable = await migrating(ws);
    let during: string;
    try {
      during = await projectPending(redis, ws).then(
        () => 'ran',
        (err: Error) => err.message,
      );
      expect(await snapshot(ws), 'nothing written while the slot moves').toEqual(before);
    } finally {
      await stable();
    }
    expect(during).toMatch(/TRYAGAIN|Too many Cluster redirections/);
    // Once the slot is stable again, the step runs whole.
    await projectPending(redis, ws);
    const outcomes = (await redis.xrange(k.outcomes, '-', '+')).map(([, f]) => f.join(' '));
    expect(outcomes.filter((o) => o.includes('command-failed'))).toEqual([]);
    expect(await redis.zrange(k.queue, 0, -1)).toEqual(['c3']);
    expect(JSON.parse((await redis.hget(k.contacts, 'c2'))!).state).toBe('abandoned');
  }, 60_000);

  it('an append: its expired Idempotency-Key records are not forgotten by a step Redis then stops', async () => {
    const ws = `slot-${randomUUID().slice(0, 6)}`;
    const k = workspaceKeys(ws);
    await ensureGroup(redis, ws);
    await appendCommand(redis, {
      workspace: ws,
      idempotencyKey: 'k1',
      command: { type: 'RegisterAgent', agentId: 'a1', skills: ['A'], capacity: 1 },
    });
    await projectPending(redis, ws);
    // Its record past its lifetime: the next append forgets it first, emptying the records.
    await redis.zadd(k.idempotencyExpiry, 1, 'k1');
    const before = await snapshot(ws);
    const stable = await migrating(ws);
    let during: string;
    try {
      during = await appendCommand(redis, {
        workspace: ws,
        idempotencyKey: 'k2',
        command: { type: 'RegisterAgent', agentId: 'a2', skills: ['A'], capacity: 1 },
      }).then(
        () => 'appended',
        (err: Error) => err.message,
      );
      expect(await snapshot(ws), 'nothing written while the slot moves').toEqual(before);
    } finally {
      await stable();
    }
    expect(during).toMatch(/TRYAGAIN|Too many Cluster redirections/);
    await appendCommand(redis, {
      workspace: ws,
      idempotencyKey: 'k2',
      command: { type: 'RegisterAgent', agentId: 'a2', skills: ['A'], capacity: 1 },
    });
    expect(await redis.hexists(k.idempotency, 'k1')).toBe(0);
    expect(await redis.xlen(k.commands)).toBe(2);
  }, 60_000);

  it('a one-key step still runs while the slot moves: only the steps that could stop halfway are guarded', async () => {
    // A one-key step is sent on to its key's node; guarding it too would refuse it for the whole
    // move (the rate limits, the leases, the wait histogram's fold went uncounted or failed).
    const ws = `slot-${randomUUID().slice(0, 6)}`;
    const key = `${workspaceKeys(ws).prefix}waits`;
    await redis.hset(key, 'cursor', 'c0');
    const stable = await migrating(ws);
    try {
      expect(await runLua(redis, FOLD, [key], ['c0', 'c1', 'count', 1])).toBe(1);
    } finally {
      await stable();
    }
    expect(await redis.hgetall(key)).toEqual({ cursor: 'c1', count: '1' });
  }, 60_000);

  it('GET /agents by id still answers while the slot moves: the agent ids read and made unguarded, or the documents read', async () => {
    const ws = `slot-${randomUUID().slice(0, 6)}`;
    await ensureGroup(redis, ws);
    const register = (agentId: string): Command => ({
      type: 'RegisterAgent',
      agentId,
      skills: ['A'],
      capacity: 1,
    });
    for (const id of ['b', 'a', 'c']) await appendCommand(redis, { workspace: ws, command: register(id) });
    await projectPending(redis, ws);
    const stable = await migrating(ws);
    try {
      // Whole: the check's step runs (its three keys all still on the source).
      expect((await listAgents(redis, ws, { limit: 10 })).agents.map((a) => a.id)).toEqual(['a', 'b', 'c']);
      // Not whole (as a version before the index left it): made, or listed from the documents.
      await redis.hdel(workspaceKeys(ws).meta, 'agentIds');
      expect((await listAgents(redis, ws, { limit: 2 })).agents.map((a) => a.id)).toEqual(['a', 'b']);
    } finally {
      await stable();
    }
  }, 60_000);

  it("the intervals' step: a batch ending every contact its hash holds and more counts each once", async () => {
    // A batch of more than 500 ended contacts deletes them 500 at a time; when the first 500 were
    // every contact the hash held, the next deletion met the emptied hash and Redis stopped the
    // step there, the tallies added and the checkpoint not moved: its retry counted them twice.
    const ws = `slot-${randomUUID().slice(0, 6)}`;
    const k = workspaceKeys(ws);
    const start = intervalStart(Date.now());
    const log: StreamEntry[] = [];
    const event = (type: string, data: Record<string, unknown>) =>
      log.push([`${start + 1}-${log.length}`, ['type', type, 'event', JSON.stringify({ type, data })]]);
    for (let i = 0; i < 500; i++) event('ContactQueued', { id: `c${i}`, skills: ['A'], priority: 0 });
    const history = async (_ws: string, after: string, limit: number) => {
      const seq = after === '0-0' ? -1 : Number(after.split('-')[1]);
      return log.slice(seq + 1, seq + 1 + limit);
    };
    // Steps as large as the batch (the bound on a step's writes would cut them below 500).
    const projection = new IntervalProjection(redis, pino({ level: 'silent' }), history, {
      batch: 5000,
      stepWrites: 100_000,
      blockMs: 1000,
      serviceLevelMs: 20_000,
      keptMs: INTERVALS_KEPT_MS,
    });
    expect(await projection.step(ws)).toBe(500);
    expect(await redis.hlen(k.intervalContacts)).toBe(500);
    // The 500 abandoned, then 100 more queued and abandoned within the same batch.
    for (let i = 0; i < 500; i++) event('ContactAbandoned', { contactId: `c${i}` });
    for (let i = 0; i < 100; i++) {
      event('ContactQueued', { id: `n${i}`, skills: ['A'], priority: 0 });
      event('ContactAbandoned', { contactId: `n${i}` });
    }
    const stable = await migrating(ws);
    let during: string;
    try {
      during = await projection.step(ws).then(
        (n) => `applied ${n}`,
        (err: Error) => err.message,
      );
    } finally {
      await stable();
    }
    await projection.applyPending(ws);
    const tallies = await redis.hgetall(`${k.intervalPrefix}${start}`);
    expect({ queued: tallies.queued, abandoned: tallies.abandoned }).toEqual({
      queued: '600',
      abandoned: '600',
    });
    expect(during).toBe('applied 700');
    expect(await redis.exists(k.intervalContacts)).toBe(0);
  }, 60_000);
});
