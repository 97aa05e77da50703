/**
 * Redis back without a workspace's data (restarted without persistence, or from an older copy)
 * while its archive is kept: the archive then holds a history the log in Redis is not the
 * continuation of. The archiver refuses to chain onto it (test/archive/redis-lost.test.ts); the
 * readers must not hand the two on as one log either: `GET /events` from the start (or after a
 * position in the old archive) and `GET /state?at=` answer 503 `/problems/archive-unreadable`
 * rather than the old archive's events followed by the new stream's (docs/ARCHIVE.md, "Crash
 * safety"). A read after a position in the new stream is served (it reads no segment), and so is a
 * read while the archive's newest segment is only not trimmed yet (an archiver stopped between its
 * segment and its trim): its entries are still in the stream.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { inProcessApi } from '../support/api.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'sb-reads-edges-1-'));
const api = inProcessApi([], { env: { ROLES: 'api', ARCHIVE_DIR: dir } });
afterAll(() => rm(dir, { recursive: true, force: true }));
const run = Date.now().toString(36);
const log = pino({ level: 'silent' });

const positions = (body: Record<string, unknown>) =>
  (body.events as { position: string }[]).map((e) => e.position);

/** Every key of the workspace gone, as after a Redis restarted without its data. */
async function loseRedis(ws: string): Promise<void> {
  const admin = api.server.adminClient();
  try {
    const keys = await admin.keys(`${workspaceKeys(ws).prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
  } finally {
    admin.disconnect();
  }
}

describe('an archive whose history Redis no longer continues', () => {
  it('GET /events and GET /state answer 503 archive-unreadable, not the old history joined to the new', async () => {
    const redis = api.running.redis;
    const ws = `reads-edges-1-${run}`;
    const k = workspaceKeys(ws);
    const store = new DiskArchive(dir);
    await writeLog(redis, ws, { events: 200, agents: 4, seed: 3 });
    const old = ((await redis.xrange(k.events, '-', '+')) as StreamEntry[]).map((e) => e[0]);
    await new Archiver(redis, store, log, {
      retention: { count: 50 },
      segmentEntries: 50,
      everyMs: 10,
    }).drain(ws);
    expect((await store.list(ws, 'events')).length).toBeGreaterThan(1);

    await loseRedis(ws);
    await writeLog(redis, ws, { events: 60, agents: 3, seed: 4 });
    const fresh = ((await redis.xrange(k.events, '-', '+')) as StreamEntry[]).map((e) => e[0]);
    const last = fresh.at(-1)!;

    const fromStart = await api.call('GET', `/v1/workspaces/${ws}/events?after=0-0&limit=1000`);
    expect(
      fromStart.status,
      `${fromStart.status}: ${fromStart.body.events ? `${positions(fromStart.body).length} events, ${positions(fromStart.body).filter((p) => old.includes(p)).length} of the lost history` : JSON.stringify(fromStart.body)}`,
    ).toBe(503);
    expect(fromStart.body.type).toBe('/problems/archive-unreadable');

    // The hole: after the archive's last entry, what Redis lost; the stream reads again at its first.
    const archivedLast = old.filter((p) => !fresh.includes(p)).at(-1);
    expect(fromStart.body.resumeAt).toBe(fresh[0]);
    expect(fromStart.body.lostAfter).not.toBeNull();
    expect(old).toContain(fromStart.body.lostAfter);
    expect(archivedLast).toBeDefined();
    const resumed = await api.ok('GET', ws, `/events?after=${fromStart.body.resumeAfter}&limit=1000`);
    expect(positions(resumed)).toEqual(fresh);

    const inOld = await api.call('GET', `/v1/workspaces/${ws}/events?after=${old[10]}&limit=1000`);
    expect(inOld.status, JSON.stringify(inOld.body).slice(0, 200)).toBe(503);
    expect(inOld.body.type).toBe('/problems/archive-unreadable');

    const state = await api.call('GET', `/v1/workspaces/${ws}/state?at=${last}`);
    expect(
      state.status,
      `${state.status}: ${state.body.agents ? `agents ${(state.body.agents as { id: string }[]).map((a) => a.id).join(',')}` : JSON.stringify(state.body)}`,
    ).toBe(503);
    expect(state.body.type).toBe('/problems/archive-unreadable');

    // A read after a position of the new log reads no segment: served.
    const inNew = await api.ok('GET', ws, `/events?after=${fresh[0]}&limit=1000`);
    expect(positions(inNew)).toEqual(fresh.slice(1));
  });

  it('an archive whose newest segment is not trimmed yet (its entries still in the stream) reads whole', async () => {
    const redis = api.running.redis;
    const ws = `reads-edges-1-untrimmed-${run}`;
    const k = workspaceKeys(ws);
    const store = new DiskArchive(dir);
    await writeLog(redis, ws, { events: 150, agents: 4, seed: 5 });
    const all = ((await redis.xrange(k.events, '-', '+')) as StreamEntry[]).map((e) => e[0]);
    await new Archiver(redis, store, log, {
      retention: { count: 50 },
      segmentEntries: 50,
      everyMs: 10,
    }).drain(ws);
    // The mark moved back one segment and the stream given that segment's entries back: what an
    // archiver stopped between writing a segment and trimming for it leaves.
    const mark = JSON.parse((await redis.hget(k.archive, 'events'))!) as { index: number };
    expect(mark.index).toBeGreaterThan(0);
    await redis.hdel(k.archive, 'events');
    const names = await store.list(ws, 'events');
    const segment = (await store.read(ws, 'events', names.at(-1)!))
      .toString('utf8')
      .trim()
      .split('\n')
      .slice(1);
    const kept = (await redis.xrange(k.events, '-', '+')) as StreamEntry[];
    const m = redis.multi().del(k.events);
    for (const [id, fields] of [...segment.map((l) => JSON.parse(l) as StreamEntry), ...kept])
      m.xadd(k.events, id, ...fields);
    for (const [err] of (await m.exec())!) expect(err).toBeNull();
    expect(await redis.xlen(k.events)).toBe(segment.length + kept.length);
    await redis.hset(k.archive, 'events', (await readMarkOf(store, ws, names.at(-2)!)) ?? '');

    const page = await api.ok('GET', ws, '/events?after=0-0&limit=1000');
    expect(positions(page)).toEqual(all);
    const inArchive = await api.ok('GET', ws, `/events?after=${all[3]}&limit=1000`);
    expect(positions(inArchive)).toEqual(all.slice(4));
    const state = await api.ok('GET', ws, `/state?at=${all.at(-1)}`);
    expect(state.position).toBe(all.at(-1));
  });
});

/** The mark a trim for segment `name` writes: `{index, last, hash, total}` of its header. */
async function readMarkOf(store: DiskArchive, ws: string, name: string): Promise<string | undefined> {
  const text = (await store.read(ws, 'events', name)).toString('utf8');
  const h = JSON.parse(text.slice(0, text.indexOf('\n'))) as {
    index: number;
    last: string;
    hash: string;
    total: number;
  };
  return JSON.stringify({ index: h.index, last: h.last, hash: h.hash, total: h.total });
}
