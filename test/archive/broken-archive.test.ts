/**
 * The event history and the state at a position read the archived prefix of the log: when the
 * archive cannot give it whole (a segment removed or cut short, or ARCHIVE_DIR not the archive the
 * archiver writes to), they fail and say so in the log, rather than answer a history with a hole
 * in it (a client paging from the start would take the stream's entries for the whole history):
 * 503 archive-unreadable, or a live feed closed with 1011 naming it.
 */
import { readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { Running } from '../../src/app/composition-root.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { decodeSegment, encodeSegment } from '../../src/archive/segment.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { SnapshotWriter } from '../../src/audit/snapshot-writer.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import {
  type ArchivingSwitchboard,
  archivedLog,
  archiveLog,
  archivingSwitchboard,
} from '../support/archive-log.ts';

const run = Date.now().toString(36);
let sb: ArchivingSwitchboard | undefined;
let main: Running;
let dir: string;
const lines: string[] = [];
let n = 0;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  sb = await archivingSwitchboard('sb-broken-', { LOG_LEVEL: 'warn' }, pino({ level: 'warn' }, sink));
  ({ main, dir } = sb);
}, 60_000);

afterAll(async () => sb?.stop());

/** A workspace whose log is archived but for its newest 50 entries of each stream, in segments of 100. */
async function archived(): Promise<{ ws: string; events: string[]; segments: string }> {
  const ws = `broken-${run}-${++n}`;
  const { events, dir: segments } = await archivedLog(main.redis, ws, dir, n);
  expect(await main.redis.xlen(workspaceKeys(ws).events)).toBe(50);
  return { ws, events, segments };
}

const segmentFiles = async (d: string) => (await readdir(d)).filter((f) => f.endsWith('.jsonl')).sort();

/** Pages GET /events from `after` to its end: the positions, or the first answer that was not a 200. */
async function page(
  ws: string,
  after: string,
): Promise<{ positions: string[]; failed?: { status: number; body: Record<string, unknown> } }> {
  const positions: string[] = [];
  let cursor: string | null = after;
  while (cursor !== null) {
    const res = await main.api!.inject({
      method: 'GET',
      url: `/v1/workspaces/${ws}/events?after=${cursor}&limit=100`,
    });
    if (res.statusCode !== 200) return { positions, failed: { status: res.statusCode, body: res.json() } };
    const p = res.json() as { events: { position: string }[]; next: string | null };
    positions.push(...p.events.map((e) => e.position));
    cursor = p.next;
  }
  return { positions };
}

