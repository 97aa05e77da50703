/**
 * Archived logs for the suites that read or damage an archive, and the Switchboard they run against:
 *
 * - `archivingSwitchboard`: a redis-server and a Switchboard on it whose ARCHIVE_DIR is a new
 *   temporary directory.
 * - `archivedLog`: a workspace's log made through the Lua steps (src/cli/bench/audit-log.ts
 *   `writeLog`: 400 events), then archived in segments of 100 events with the newest 50 kept in
 *   Redis: the events archive holds four segments (0..99, 100..199, 200..299, 300..349), for suites
 *   that damage one.
 * - `logFields` and `archivedAt`: the same log's events given again at ids of the suite's choosing,
 *   then archived the same way; `suiteLogAtIds`, both on an `archivingSwitchboard` of the suite's.
 */

import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Logger, pino } from 'pino';
import { afterAll, beforeAll, expect } from 'vitest';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { decodeSegment, encodeSegment } from '../../src/archive/segment.ts';
import { DiskArchive, workspaceFolder } from '../../src/archive/store.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { startTestRedis, type TestRedis } from './redis.ts';

export interface ArchivingSwitchboard {
  readonly redis: TestRedis;
  readonly main: Running;
  /** Its ARCHIVE_DIR. */
  readonly dir: string;
  /** Stops Switchboard and the redis-server, and removes the directory. */
  stop(): Promise<void>;
}

/**
 * A redis-server and a Switchboard on it (`ROLES=api`, no workspace discovery, the API on no port:
 * `main.api.inject`), archiving to a new directory `<tmpdir>/<prefix>…`. `env` adds to or replaces
 * that configuration; `log` is Switchboard's logger (silent by default).
 */
