/**
 * The log archive on real logs (made through the Lua steps) and real files: archived and
 * trimmed, every entry is still read in order across the archive and the stream, and the auditor
 * finds nothing wrong; commands the projector has not applied stay in Redis; a segment changed on
 * disk (a byte, a removed entry, a reordered pair, a segment removed or replaced) is reported by
 * the auditor as an `archive` violation at its position.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { LogReader, readLogAfter } from '../../src/archive/log-reader.ts';
import { parseRetention, type Retention } from '../../src/archive/retention.ts';
import { decodeSegment, encodeSegment, type LogStream } from '../../src/archive/segment.ts';
import { type ArchiveStore, DiskArchive } from '../../src/archive/store.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { cliEntry } from '../support/main-build.ts';
import { PROJECT_ROOT } from '../support/processes.ts';
import { suiteRedis } from '../support/redis.ts';

const log = pino({ level: 'silent' });

async function all(
  r: Parameters<typeof readLogAfter>[0],
  store: ArchiveStore | undefined,
  ws: string,
  stream: LogStream,
  after = '0-0',
): Promise<StreamEntry[]> {
  const out: StreamEntry[] = [];
  for await (const page of readLogAfter(r, store, ws, stream, after, { pageSize: 97 })) out.push(...page);
  return out;
}

describe('the log archive', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  const dirs: string[] = [];
  let n = 0;
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  async function tempDir(): Promise<string> {
    const d = await mkdtemp(path.join(tmpdir(), 'sb-archive-'));
    dirs.push(d);
    return d;
  }

  const archiver = (store: DiskArchive, retention: Retention, segmentEntries = 100) =>
    new Archiver(suite.redis, store, log, { retention, segmentEntries, everyMs: 50 });

  /** A fresh workspace with a real log, and its streams as they were before any archiving. */
  async function made(events = 600) {
    const ws = `archive-${run}-${++n}`;
    await writeLog(suite.redis, ws, { events, agents: 12, seed: n });
    const k = workspaceKeys(ws);
    return {
      ws,
      k,
      commands: (await suite.redis.xrange(k.commands, '-', '+')) as StreamEntry[],
      events: (await suite.redis.xrange(k.events, '-', '+')) as StreamEntry[],
    };
  }

  it('keeps every entry readable in order across archive and stream, and the audit clean', async () => {
    const log0 = await made();
    const store = new DiskArchive(await tempDir());
    const before = await auditWorkspace(suite.redis, log0.ws, { pageSize: 89 });
    expect(before.violations).toEqual([]);
    const moved = await archiver(store, { count: 50 }).drain(log0.ws);
    expect(moved).toBe(log0.commands.length - 50 + log0.events.length - 50);
    expect(await suite.redis.xlen(log0.k.commands)).toBe(50);
    expect(await suite.redis.xlen(log0.k.events)).toBe(50);
    expect((await store.list(log0.ws, 'events')).length).toBeGreaterThan(4);

    // Every entry, in order, once: from the start and from any position, pages across the boundary.
    expect(await all(suite.redis, store, log0.ws, 'commands')).toEqual(log0.commands);
    expect(await all(suite.redis, store, log0.ws, 'events')).toEqual(log0.events);
    for (const i of [
      0,
      99,
      100,
      101,
      log0.events.length - 51,
      log0.events.length - 50,
      log0.events.length - 1,
    ])
      expect(await all(suite.redis, store, log0.ws, 'events', log0.events[i]![0])).toEqual(
        log0.events.slice(i + 1),
      );

    // A reader of recent entries opens no segment; one reaching back opens only those it needs.
    // (Another name for the same directory: the segments decoded above are kept under the first.)
    let opened = 0;
    const counting = {
      where: `${store.where} (counted)`,
      put: store.put.bind(store),
      list: store.list.bind(store),
      putSnapshot: store.putSnapshot.bind(store),
      listSnapshots: store.listSnapshots.bind(store),
      readSnapshot: store.readSnapshot.bind(store),
      read: (ws: string, stream: LogStream, name: string) => {
        opened++;
        return store.read(ws, stream, name);
      },
    };
    const recent = log0.events.length - 30;
    for await (const _ of readLogAfter(suite.redis, counting, log0.ws, 'events', log0.events[recent]![0]));
    expect(opened).toBe(0);
    // The two holding entries after event 450, and the one before them (its end is held against
    // the first one's start: a segment starting before it ends would have the reader pass over
    // entries of it; test/archive/broken-archive-3.test.ts).
    for await (const _ of readLogAfter(suite.redis, counting, log0.ws, 'events', log0.events[450]![0]));
    expect(opened).toBe(3);

    const after = await auditWorkspace(suite.redis, log0.ws, { pageSize: 89, archive: store });
    expect(after.violations).toEqual([]);
    expect(after).toMatchObject({
      ok: true,
      state: 'compared',
      commands: before.commands,
      events: before.events,
      decisionsChecked: before.decisionsChecked,
      pendingCommands: 0,
    });
    // Without the archive, the auditor says the prefix is missing rather than pass a short log.
    const blind = await auditWorkspace(suite.redis, log0.ws, { compareState: false });
    expect(
      blind.violations
        .filter((v) => v.kind === 'archive')
        .map((v) => v.stream)
        .sort(),
    ).toEqual(['commands', 'events']);
  });

  it('keeps the archive owner-only: the directories it makes 0700, segments and snapshots 0600', async () => {
    const root = path.join(await tempDir(), 'data', 'archive');
    const store = new DiskArchive(root);
    await store.put('w', 'events', 'segment', Buffer.from('customer data'));
    await store.putSnapshot('w', 'snapshot', Buffer.from('customer data'));
    const mode = async (p: string) => ((await stat(p)).mode & 0o777).toString(8);
    for (const d of [path.dirname(root), root, path.join(root, 'w'), path.join(root, 'w', 'events')])
      expect(await mode(d), d).toBe('700');
    expect(await mode(path.join(root, 'w', 'events', 'segment'))).toBe('600');
    expect(await mode(path.join(root, 'w', 'snapshots', 'snapshot'))).toBe('600');
  });

  it('never trims a command the projector has not applied; ages and counts both bound', async () => {
    const log0 = await made(300);
    const store = new DiskArchive(await tempDir());
    // Appended, not projected: after the checkpoint.
    for (let i = 0; i < 20; i++)
      await appendCommand(suite.redis, {
        workspace: log0.ws,
        command: { type: 'QueueContact', contactId: `late-${i}`, skills: ['English'], priority: 1 },
      });
    const checkpoint = (await suite.redis.hget(log0.k.meta, 'applied'))!;
    // An age of a day moves nothing yet.
    expect(await archiver(store, parseRetention('24h') as Retention).drain(log0.ws)).toBe(0);
    await archiver(store, { count: 0 }).drain(log0.ws);
    const left = (await suite.redis.xrange(log0.k.commands, '-', '+')) as StreamEntry[];
    expect(left.length).toBe(20);
    expect(left[0]![0] > checkpoint || left[0]![0].length > checkpoint.length).toBe(true);
    // The newest event always stays in Redis.
    expect(await suite.redis.xlen(log0.k.events)).toBe(1);
    const names = await store.list(log0.ws, 'commands');
    const lastSegment = decodeSegment(await store.read(log0.ws, 'commands', names.at(-1)!));
    expect(lastSegment.header?.last).toBe(checkpoint);

    const report = await auditWorkspace(suite.redis, log0.ws, { archive: store });
    expect(report.violations).toEqual([]);
    expect(report.pendingCommands).toBe(20);
    expect(report.events).toBe(log0.events.length);

    // An age of 0 ms is every applied entry too; and nothing is archived twice.
    expect(await archiver(store, { ageMs: 0 }).drain(log0.ws)).toBe(0);
    expect(await all(suite.redis, store, log0.ws, 'commands')).toEqual([...log0.commands, ...left]);
  });

  it('refuses to archive into a directory that is not the archive Redis was trimmed for', async () => {
    const log0 = await made(300);
    const dir = await tempDir();
    await archiver(new DiskArchive(dir), { count: 10 }).drain(log0.ws);
    const other = archiver(new DiskArchive(await tempDir()), { count: 1 });
    const lengths = [await suite.redis.xlen(log0.k.commands), await suite.redis.xlen(log0.k.events)];
    for (const stream of ['commands', 'events'] as const)
      await expect(other.step(log0.ws, stream)).rejects.toThrow(
        /ends at no segment, yet Redis was trimmed up to .*ARCHIVE_DIR must be one shared place/,
      );
    // A segment removed from the right one: refused as well, and nothing trimmed meanwhile.
    const segments = path.join(dir, log0.ws, 'events');
    await unlink(path.join(segments, (await readdir(segments)).sort().at(-1)!));
    await expect(archiver(new DiskArchive(dir), { count: 1 }).step(log0.ws, 'events')).rejects.toThrow(
      /the events archive of .* ends at segment \d+, yet Redis was trimmed/,
    );
    expect([await suite.redis.xlen(log0.k.commands), await suite.redis.xlen(log0.k.events)]).toEqual(lengths);
  });

  it('reads every entry once while an archiver trims under the reader', async () => {
    const log0 = await made(800);
    const store = new DiskArchive(await tempDir());
    // A first part archived already, the rest moved while the audit and a reader page through.
    await archiver(store, { count: 600 }).drain(log0.ws);
    const [report, events] = await Promise.all([
      auditWorkspace(suite.redis, log0.ws, { pageSize: 23, archive: store }),
      all(suite.redis, store, log0.ws, 'events'),
      (async () => {
        const a = archiver(store, { count: 5 }, 17);
        for (let moved = -1; moved !== 0; ) {
          moved = (await a.step(log0.ws, 'events')) + (await a.step(log0.ws, 'commands'));
          await new Promise((r) => setImmediate(r));
        }
      })(),
    ]);
    expect(await suite.redis.xlen(log0.k.events)).toBe(5);
    expect(events).toEqual(log0.events);
    expect(report.violations).toEqual([]);
    expect(report.events).toBe(log0.events.length);

    // Overtaken for sure: a reader past the archive, into the stream, when the archiver trims
    // beyond it; it finds the entries in the new segments.
    const again = await made(800);
    const store2 = new DiskArchive(await tempDir());
    await archiver(store2, { count: 600 }).drain(again.ws);
    const breaks: unknown[] = [];
    const reader = new LogReader(suite.redis, store2, again.ws, 'events', {
      pageSize: 50,
      onBreak: (b) => breaks.push(b),
    });
    const read: StreamEntry[] = [];
    while (read.length < again.events.length - 500) read.push(...(await reader.next()));
    expect(reader.fromStream).toBeGreaterThan(0);
    await archiver(store2, { count: 5 }, 17).drain(again.ws);
    for (let page = await reader.next(); ; page = await reader.next()) {
      read.push(...page);
      if (page.length < reader.size) break;
    }
    expect(read).toEqual(again.events);
    expect(breaks).toEqual([]);
    expect(reader.fromArchive + reader.fromStream).toBe(again.events.length);
    expect(reader.fromStream).toBeLessThan(again.events.length - 600);
  });

  it('makes `npm run audit` exit 1 on a broken archive, naming the position', async () => {
    const log0 = await made(300);
    const dir = await tempDir();
    await archiver(new DiskArchive(dir), { count: 10 }).drain(log0.ws);
    const nodes = suite.server.env.REDIS_CLUSTER_NODES;
    const target = nodes ? ['--cluster-nodes', nodes] : ['--redis-url', suite.server.url];
    const cli = (...args: string[]) =>
      new Promise<{ code: number; stdout: string }>((resolve) =>
        execFile(
          process.execPath,
          [...cliEntry('audit'), '--workspace', log0.ws, ...target, ...args],
          { cwd: PROJECT_ROOT, timeout: 60_000, env: { ...process.env, REDIS_URL: '', ARCHIVE_DIR: '' } },
          (err, stdout) => resolve({ code: err ? Number(err.code) : 0, stdout }),
        ),
      );
    expect((await cli('--archive-dir', dir)).code).toBe(0);
    const segments = path.join(dir, log0.ws, 'commands');
    await unlink(path.join(segments, (await readdir(segments)).sort()[0]!));
    const broken = await cli('--archive-dir', dir);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(
      new RegExp(
        `${log0.commands[100]![0]}\\s+commands\\s+archive\\s+segment 0000000001-\\S+: segment 0 of the commands archive is missing`,
      ),
    );
  }, 30_000);

  describe('a segment changed on disk', () => {
    let base: { ws: string; dir: string; events: StreamEntry[] };

    /** A copy of the archive, changed by `change`, audited. */
    async function tampered(change: (dir: string) => Promise<void>) {
      if (!base) {
        const log0 = await made(500);
        const dir = await tempDir();
        await archiver(new DiskArchive(dir), { count: 10 }).drain(log0.ws);
        base = { ws: log0.ws, dir, events: log0.events };
      }
      const copy = await tempDir();
      await cp(base.dir, copy, { recursive: true });
      const segments = path.join(copy, base.ws, 'events');
      await change(segments);
      const report = await auditWorkspace(suite.redis, base.ws, {
        archive: new DiskArchive(copy),
        compareState: false,
      });
      return report.violations.filter((v) => v.kind === 'archive');
    }

    const names = async (dir: string) => (await readdir(dir)).sort();
    const lines = async (file: string) => (await readFile(file, 'utf8')).split('\n');

    it('passes an untouched copy', async () => {
      expect(await tampered(async () => {})).toEqual([]);
    });

    it('reports one altered byte at its segment', async () => {
      const found = await tampered(async (dir) => {
        const file = path.join(dir, (await names(dir))[1]!);
        const text = await readFile(file, 'utf8');
        const at = text.indexOf('agent-', text.indexOf('\n'));
        await writeFile(file, `${text.slice(0, at)}Agent-${text.slice(at + 6)}`);
      });
      expect(found).toHaveLength(1);
      expect(found[0]).toMatchObject({ stream: 'events', position: base.events[100]![0] });
      expect(found[0]!.message).toMatch(/do not hash to the header's hash/);
    });

    it('reports a removed entry at its segment', async () => {
      const found = await tampered(async (dir) => {
        const file = path.join(dir, (await names(dir))[2]!);
        const l = await lines(file);
        l.splice(5, 1);
        await writeFile(file, l.join('\n'));
      });
      expect(found).toHaveLength(1);
      expect(found[0]).toMatchObject({ position: base.events[200]![0] });
      expect(found[0]!.message).toMatch(/counts 100 entries, the file holds 99/);
    });

    it('reports a reordered pair at the entry out of order', async () => {
      const found = await tampered(async (dir) => {
        const file = path.join(dir, (await names(dir))[0]!);
        const l = await lines(file);
        [l[10], l[11]] = [l[11]!, l[10]!];
        await writeFile(file, l.join('\n'));
      });
      expect(found).toHaveLength(1);
      // Lines 10 and 11 are entries 9 and 10 (line 0 is the header): entry 9 now follows entry 10.
      expect(found[0]).toMatchObject({ position: base.events[9]![0] });
      expect(found[0]!.message).toMatch(/out of order/);
    });

    it('reports a removed segment at the next one, and a removed last segment by the mark in Redis', async () => {
      const middle = await tampered(async (dir) => unlink(path.join(dir, (await names(dir))[2]!)));
      expect(middle).toHaveLength(1);
      expect(middle[0]).toMatchObject({ position: base.events[300]![0] });
      expect(middle[0]!.message).toMatch(/segment 2 of the events archive is missing/);

      const last = await tampered(async (dir) => unlink(path.join(dir, (await names(dir)).at(-1)!)));
      expect(last).toHaveLength(1);
      expect(last[0]!.message).toMatch(/trimmed up to .* but the archive ends at segment/);
    });

    it('reports a segment replaced by one with a hash of its own', async () => {
      const found = await tampered(async (dir) => {
        const name = (await names(dir))[1]!;
        const d = decodeSegment(await readFile(path.join(dir, name)));
        const forged = encodeSegment({
          workspace: base.ws,
          stream: 'events',
          index: 1,
          prevHash: d.header!.prevHash,
          before: 100,
          entries: d.entries.map((e, i) => (i === 3 ? [e[0], [...e[1].slice(0, 3), '{}']] : e)),
        });
        await writeFile(path.join(dir, name), forged.bytes);
      });
      expect(found).toHaveLength(1);
      expect(found[0]).toMatchObject({ position: base.events[200]![0] });
      expect(found[0]!.message).toMatch(/prevHash is not the hash of segment 1/);
    });
  });
});
