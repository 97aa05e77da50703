/**
 * Redis comes back with less (a restart from an older RDB) and a new entry lands at the very
 * position of a lost one the archive holds (a clock behind the lost entries': the new Redis
 * generates the same `<ms>-<seq>`; made here by an XADD with that id and other fields).
 * What a user saw: the archiver and the readers compared positions only. The archiver took the
 * new entry for the last one of its last segment, trimmed it away (never archived) and went on:
 * the archive held the lost entries and never the new one, without a word; `GET /events` served
 * the lost agents and not the new entry, and the audit followed. `GET /state?at=` answered from a
 * state snapshot of lost events, with agents Redis never held. Now the entry's content is compared
 * at the mark: the archiver refuses with the `.lost` advice (segments and snapshots named), the
 * readers answer 503 archive-unreadable, and a snapshot whose event is not in the log (or is
 * another entry there) is not used; once the named files are renamed, the history read is what
 * Redis holds, the new entry with it.
 */
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { parseAnchor } from '../../src/archive/chain.ts';
import { decodeSegment } from '../../src/archive/segment.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { latestSnapshot } from '../../src/audit/state-at.ts';
import { comparePositions } from '../../src/domain/values.ts';
import { type RedisServerHandle, startRedisServer } from '../../src/topology/redis-server.ts';
import { killAllProcesses, type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'rollbackcollide';

describe('a new entry at the position of a lost one the archive holds', () => {
  let dir: string;
  let archiveDir: string;
  let server: RedisServerHandle;
  let redis: RedisClient;
  let sb: SwitchboardProcess;
  const k = workspaceKeys(WS);
  const base = () => `${sb.url}/v1/workspaces/${WS}`;
  const register = async (id: string) =>
    (
      await fetch(`${base()}/agents`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `reg-${id}` },
        body: JSON.stringify({ id, skills: ['English'] }),
      })
    ).status;
  const mark = async (stream: 'commands' | 'events') => parseAnchor(await redis.hget(k.archive, stream));
  const registeredIds = async () => {
    const r = await fetch(`${base()}/events?limit=1000`);
    const body = (await r.json()) as { events?: { type: string; data: { id?: string } }[] };
    return {
      status: r.status,
      ids: (body.events ?? []).filter((e) => e.type === 'AgentRegistered').map((e) => e.data.id),
      body,
    };
  };
  const start = () =>
    startProcess({
      roles: 'api,projector,dispatcher,archiver',
      redisUrl: server.url,
      env: {
        LOG_LEVEL: 'info',
        WORKSPACES: WS,
        ARCHIVE_DIR: archiveDir,
        LOG_RETENTION: '3',
        ARCHIVE_SEGMENT_ENTRIES: '4',
        ARCHIVE_EVERY_MS: '100',
        CONTACT_RETENTION: 'off',
        SNAPSHOT_EVERY_EVENTS: '2',
      },
    });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-rollback-collide-'));
    archiveDir = path.join(dir, 'archive');
    server = await startRedisServer({ dataDir: dir });
    redis = connectRedis({ url: server.url });
    sb = await start();
  }, 30_000);

  afterAll(async () => {
    await killAllProcesses();
    redis?.disconnect();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses the archive and the snapshots of what was lost, then serves what Redis holds', async () => {
    for (const id of ['a1', 'a2', 'a3', 'a4', 'a5'])
      expect(await register(id), sb.logText().slice(-2000)).toBe(201);
    await waitFor('a segment archived', async () => ((await mark('events')) ? true : undefined), {
      timeoutMs: 10_000,
    });
    // Point A.
    await redis.save();
    const lastAtA = (await redis.xrevrange(k.events, '+', '-', 'COUNT', 1))[0]![0];
    for (const id of ['b1', 'b2', 'b3', 'b4', 'b5', 'b6']) expect(await register(id)).toBe(201);
    const snapshots = path.join(archiveDir, WS, 'snapshots');
    // Up to a segment whose last event is snapshotted (a snapshot every 2 events), the last one.
    const folder = path.join(archiveDir, WS, 'events');
    const lastSegment = () =>
      readdirSync(folder)
        .filter((n) => n.endsWith('.jsonl'))
        .sort()
        .at(-1)!;
    await waitFor(
      'events after A archived, and snapshotted up to the last segment',
      async () => {
        const e = await mark('events');
        const tipLast = decodeSegment(readFileSync(path.join(folder, lastSegment()))).header?.last;
        const snapshotted = readdirSync(snapshots).some((n) => n.slice(13, -9) === tipLast);
        // Nothing more to archive (the newest 3 stay): no segment comes after this one.
        const settled = (await redis.xlen(k.events)) <= 3;
        return e && comparePositions(e.last, lastAtA) > 0 && e.last === tipLast && snapshotted && settled
          ? true
          : undefined;
      },
      { timeoutMs: 10_000 },
    );
    await sb.stop();

    // The events archive's last segment, and its last entry (lost with the restart).
    const lastName = lastSegment();
    const tipSegment = decodeSegment(readFileSync(path.join(folder, lastName)));
    const [lostAt, lostFields] = tipSegment.entries.at(-1)!;
    expect(comparePositions(lostAt, lastAtA)).toBeGreaterThan(0);

    server.kill('SIGKILL');
    await new Promise((r) => server.process.once('exit', r));
    const restarted = await startRedisServer({ dataDir: dir, port: server.port });
    server = { ...restarted, stop: restarted.stop };
    expect((await redis.xrevrange(k.events, '+', '-', 'COUNT', 1))[0]![0]).toBe(lastAtA);
    // Another event at the lost one's position: another agent's registration.
    const otherFields = lostFields.map((f) => f.replace(/"b(\d)"/g, '"n$1"'));
    expect(otherFields).not.toEqual(lostFields);
    expect(await redis.xadd(k.events, lostAt, ...otherFields)).toBe(lostAt);
    const newId = /"(n\d)"/.exec(otherFields.join(' '))![1]!;

    sb = await start();
    for (const id of ['c1', 'c2', 'c3', 'c4', 'c5', 'c6']) expect(await register(id)).toBe(201);

    // The archiver refuses the events stream with the advice of a loss, and does not go on.
    const tipIndex = tipSegment.header!.index;
    let named: string[] | undefined;
    let lostSnapshots: string[] | undefined;
    let more = 0;
    let sentAt = Date.now();
    await waitFor(
      'the archiver names the events segments (or goes on past the lost entry)',
      async () => {
        if (Date.now() - sentAt > 1000) {
          sentAt = Date.now();
          await register(`x${++more}`);
        }
        const m = sb
          .logText()
          .match(
            new RegExp(
              `the events archive of ${WS} [^"]*rename the segments Redis was never marked as trimmed for \\(([^)]*) in <ARCHIVE_DIR>/${WS}/events\\)(, and the state snapshots of what was lost \\(([^)]*) in)?`,
            ),
          );
        if (m) {
          named = m[1]!.split(', ');
          lostSnapshots = m[3]?.split(', ');
          return true;
        }
        return ((await mark('events'))?.index ?? -1) >= tipIndex ? true : undefined;
      },
      { timeoutMs: 25_000 },
    );
    expect(
      { named, markedTip: ((await mark('events'))?.index ?? -1) >= tipIndex },
      `the archive holds ${lostAt} as lost (${lostFields.join(' ')}); Redis: ${otherFields.join(' ')}`,
    ).toEqual({ named: expect.arrayContaining([lastName]), markedTip: false });

    // The readers refuse the history across it; the state is not answered from a lost snapshot.
    const refused = await registeredIds();
    expect(refused.status, JSON.stringify(refused.body).slice(0, 400)).toBe(503);
    const lastEvent = (await redis.xrevrange(k.events, '+', '-', 'COUNT', 1))[0]![0];
    const stateBefore = await fetch(`${base()}/state?at=${lastEvent}`);
    const stateBody = (await stateBefore.json()) as { agents?: { id: string }[]; snapshot?: string };
    // Answered (the state at the new event is Redis's), never from the lost history.
    expect(stateBefore.status, JSON.stringify(stateBody).slice(0, 400)).toBe(200);
    expect(stateBody.agents?.length ?? 0).toBeGreaterThan(0);
    expect(
      stateBody.agents!.some((a) => a.id.startsWith('b')),
      JSON.stringify(stateBody).slice(0, 400),
    ).toBe(false);
    const store = new DiskArchive(archiveDir);
    // The snapshot taken right after the lost event is not used: another event is there now.
    const bad = new Map<string, string>();
    const used = await latestSnapshot(store, WS, lostAt, (n, why) => bad.set(n, why), redis);
    expect(used === undefined || comparePositions(used.header.position, lastAtA) <= 0).toBe(true);
    const atLost = [...bad].find(([n]) => n.endsWith(`-${lostAt}.snapshot`));
    expect(atLost?.[1], JSON.stringify([...bad])).toMatch(
      /the log holds another event at \S+ than the one it was taken after: it is a snapshot of events Redis lost .*Rename it to \S+\.lost/,
    );
    const audit = await auditWorkspace(redis, WS, { archive: store, idle: true });
    expect(audit.violations.filter((v) => v.kind === 'archive').length).toBeGreaterThan(0);

    // Done as said: the history read is then what Redis holds, the new entry with it.
    for (const n of [...named!].reverse()) renameSync(path.join(folder, n), path.join(folder, `${n}.lost`));
    expect(lostSnapshots?.length ?? 0).toBeGreaterThan(0);
    for (const n of lostSnapshots!) renameSync(path.join(snapshots, n), path.join(snapshots, `${n}.lost`));
    const markedBefore = (await mark('events'))!.index;
    for (const id of ['d1', 'd2', 'd3', 'd4']) expect(await register(id)).toBe(201);
    await waitFor(
      'archived again past the lost segments',
      async () => ((await mark('events'))!.index > markedBefore + 1 ? true : undefined),
      { timeoutMs: 10_000 },
    );
    const read = await registeredIds();
    expect(read.status, JSON.stringify(read.body).slice(0, 600)).toBe(200);
    expect(read.ids).toEqual([
      ...['a1', 'a2', 'a3', 'a4', 'a5'],
      newId,
      ...['c1', 'c2', 'c3', 'c4', 'c5', 'c6'],
      ...Array.from({ length: more }, (_, i) => `x${i + 1}`),
      ...['d1', 'd2', 'd3', 'd4'],
    ]);
  }, 90_000);
});