describe('a history the archive cannot give whole', () => {
  it('is read whole while the archive is', async () => {
    const a = await archived();
    expect((await page(a.ws, '0-0')).positions).toEqual(a.events);
  });

  it('GET /events fails, rather than skip, over a removed segment, and the log says what to do', async () => {
    const a = await archived();
    const files = await segmentFiles(a.segments);
    await unlink(path.join(a.segments, files[1]!));
    for (const after of ['0-0', a.events[150]!]) {
      const got = await page(a.ws, after);
      // Never a page that jumps over the missing entries.
      for (const p of got.positions) expect(a.events).toContain(p);
      const handed = got.positions.map((p) => a.events.indexOf(p));
      expect(handed).toEqual(handed.map((_, i) => a.events.indexOf(after) + 1 + i));
      expect(got.failed?.status, `after ${after}`).toBe(503);
      expect(got.failed?.body.type).toBe('/problems/archive-unreadable');
      // The client is told what happened, not the server's directories.
      expect(JSON.stringify(got.failed?.body)).not.toContain(dir);
    }
    const said = lines.filter((l) => l.includes(a.ws)).join('\n');
    expect(said).toMatch(/ARCHIVE_DIR/);
    expect(said).toMatch(/restore/);
  });

  it('GET /events fails over a segment cut short', async () => {
    const a = await archived();
    const files = await segmentFiles(a.segments);
    const f = path.join(a.segments, files[0]!);
    const bytes = await readFile(f);
    await writeFile(f, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const got = await page(a.ws, '0-0');
    expect(got.positions.length).toBeLessThan(100);
    expect(got.positions).toEqual(a.events.slice(0, got.positions.length));
    expect(got.failed?.status).toBe(503);
  });

  it('GET /events fails when ARCHIVE_DIR holds none of the archived segments', async () => {
    const a = await archived();
    await rm(a.segments, { recursive: true });
    const got = await page(a.ws, '0-0');
    expect(got.positions).toEqual([]);
    expect(got.failed?.status).toBe(503);
  });

  it('a live feed resumed over a removed segment is closed with a reason, not replayed with a hole', async () => {
    const a = await archived();
    const files = await segmentFiles(a.segments);
    await unlink(path.join(a.segments, files[1]!));
    const socket = new WebSocket(
      `${main.url!.replace(/^http/, 'ws')}/v1/workspaces/${a.ws}/events/live?after=${a.events[50]}`,
    );
    const got: string[] = [];
    socket.on('message', (m) => {
      const e = JSON.parse(String(m)) as { position?: string };
      if (e.position !== undefined) got.push(e.position);
    });
    const closed = await new Promise<{ code: number; reason: string }>((resolve, reject) => {
      socket.once('close', (code, reason) => resolve({ code, reason: String(reason) }));
      socket.once('error', reject);
      setTimeout(() => resolve({ code: 0, reason: 'still open' }), 3000);
    });
    socket.terminate();
    expect(got).toEqual(a.events.slice(51, 51 + got.length));
    expect(closed.code).toBe(1011);
    expect(closed.reason).toMatch(/archive-unreadable/);
  });

  it('GET /state fails over a removed segment rather than answer a state replayed with a hole', async () => {
    const a = await archived();
    const files = await segmentFiles(a.segments);
    await unlink(path.join(a.segments, files[0]!));
    const res = await main.api!.inject({
      method: 'GET',
      url: `/v1/workspaces/${a.ws}/state?at=${a.events.at(-1)}`,
    });
    expect(res.statusCode).toBe(503);
    expect(res.json().type).toBe('/problems/archive-unreadable');
  });

  it('no state snapshot is taken over a segment cut short (it would be kept for good)', async () => {
    const a = await archived();
    const files = await segmentFiles(a.segments);
    const f = path.join(a.segments, files[0]!);
    const bytes = await readFile(f);
    await writeFile(f, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const writer = new SnapshotWriter(main.redis, new DiskArchive(dir), pino({ level: 'silent' }), {
      every: 150,
    });
    await expect(writer.take(a.ws)).rejects.toThrow(/restore the missing or damaged segment/);
    expect(await readdir(path.join(dir, a.ws, 'snapshots')).catch(() => [])).toEqual([]);
  });

  it('files in the archive that are not segments are passed over, by the archiver and the readers', async () => {
    const a = await archived();
    const files = await segmentFiles(a.segments);
    // An operator's note, and a copy of the last segment kept beside it.
    await writeFile(path.join(a.segments, 'README.txt'), 'archived by the night shift\n');
    await writeFile(
      path.join(a.segments, `${files.at(-1)!}.bak`),
      await readFile(path.join(a.segments, files.at(-1)!)),
    );
    // More events, archived after the last segment as ever.
    await writeLog(main.redis, a.ws, { events: 200, agents: 6, seed: 100 + n });
    const events = ((await main.redis.xrange(workspaceKeys(a.ws).events, '-', '+')) as StreamEntry[]).map(
      (e) => e[0],
    );
    const moved = await archiveLog(main.redis, new DiskArchive(dir), a.ws);
    expect(moved).toBeGreaterThan(0);
    expect(await segmentFiles(a.segments)).toHaveLength(files.length + Math.ceil((events.length - 50) / 100));
    expect((await page(a.ws, a.events[250]!)).positions).toEqual([...a.events.slice(251, -50), ...events]);
    expect((await page(a.ws, '0-0')).positions).toEqual([...a.events.slice(0, -50), ...events]);
  });

  it('a damaged last segment whose entries are still in Redis is named so, with how to have it written again', async () => {
    const a = await archived();
    const k = workspaceKeys(a.ws);
    // The next segment, cut short on disk before the stream was trimmed for it (a torn write).
    const next = (await main.redis.xrange(k.events, '-', '+', 'COUNT', 30)) as StreamEntry[];
    const files = await segmentFiles(a.segments);
    const tip = decodeSegment(await readFile(path.join(a.segments, files.at(-1)!))).header!;
    const seg = encodeSegment({
      workspace: a.ws,
      stream: 'events',
      index: tip.index + 1,
      prevHash: tip.hash,
      before: tip.total,
      entries: next,
    });
    await writeFile(path.join(a.segments, seg.name), seg.bytes.subarray(0, seg.bytes.length - 40));
    const archiver = () =>
      new Archiver(main.redis, new DiskArchive(dir), pino({ level: 'silent' }), {
        retention: { count: 20 },
        segmentEntries: 100,
        everyMs: 10,
      });
    const refused = await archiver()
      .step(a.ws, 'events')
      .then(
        () => '',
        (err: Error) => err.message,
      );
    expect(refused).toMatch(/still in Redis/);
    expect(refused).not.toMatch(/restore it from a copy/);
    expect(await main.redis.xlen(k.events)).toBe(50);
    // Done as it says: the file moved aside, the segment is written again from Redis.
    await rename(path.join(a.segments, seg.name), path.join(a.segments, `${seg.name}.damaged`));
    expect(await archiver().drain(a.ws)).toBeGreaterThan(0);
    expect(await main.redis.xlen(k.events)).toBe(20);
    expect((await page(a.ws, '0-0')).positions).toEqual(a.events);
  });

  it('GET /events after a position over a segment whose header cannot be read: the log names the positions of the hole, not only the file', async () => {
    const a = await archived();
    const files = await segmentFiles(a.segments);
    // Segment 1 (events 100..199) emptied: its header cannot be read, how far it reached only from
    // the segments on either side (0 ends at event 99, 2 starts at event 200).
    await writeFile(path.join(a.segments, files[1]!), '');
    // After a position inside it, and after one in the segment before it.
    for (const after of [a.events[150]!, a.events[50]!]) {
      const from = lines.length;
      const got = await page(a.ws, after);
      expect(got.failed?.body.type, `after ${after}`).toBe('/problems/archive-unreadable');
      const said = lines
        .slice(from)
        .filter((l) => l.includes('history unreadable'))
        .map((l) => JSON.parse(l).err as string);
      expect(said, `after ${after}`).toHaveLength(1);
      expect(said[0]).toContain(`at ${a.events[100]}:`);
      expect(said[0]).toContain(`after ${a.events[99]}`);
      expect(said[0]).toContain(`before ${a.events[200]}`);
      expect(said[0]).toMatch(/restore/);
    }
  });
});
