/**
 * What reads of the streams cost Redis (docs/ARCHIVE.md, "What a pass costs"; docs/BENCHMARKS.md,
 * "Background work that held Redis and the API"). With the default retention (24h) a busy stream
 * holds a day of entries, nothing of it due: an archiver's pass reads no entry of it (the tree
 * before read a whole segment, 10,000 entries a stream, every 10 s, only to find none due). What
 * is due is exactly what a full read of the stream would have picked: past the count (all but the
 * newest `count`), or past the age (before now − age), whichever reaches further; commands only up
 * to the projector's checkpoint; the newest entry never; at most a segment. And no reader asks
 * Redis for more than READ_PAGE entries at once (a read holds every other client back for as long
 * as it takes): the archiver, the log reader across archive and stream (the auditor, the
 * snapshots, the event history, the intervals from the log), the stream-only history and the
 * wait histogram's fold, each still handing on every entry once and in order.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { foldWaits } from '../../src/adapters/http/wait-histogram.ts';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { READ_PAGE, type StreamEntry, streamHistory } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { LogReader } from '../../src/archive/log-reader.ts';
import type { Retention } from '../../src/archive/retention.ts';
import { decodeSegment, type LogStream, before as positionBefore } from '../../src/archive/segment.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { defaultProjectorOptions, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { commandsDuring } from '../support/slowlog.ts';

const log = pino({ level: 'silent' });
const msOf = (id: string) => Number(id.split('-')[0]);
const run = Date.now().toString(36);

describe('reads of the streams', () => {
  const suite = suiteRedis();
  const dirs: string[] = [];
  let n = 0;
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  async function store(): Promise<DiskArchive> {
    const d = await mkdtemp(path.join(tmpdir(), 'sb-pass-'));
    dirs.push(d);
    return new DiskArchive(d);
  }

  const entries = async (key: string) => (await suite.redis.xrange(key, '-', '+')) as StreamEntry[];

  /** Bytes Redis sent while `f` ran, less what asking costs (INFO's own reply, measured alike). */
  async function bytesSent(f: () => Promise<unknown>): Promise<number> {
    const sent = async () =>
      Number(/total_net_output_bytes:(\d+)/.exec((await suite.admin.info('stats')) as string)![1]);
    const a = await sent();
    const b = await sent();
    await f();
    const c = await sent();
    return c - b - (b - a);
  }

  it('with nothing due reads no entry of a long stream', async () => {
    const ws = `pass-${run}-${++n}`;
    const k = workspaceKeys(ws);
    await writeLog(suite.redis, ws, { events: 3000, agents: 20, seed: 7 });
    const streamBytes = await bytesSent(() => entries(k.events));
    expect(streamBytes).toBeGreaterThan(300_000);
    const archiver = new Archiver(suite.redis, await store(), log, {
      retention: { ageMs: 86_400_000 },
      segmentEntries: 10_000,
      everyMs: 10_000,
    });
    let moved = -1;
    const sent = await bytesSent(async () => {
      moved = (await archiver.step(ws, 'commands')) + (await archiver.step(ws, 'events'));
    });
    expect(moved).toBe(0);
    // The tree before read both streams whole here (the events alone: streamBytes).
    expect(sent).toBeLessThan(2_000);

    // Past a count of the newest 100, the rest is due: exactly that is read (and no more).
    const byCount = new Archiver(suite.redis, await store(), log, {
      retention: { count: 100, ageMs: 86_400_000 },
      segmentEntries: 10_000,
      everyMs: 10_000,
    });
    const before = await entries(k.events);
    const moving = await bytesSent(async () =>
      expect(await byCount.step(ws, 'events')).toBe(before.length - 100),
    );
    expect(moving).toBeLessThan(streamBytes);
    expect(await entries(k.events)).toEqual(before.slice(-100));
  });

  /**
   * A log with a gap of GAP_MS in its positions: the older part, then (after the gap) commands
   * that queue contacts, some of them applied and the last few not. Copied into a fresh workspace
   * (same positions, same checkpoint) for each retention tried.
   */
  const GAP_MS = 4000;
  const AGE_MS = 2500;
  async function gapped(): Promise<{
    commands: StreamEntry[];
    events: StreamEntry[];
    applied: string;
    gapStart: string;
  }> {
    const ws = `pass-${run}-${++n}`;
    const k = workspaceKeys(ws);
    await writeLog(suite.redis, ws, { events: 400, agents: 8, seed: 11 });
    // The last position before the gap (an event is appended after the command it comes of).
    const gapStart = (await entries(k.events)).at(-1)![0];
    await new Promise((r) => setTimeout(r, GAP_MS));
    for (let i = 0; i < 12; i++)
      await appendCommand(suite.redis, {
        workspace: ws,
        command: { type: 'QueueContact', contactId: `after-gap-${i}`, skills: ['English'], priority: 1 },
      });
    await projectPending(suite.redis, ws, [], defaultProjectorOptions);
    for (let i = 0; i < 3; i++)
      await appendCommand(suite.redis, {
        workspace: ws,
        command: { type: 'QueueContact', contactId: `unapplied-${i}`, skills: ['English'], priority: 1 },
      });
    return {
      commands: await entries(k.commands),
      events: await entries(k.events),
      applied: (await suite.redis.hget(k.meta, 'applied'))!,
      gapStart,
    };
  }

  async function copyOf(g: Awaited<ReturnType<typeof gapped>>): Promise<string> {
    const ws = `pass-${run}-${++n}`;
    const k = workspaceKeys(ws);
    // Sent together: one connection keeps their order, and the copies take a few ms, not seconds.
    for (const [key, list] of [
      [k.commands, g.commands],
      [k.events, g.events],
    ] as const)
      await Promise.all(list.map(([id, fields]) => suite.redis.xadd(key, id, ...fields)));
    await suite.redis.hset(k.meta, 'applied', g.applied);
    return ws;
  }

  /** What a full read of the stream picks (the rule as the tree before applied it to a whole page). */
  function reference(
    list: StreamEntry[],
    upTo: string | undefined,
    r: Retention,
    segment: number,
    nowMs: number,
  ): StreamEntry[] {
    const page = list.filter(([id]) => upTo === undefined || !positionBefore(upTo, id)).slice(0, segment);
    let due = r.count === undefined ? 0 : Math.max(0, Math.min(page.length, list.length - r.count));
    if (r.ageMs !== undefined) while (due < page.length && msOf(page[due]![0]) < nowMs - r.ageMs) due++;
    return page.slice(0, Math.max(0, Math.min(due, list.length - 1)));
  }

  it('reads exactly what is due: past the count or the age, up to the checkpoint, a segment at most', async () => {
    const g = await gapped();
    const applied = g.commands.findIndex(([id]) => id === g.applied);
    expect(applied).toBe(g.commands.length - 4);
    const retentions: Retention[] = [
      { ageMs: AGE_MS },
      { count: 0 },
      { count: 5 },
      { count: 30, ageMs: AGE_MS },
      { count: g.events.length - 2, ageMs: AGE_MS },
      { ageMs: 86_400_000 },
      { ageMs: 0 },
    ];
    const checked: { what: string; written: number; early: number; t1: number }[] = [];
    for (const retention of retentions)
      for (const segment of [10_000, 150])
        for (const stream of ['commands', 'events'] as LogStream[]) {
          const ws = await copyOf(g);
          const archive = await store();
          const archiver = new Archiver(suite.redis, archive, log, {
            retention,
            segmentEntries: segment,
            everyMs: 10_000,
          });
          const time = async () => {
            const [s, us] = await suite.redis.time();
            return Number(s) * 1000 + Math.floor(Number(us) / 1000);
          };
          const t0 = await time();
          const moved = await archiver.step(ws, stream);
          const t1 = await time();
          const list = stream === 'commands' ? g.commands : g.events;
          const upTo = stream === 'commands' ? g.applied : undefined;
          const names = await archive.list(ws, stream);
          const written =
            names.length === 0 ? [] : decodeSegment(await archive.read(ws, stream, names[0]!)).entries;
          const what = `${stream}, ${JSON.stringify(retention)}, segment ${segment}`;
          expect(written.length, what).toBe(moved);
          // The rule at the pass's clock, which lies between t0 and t1: at least what is due at t0,
          // at most what is due at t1, in order from the first.
          const early = reference(list, upTo, retention, segment, t0);
          const late = reference(list, upTo, retention, segment, t1);
          expect(written.length, what).toBeGreaterThanOrEqual(early.length);
          expect(
            written.map(([id]) => id),
            what,
          ).toEqual(late.slice(0, written.length).map(([id]) => id));
          checked.push({ what, written: written.length, early: early.length, t1 });
        }
    // Right after the log was made, the age's cut fell in its gap: every entry before it moved and
    // none after (the checks above are then exact, not a range). So for the passes that ended
    // within AGE_MS of the first entry after the gap; on a loaded machine the later of the four
    // may end past it, when the entries after the gap are due too (held to the range above).
    const afterGap = g.commands.find(([id]) => positionBefore(g.gapStart, id))!;
    const inGap = (c: { t1: number }) => c.t1 < msOf(afterGap[0]) + AGE_MS;
    const aged = checked.filter((c) => c.what.includes(`"ageMs":${AGE_MS}}`) && !c.what.includes('count'));
    expect(aged.length).toBe(4);
    const first = aged.filter(inGap);
    expect(first.length, 'passes that ended before the entries after the gap were due').toBeGreaterThan(0);
    for (const c of first) expect(c.written, c.what).toBe(c.early);
    const beforeGap = (list: StreamEntry[]) => list.filter(([id]) => !positionBefore(g.gapStart, id)).length;
    expect(beforeGap(g.events)).toBeGreaterThan(300);
    for (const [stream, list] of [
      ['events', g.events],
      ['commands', g.commands],
    ] as const)
      for (const c of first.filter((c) => c.what.startsWith(stream) && c.what.endsWith('10000')))
        expect(c.written, c.what).toBe(beforeGap(list));
  });

  /** What `f` returns, and the COUNT of each XRANGE Redis ran meanwhile. */
  async function xrangeCounts<T>(f: () => Promise<T>): Promise<{ result: T; counts: number[] }> {
    const { result, calls } = await commandsDuring(suite.admin, f);
    const counts = calls
      // Reads of the log, not the trim's look at one position (its segment's last entry).
      .filter((args) => args[0]?.toUpperCase() === 'XRANGE' && args[2] !== args[3])
      .map((args) => {
        const at = args.findIndex((a) => a.toUpperCase() === 'COUNT');
        return at < 0 ? Number.POSITIVE_INFINITY : Number(args[at + 1]);
      });
    return { result, counts };
  }

  it(`reads a segment in reads of at most ${READ_PAGE} entries`, async () => {
    const ws = `pass-${run}-${++n}`;
    const k = workspaceKeys(ws);
    await writeLog(suite.redis, ws, { events: 2600, agents: 20, seed: 3 });
    const all = await entries(k.events);
    const archiver = new Archiver(suite.redis, await store(), log, {
      retention: { count: 0 },
      segmentEntries: 2500,
      everyMs: 10_000,
    });
    const { result: moved, counts } = await xrangeCounts(() => archiver.step(ws, 'events'));
    expect(moved).toBe(2500);
    expect(counts.length).toBe(3);
    expect(Math.max(...counts)).toBe(READ_PAGE);
    expect(await entries(k.events)).toEqual(all.slice(2500));
  });

  it(`reads pages of the log, the history and the wait fold in reads of at most ${READ_PAGE}`, async () => {
    const ws = `pass-${run}-${++n}`;
    const k = workspaceKeys(ws);
    await writeLog(suite.redis, ws, { events: 3300, agents: 20, seed: 5 });
    const all = await entries(k.events);
    expect(all.length).toBeGreaterThan(3 * READ_PAGE);

    // Across archive and stream: a page of 2,500 is read in three parts, and pages follow on.
    const archive = await store();
    await new Archiver(suite.redis, archive, log, {
      retention: { count: 2000 },
      segmentEntries: 700,
      everyMs: 1,
    }).drain(ws);
    const reader = new LogReader(suite.redis, archive, ws, 'events', { pageSize: 2500 });
    const read = await xrangeCounts(async () => [...(await reader.next()), ...(await reader.next())]);
    expect(read.result.map(([id]) => id)).toEqual(all.map(([id]) => id));
    expect(reader.archived.entries).toBe(all.length - 2000);
    expect(read.counts.length).toBeGreaterThan(0);
    expect(Math.max(...read.counts)).toBeLessThanOrEqual(READ_PAGE);

    // The auditor's pages of 2,500 (commands and events through the log reader, outcomes on their own).
    const audited = await xrangeCounts(() => auditWorkspace(suite.redis, ws, { pageSize: 2500, archive }));
    expect(audited.result.violations).toEqual([]);
    expect(audited.counts.length).toBeGreaterThan(3);
    expect(Math.max(...audited.counts)).toBeLessThanOrEqual(READ_PAGE);

    // The stream only: a history page of 2,500 after a position.
    const after = all[all.length - 1900]![0];
    const history = await xrangeCounts(() => streamHistory(suite.redis)(ws, after, 2500));
    expect(history.result).toEqual(all.slice(all.length - 1899));
    expect(history.counts).toEqual([READ_PAGE, READ_PAGE]);

    // The wait histogram's fold over what the stream holds now (its cursor starts at the end).
    await suite.redis.hset(`${k.prefix}metrics:wait`, 'cursor', '0-0');
    const fold = await xrangeCounts(() => foldWaits(suite.redis, ws, Date.now() + 5000));
    const assigned = all.slice(-2000).filter(([, f]) => f[1] === 'AssignmentMade').length;
    expect(assigned).toBeGreaterThan(0);
    expect(fold.result.count).toBe(assigned);
    expect(fold.counts.length).toBeGreaterThan(2);
    expect(Math.max(...fold.counts)).toBeLessThanOrEqual(READ_PAGE);
  });

  it('a reader from the start that read the stream before the archiver moved several segments past it: every entry once, no chain break', async () => {
    const ws = `reads-${run}-${++n}-drained-under`;
    await writeLog(suite.redis, ws, { events: 600, agents: 12, seed: n });
    const whole = await entries(workspaceKeys(ws).events);
    const archive = await store();
    const breaks: unknown[] = [];
    const reader = new LogReader(suite.redis, archive, ws, 'events', {
      pageSize: 100,
      onBreak: (b) => breaks.push(b),
    });
    const got: StreamEntry[] = [];
    // Three pages from the stream while nothing is archived yet.
    for (let i = 0; i < 3; i++) got.push(...(await reader.next()));
    expect(got).toHaveLength(300);
    // Then the archiver moves segments of 50 entries past the reader's position, all but the newest 20.
    await new Archiver(suite.redis, archive, log, {
      retention: { count: 20 },
      segmentEntries: 50,
      everyMs: 10,
    }).drain(ws);
    for (;;) {
      const page = await reader.next();
      got.push(...page);
      if (page.length < reader.size) break;
    }
    expect(got.map((e) => e[0])).toEqual(whole.map((e) => e[0]));
    expect(breaks).toEqual([]);
  });
});
