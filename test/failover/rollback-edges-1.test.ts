/**
 * Redis comes back with less than it acknowledged: a redis-server persisting to an RDB file only is
 * snapshotted (SAVE) at a point A, Switchboard goes on (agents, contacts, assignments, a workspace
 * made, a live feed open), then redis-server is SIGKILLed and started again on the same port and
 * directory: it loads A, everything after A is gone, while the Switchboard process (every role)
 * keeps running. The last event lost lies ahead of the clock of the Redis that comes back (a
 * failover to a host whose clock is behind). What a user saw: the feed opened before the loss
 * received nothing more (the instance's tail read on after the lost position, and every event
 * appended since lay below it), and nothing said why. Now the tail moves back to the log's end,
 * logging what happened, and the feed receives the events made after the loss. Also: the process
 * serves again without a restart; a feed resumed from a lost position is refused with
 * `/problems/position-ahead` while the log has not passed it; a command lost retried with its
 * Idempotency-Key is applied once; the workspace made after A works again; the auditor finds
 * nothing wrong with the log.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { type RedisServerHandle, startRedisServer } from '../../src/topology/redis-server.ts';
import { killAllProcesses, type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = 'rollback';
const WS2 = 'rollbacknew';

interface Envelope {
  type: string;
  position: string;
  data: Record<string, unknown>;
}

describe('Redis restarted from an older snapshot under running processes', () => {
  let dir: string;
  let server: RedisServerHandle;
  let redis: RedisClient;
  let sb: SwitchboardProcess;
  const feed: Envelope[] = [];
  let socket: WebSocket;

  const base = () => `${sb.url}/v1/workspaces/${WS}`;
  const send = async (p: string, body: unknown, key: string) => {
    const r = await fetch(`${base()}${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(body),
    });
    return { status: r.status, body: (await r.json().catch(() => null)) as Record<string, unknown> | null };
  };
  const base2 = () => `${sb.url}/v1/workspaces/${WS2}`;
  const send2 = async (p: string, body: unknown, key: string) => {
    const r = await fetch(`${base2()}${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(body),
    });
    return { status: r.status, body: (await r.json().catch(() => null)) as Record<string, unknown> | null };
  };
  const put = async (p: string, body: unknown, key: string) => {
    const r = await fetch(`${base()}${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(body),
    });
    return { status: r.status, body: (await r.json().catch(() => null)) as Record<string, unknown> | null };
  };
  const assignedTo = (contactId: string) =>
    feed.find((e) => e.type === 'AssignmentMade' && e.data.contactId === contactId)?.data.agentId;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-rollback-'));
    server = await startRedisServer({ dataDir: dir });
    redis = connectRedis({ url: server.url });
    sb = await startProcess({
      roles: 'api,projector,dispatcher',
      redisUrl: server.url,
      env: { LOG_LEVEL: 'info' },
    });
  }, 30_000);

  afterAll(async () => {
    socket?.close();
    await killAllProcesses();
    redis?.disconnect();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves again, delivers new events, refuses lost positions, and the log audits clean', async () => {
    for (const id of ['a1', 'a2', 'a3']) {
      expect((await send('/agents', { id, skills: ['English'] }, `reg-${id}`)).status).toBe(201);
    }
    socket = new WebSocket(`${base().replace('http', 'ws')}/events/live?heartbeat=0`);
    socket.on('message', (m) => {
      const e = JSON.parse(String(m)) as Envelope;
      if (e.type) feed.push(e);
    });
    await new Promise((r, j) => socket.once('open', r).once('error', j));
    expect((await put('/agents/a1/state', { state: 'available' }, 'av-a1')).status).toBe(200);
    expect((await send('/contacts', { id: 'c1', skills: ['English'] }, 'q-c1')).status).toBe(201);
    await waitFor('c1 assigned', () => assignedTo('c1'), { timeoutMs: 10_000 });

    // Point A.
    await redis.save();
    const lastAtA = feed[feed.length - 1]!.position;

    // After A: lost with the restart.
    expect((await put('/agents/a2/state', { state: 'available' }, 'av-a2')).status).toBe(200);
    expect((await send('/contacts', { id: 'c2', skills: ['English'] }, 'q-c2')).status).toBe(201);
    await waitFor('c2 assigned', () => assignedTo('c2'), { timeoutMs: 10_000 });
    // The lost primary's clock ran ahead of the one that comes back (another host's, after a
    // failover): its last event's position is later than the positions the restarted Redis makes.
    const ahead = `${Date.now() + 120_000}-0`;
    await redis.xadd(workspaceKeys(WS).events, ahead, 'type', 'Note', 'event', '{}');
    await sleep(300);
    const lostPosition = feed[feed.length - 1]!.position;
    // A workspace whose whole history came after A.
    expect((await send2('/agents', { id: 'n1', skills: ['English'] }, 'reg-n1')).status).toBe(201);
    await waitFor('n1 registered', async () =>
      (await fetch(`${base2()}/agents/n1`)).status === 200 ? true : undefined,
    );
    expect(lostPosition > lastAtA).toBe(true);
    const seenBefore = feed.length;

    // The loss.
    server.kill('SIGKILL');
    await new Promise((r) => server.process.once('exit', r));
    const restarted = await startRedisServer({ dataDir: dir, port: server.port });
    server = { ...restarted, stop: restarted.stop };
    const lastNow = (await redis.xrevrange(workspaceKeys(WS).events, '+', '-', 'COUNT', 1))[0]?.[0];
    expect(lastNow).toBe(lastAtA);

    // Serves again without a restart.
    await waitFor(
      'health 200',
      async () =>
        (await fetch(`${sb.url}/health`).catch(() => undefined))?.status === 200 ? true : undefined,
      { timeoutMs: 20_000 },
    );

    // A feed resumed from a lost position: refused while the log has not passed it.
    const refused = await fetch(`${base()}/events?after=${lostPosition}`);
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { type: string }).type).toMatch(/position-ahead/);

    // The command lost, retried with its key: applied once.
    const again = await waitFor(
      'a2 available again',
      async () => {
        const r = await put('/agents/a2/state', { state: 'available' }, 'av-a2');
        return r.status === 200 ? r : undefined;
      },
      { timeoutMs: 20_000, everyMs: 200 },
    );
    expect(again.status).toBe(200);
    // A 202 (applied after its wait, on a loaded machine) is followed as a client does: the same
    // key again until the first outcome is answered.
    const c2 = await waitFor(
      'c2 queued again',
      async () => {
        const r = await send('/contacts', { id: 'c2', skills: ['English'] }, 'q-c2');
        return r.status === 202 ? undefined : r;
      },
      { timeoutMs: 20_000, everyMs: 200 },
    );
    expect(c2.status, JSON.stringify(c2.body)).toBe(201);
    // The workspace made after A, used again: its commands are applied.
    // (A 202 while its projector loop comes back from the outage: the same key again.)
    await waitFor(
      'n1 registered again',
      async () =>
        (await send2('/agents', { id: 'n1', skills: ['English'] }, 'reg-n1')).status === 201
          ? true
          : undefined,
      { timeoutMs: 10_000, everyMs: 200 },
    );
    expect([201, 202]).toContain(
      (await send2('/agents', { id: 'n2', skills: ['English'] }, 'reg-n2')).status,
    );
    await waitFor(
      'n2 registered in the workspace made after A',
      async () => ((await fetch(`${base2()}/agents/n2`)).status === 200 ? true : undefined),
      { timeoutMs: 10_000 },
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${sb.logText()}`);
    });
    // A new agent and contact after the loss.
    expect((await put('/agents/a3/state', { state: 'available' }, 'av-a3')).status).toBe(200);
    expect([201, 202]).toContain((await send('/contacts', { id: 'c3', skills: ['English'] }, 'q-c3')).status);

    // The feed opened before the loss delivers what came after it.
    await waitFor(
      'the open feed delivers c2 and c3 assigned again',
      () =>
        feed.slice(seenBefore).some((e) => e.data.contactId === 'c3' && e.type === 'AssignmentMade')
          ? true
          : undefined,
      { timeoutMs: 15_000 },
    ).catch((err) => {
      throw new Error(
        `${(err as Error).message}; feed after the loss: ${JSON.stringify(feed.slice(seenBefore).map((e) => [e.type, e.position]))}\n${sb.logText()}`,
      );
    });

    // Said in words that say what happened and what to do.
    expect(sb.logText()).toContain('the event stream no longer holds the last event this instance read');
    await sleep(500);
    const report = await auditWorkspace(redis, WS, { idle: true });
    expect(report.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
    const queued = report.replay.contacts;
    expect([...queued.keys()].sort()).toEqual(['c1', 'c2', 'c3']);
  }, 60_000);
});