export async function archivingSwitchboard(
  prefix: string,
  env: Record<string, string> = {},
  log: Logger = pino({ level: 'silent' }),
): Promise<ArchivingSwitchboard> {
  const redis = await startTestRedis();
  let main: Running | undefined;
  let dir: string | undefined;
  const stop = async () => {
    await main?.stop();
    await redis.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  };
  try {
    dir = await mkdtemp(path.join(tmpdir(), prefix));
    main = await startSwitchboard(
      loadConfig({
        AUTH: 'off',
        ...redis.env,
        PORT: '0',
        LOG_LEVEL: 'silent',
        ROLES: 'api',
        DISCOVER_WORKSPACES: 'false',
        ARCHIVE_DIR: dir,
        // Stopped at once, without the drain (LB_DRAIN_MS).
        LB_DRAIN_MS: '0',
        ...env,
      }),
      log,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { redis, main, dir, stop };
}

/**
 * Archives `ws` into `store` in segments of 100 entries, the newest 50 of each stream kept in
 * Redis: how many entries it moved.
 */
export function archiveLog(redis: RedisClient, store: DiskArchive, ws: string): Promise<number> {
  return new Archiver(redis, store, pino({ level: 'silent' }), {
    retention: { count: 50 },
    segmentEntries: 100,
    everyMs: 10,
  }).drain(ws);
}

export async function archivedLog(
  redis: RedisClient,
  ws: string,
  root: string,
  seed: number,
): Promise<{ events: string[]; store: DiskArchive; dir: string; names: string[] }> {
  await writeLog(redis, ws, { events: 400, agents: 6, seed });
  const events = ((await redis.xrange(workspaceKeys(ws).events, '-', '+')) as StreamEntry[]).map((e) => e[0]);
  const store = new DiskArchive(root);
  await archiveLog(redis, store, ws);
  const dir = path.join(store.root, ws, 'events');
  return { events, store, dir, names: (await readdir(dir)).sort() };
}

/** The events' fields of a log made through the Lua steps in `ws` (400 events): to be given again at other ids. */
export async function logFields(redis: RedisClient, ws: string, seed: number): Promise<StreamEntry[1][]> {
  await writeLog(redis, ws, { events: 400, agents: 6, seed });
  return ((await redis.xrange(workspaceKeys(ws).events, '-', '+')) as StreamEntry[]).map((e) => e[1]);
}

/**
 * `fields` written as the events of `ws` at `id(i)`, archived into `root` as `archivedLog` does
 * (checked: the newest 50 left in Redis, four segments starting at events 0, 100, 200 and 300):
 * the events' ids, the events' archive directory and its segment files in order.
 */
export async function archivedAt(
  redis: RedisClient,
  root: string,
  ws: string,
  fields: readonly StreamEntry[1][],
  id: (i: number) => string,
): Promise<{ events: string[]; dir: string; files: string[] }> {
  const k = workspaceKeys(ws);
  const events = fields.map((_, i) => id(i));
  const m = redis.multi();
  for (const [i, f] of fields.entries()) m.xadd(k.events, events[i]!, ...f);
  await m.exec();
  await archiveLog(redis, new DiskArchive(root), ws);
  expect(await redis.xlen(k.events)).toBe(50);
  const dir = path.join(root, workspaceFolder(ws), 'events');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.jsonl')).sort();
  expect(files.map((f) => f.slice(11, -6))).toEqual([events[0], events[100], events[200], events[300]]);
  return { events, dir, files };
}

export interface LogAtIds {
  /** A new workspace holding the suite's log at `id(i)`, archived as `archivedAt` does. */
  archived(
    id: (i: number) => string,
  ): Promise<{ ws: string; events: string[]; dir: string; files: string[] }>;
  /** GET /events of `ws` after `after`, up to `limit` events: the status and the body. */
  events(
    ws: string,
    after: string,
    limit?: number,
  ): Promise<{ status: number; body: Record<string, unknown> & { events?: { position: string }[] } }>;
  /** Checks that GET /events of `ws` after `after` is served (a 200): the events at `positions`. */
  expectServed(ws: string, after: string, positions: string[]): Promise<void>;
  /**
   * Checks that GET /events of `ws` after `after` (up to `limit`) is a 503 archive-unreadable naming
   * the hole `lostAfter` .. `resumeAt`; its body.
   */
  expectHole(
    ws: string,
    after: string,
    lostAfter: string | null,
    resumeAt: string | null,
    limit?: number,
  ): Promise<Record<string, unknown>>;
}

/**
 * For a suite that gives one log's events again at ids of its choosing: an `archivingSwitchboard`
 * (its directory `sb-<name>-…`) started before the suite's tests and stopped after them, the log
 * made in workspace `<name>-<run>-source` with `seed`, and workspaces `<name>-<run>-<n>` holding it
 * at other ids, read through its API. Call it at the top of the file.
 */
export function suiteLogAtIds(name: string, seed: number): LogAtIds {
  const run = Date.now().toString(36);
  let sb: ArchivingSwitchboard | undefined;
  let fields: StreamEntry[1][] = [];
  let n = 0;
  beforeAll(async () => {
    sb = await archivingSwitchboard(`sb-${name}-`);
    fields = await logFields(sb.main.redis, `${name}-${run}-source`, seed);
  }, 60_000);
  afterAll(async () => sb?.stop());
  const events: LogAtIds['events'] = async (ws, after, limit = 1000) => {
    const res = await sb!.main.api!.inject({
      method: 'GET',
      url: `/v1/workspaces/${ws}/events?after=${after}&limit=${limit}`,
    });
    return {
      status: res.statusCode,
      body: res.json() as Record<string, unknown> & { events?: { position: string }[] },
    };
  };
  return {
    async archived(id) {
      const ws = `${name}-${run}-${++n}`;
      return { ws, ...(await archivedAt(sb!.main.redis, sb!.dir, ws, fields, id)) };
    },
    events,
    async expectServed(ws, after, positions) {
      const on = await events(ws, after);
      expect(on.status, JSON.stringify(on.body)).toBe(200);
      expect(on.body.events!.map((e) => e.position)).toEqual(positions);
    },
    async expectHole(ws, after, lostAfter, resumeAt, limit) {
      const got = await events(ws, after, limit);
      expect(got.status, `after ${after}: ${JSON.stringify(got.body).slice(0, 300)}`).toBe(503);
      expect(got.body.type).toBe('/problems/archive-unreadable');
      expect({ lostAfter: got.body.lostAfter, resumeAt: got.body.resumeAt }, `after ${after}`).toEqual({
        lostAfter,
        resumeAt,
      });
      return got.body;
    },
  };
}

/** An archived workspace's segment files, as `archivedAt` and `LogAtIds.archived` give them. */
export interface ArchivedFiles {
  ws: string;
  dir: string;
  files: string[];
}

/** Segment i of `a`, decoded (it must read whole). */
export async function segmentOf(a: ArchivedFiles, i: number) {
  const d = decodeSegment(await readFile(path.join(a.dir, a.files[i]!)));
  expect(d.problems).toEqual([]);
  return { header: d.header!, entries: d.entries };
}

/**
 * Segment i of `a` replaced by one whose entries hash to its own header, chained to the one before
 * it: its entries `map`ped (by default, event 20 of it given one more field).
 */
export async function replaceSegment(
  a: ArchivedFiles,
  i: number,
  map: (entries: StreamEntry[]) => StreamEntry[] = (es) =>
    es.map((e, j): StreamEntry => (j === 20 ? [e[0], [...e[1], 'altered', 'yes']] : e)),
): Promise<void> {
  const s = await segmentOf(a, i);
  const again = encodeSegment({
    workspace: a.ws,
    stream: 'events',
    index: i,
    prevHash: s.header.prevHash,
    before: s.header.total - s.header.count,
    entries: map(s.entries),
  });
  expect(again.name).toBe(a.files[i]);
  expect(again.header.hash).not.toBe(s.header.hash);
  await writeFile(path.join(a.dir, a.files[i]!), again.bytes);
}

/** Segment i of `a` with its header's total `by` off (its entries and hash as they were). */
export async function retotalSegment(a: ArchivedFiles, i: number, by: number): Promise<void> {
  const file = path.join(a.dir, a.files[i]!);
  const text = (await readFile(file)).toString('utf8');
  const nl = text.indexOf('\n');
  const header = JSON.parse(text.slice(0, nl)) as { total: number };
  await writeFile(file, `${JSON.stringify({ ...header, total: header.total + by })}${text.slice(nl)}`);
}
