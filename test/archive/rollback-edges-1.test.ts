/**
 * Redis comes back with less while the archiver runs: a redis-server persisting to an RDB file only
 * is snapshotted (SAVE) at a point A, agents are registered and the archiver writes segments
 * holding entries after A (small segments, a retention of 3 entries), then redis-server is
 * SIGKILLed and started again on its directory: it loads A (the mark of the archive with it),
 * while the archive keeps the segments of what was lost and Switchboard (every role) keeps running.
 * What a user saw: the archiver refused the streams, saying to restore Redis (it cannot be: the
 * entries are lost) or to move the archive aside (an archive moved aside is then behind Redis,
 * refused again); and once the segments after the mark were moved aside, the archiver wrote those
 * positions again under the same names, and a process that had read the old ones served them from
 * its cache: `GET /events` answered 503 (a `prevHash` break) or would hand on the lost entries, and
 * the audit in that process reported what never happened. Now the archiver's error names the
 * segments to rename to `<name>.lost`; once renamed, it goes on, and the running API reads the new
 * segments (a kept segment is checked against the file under its name): the whole history, without
 * the lost agents, audits clean. State snapshots taken of the lost events (`SNAPSHOT_EVERY_EVENTS`)
 * made `GET /state?at=` answer with the lost agents: the error names them too, to rename alike.
 */
import { mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { parseAnchor } from '../../src/archive/chain.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { type RedisServerHandle, startRedisServer } from '../../src/topology/redis-server.ts';
import { killAllProcesses, type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { auditCli } from '../support/tamper.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'rollbackarchive';

describe('Redis back from an older snapshot while the archive holds segments of what it lost', () => {
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

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-rollback-archive-'));
    archiveDir = path.join(dir, 'archive');
    server = await startRedisServer({ dataDir: dir });
    redis = connectRedis({ url: server.url });
    sb = await startProcess({
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
  }, 30_000);

  afterAll(async () => {
    await killAllProcesses();
    redis?.disconnect();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('names the segments to move aside, then goes on; readers see the new segments', async () => {
    for (const id of ['a1', 'a2', 'a3', 'a4', 'a5']) expect(await register(id)).toBe(201);
    await waitFor('a segment archived', async () => ((await mark('events')) ? true : undefined), {
      timeoutMs: 10_000,
    });

    // Point A.
    await redis.save();
    const lastAtA = (await redis.xrevrange(k.events, '+', '-', 'COUNT', 1))[0]![0];

    // After A: archived, then lost with the restart.
    for (const id of ['b1', 'b2', 'b3', 'b4', 'b5', 'b6']) expect(await register(id)).toBe(201);
    await waitFor(
      'segments holding entries after A archived',
      async () => {
        const [c, e] = [await mark('commands'), await mark('events')];
        const snapshots = path.join(archiveDir, WS, 'snapshots');
        const snapshotted = readdirSync(snapshots).some((n) => n.slice(13, -9) > lastAtA);
        return c && e && c.last > lastAtA && e.last > lastAtA && snapshotted ? true : undefined;
      },
      { timeoutMs: 10_000 },
    );

    server.kill('SIGKILL');
    await new Promise((r) => server.process.once('exit', r));
    const restarted = await startRedisServer({ dataDir: dir, port: server.port });
    server = { ...restarted, stop: restarted.stop };
    expect((await redis.xrevrange(k.events, '+', '-', 'COUNT', 1))[0]![0]).toBe(lastAtA);
    await waitFor(
      'health 200',
      async () =>
        (await fetch(`${sb.url}/health`).catch(() => undefined))?.status === 200 ? true : undefined,
      { timeoutMs: 20_000 },
    );
    for (const id of ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'])
      await waitFor(`${id} registered`, async () => ((await register(id)) === 201 ? true : undefined), {
        timeoutMs: 10_000,
        everyMs: 200,
      });

    // Refused, not chained on; the readers refuse too, and the audit reports it.
    const advice = new Map<string, string[]>();
    // The archiver looks at a stream when it has entries to archive: on a loaded machine six
    // commands may not be enough for it to come to the commands stream, so more are sent (an
    // agent a second) until both streams are refused.
    let more = 0;
    let sentAt = Date.now();
    await waitFor(
      'the archiver names the segments to move aside',
      async () => {
        if (Date.now() - sentAt > 1000) {
          sentAt = Date.now();
          await register(`x${++more}`);
        }
        for (const stream of ['commands', 'events']) {
          const m = sb
            .logText()
            .match(
              new RegExp(
                `the ${stream} archive of ${WS} [^"]*rename the segments Redis was never marked as trimmed for \\(([^)]*) in <ARCHIVE_DIR>/${WS}/${stream}\\)`,
              ),
            );
          if (m) advice.set(stream, m[1]!.split(', '));
        }
        const snaps = sb
          .logText()
          .match(/the state snapshots of what was lost \(([^)]*) in <ARCHIVE_DIR>\/[a-z]+\/snapshots\)/);
        if (snaps) advice.set('snapshots', snaps[1]!.split(', '));
        return advice.size === 3 ? true : undefined;
      },
      { timeoutMs: 25_000 },
    ).catch(async (err) => {
      throw new Error(
        `${(err as Error).message}\n${JSON.stringify([await redis.hgetall(k.archive), readdirSync(path.join(archiveDir, WS, 'events')), (await redis.xrange(k.events, '-', '+')).map((e) => e[0]), lastAtA])}\n${sb
          .logText()
          .split('\n')
          .filter((l) => /"level":(40|50)/.test(l))
          .join('\n')}`,
      );
    });
    expect((await registeredIds()).status).toBe(503);
    const store = new DiskArchive(archiveDir);
    const before = await auditWorkspace(redis, WS, { archive: store, idle: true });
    expect(before.violations.filter((v) => v.kind === 'archive').length).toBeGreaterThan(0);

    // Done as said: the segments named renamed. They are those after the mark from the first one
    // holding an entry Redis lacks: each after the mark not named is followed by one whose first
    // entry Redis holds (wholly held, kept), and the last after the mark is named.
    for (const stream of ['commands', 'events'] as const) {
      const m = (await mark(stream))?.index ?? -1;
      const folder = path.join(archiveDir, WS, stream);
      const after = readdirSync(folder)
        .filter((n) => /^\d{10}-.*\.jsonl$/.test(n) && Number(n.slice(0, 10)) > m)
        .sort();
      const named = advice.get(stream)!;
      expect(named.length).toBeGreaterThan(0);
      expect(after.slice(after.length - named.length)).toEqual(named);
      for (const [i, n] of after.slice(0, after.length - named.length).entries()) {
        const next = after[i + 1]!.slice(11, -6);
        expect((await redis.xrange(k[stream], next, next)).length, `${n} kept: ${next} held`).toBe(1);
      }
      for (const n of [...named].reverse()) renameSync(path.join(folder, n), path.join(folder, `${n}.lost`));
    }
    const lastKept = (await mark('events'))!.last;
    const snapshots = path.join(archiveDir, WS, 'snapshots');
    const lostSnapshots = readdirSync(snapshots).filter((n) => n.slice(13, -9) > lastKept);
    expect(lostSnapshots.length).toBeGreaterThan(0);
    expect(advice.get('snapshots')).toEqual(lostSnapshots);
    for (const n of lostSnapshots) renameSync(path.join(snapshots, n), path.join(snapshots, `${n}.lost`));
    const markedBefore = (await mark('events'))!.index;
    for (const id of ['d1', 'd2', 'd3', 'd4', 'd5', 'd6']) expect(await register(id)).toBe(201);
    await waitFor(
      'archived again past the lost segments',
      async () => ((await mark('events'))!.index > markedBefore + 1 ? true : undefined),
      { timeoutMs: 10_000 },
    );

    // The running API reads the segments written again, not those it kept: the whole history, once.
    const read = await registeredIds();
    expect(read.status, JSON.stringify(read.body).slice(0, 600)).toBe(200);
    expect(read.ids).toEqual([
      ...['a1', 'a2', 'a3', 'a4', 'a5'],
      ...['c1', 'c2', 'c3', 'c4', 'c5', 'c6'],
      ...Array.from({ length: more }, (_, i) => `x${i + 1}`),
      ...['d1', 'd2', 'd3', 'd4', 'd5', 'd6'],
    ]);
    // The state at the last event: what Redis holds, not a snapshot of what was lost.
    const lastEvent = (await redis.xrevrange(k.events, '+', '-', 'COUNT', 1))[0]![0];
    const state = (await (await fetch(`${base()}/state?at=${lastEvent}`)).json()) as {
      agents: { id: string }[];
    };
    expect(state.agents.map((a) => a.id).sort()).toEqual([...read.ids].sort());
    // The auditor in this process (which kept the old segments too), and `npm run audit`.
    const after = await auditWorkspace(redis, WS, { archive: store, idle: true });
    expect(after.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
    const cli = await auditCli(['--workspace', WS, '--redis-url', server.url, '--archive-dir', archiveDir]);
    expect(cli.code, cli.stdout + cli.stderr).toBe(0);
  }, 90_000);
});
