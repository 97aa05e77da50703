/**
 * A damaged segment mended on disk (restored from a copy, or moved aside and written again by the
 * archiver, as the errors say) is read whole from then on by the process that met it damaged: the
 * readers' cache of decoded segments keeps only segments that read back whole, so a running API
 * does not keep answering 503 archive-unreadable from a damaged copy it decoded before the repair.
 */
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { ArchiveBreakError, readLogAfter, refuseBreaks } from '../../src/archive/log-reader.ts';
import { encodeSegment } from '../../src/archive/segment.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { suiteRedis } from '../support/redis.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';

const log = pino({ level: 'silent' });

describe('a damaged segment mended on disk', () => {
  const suite = suiteRedis();
  const tempDir = suiteTempDirs();
  const run = Date.now().toString(36);
  let n = 0;

  /** The event history after `after` as GET /events reads it (the process's shared segment cache). */
  async function history(store: DiskArchive, ws: string, after: string): Promise<string[] | Error> {
    const out: string[] = [];
    try {
      for await (const page of readLogAfter(suite.redis, store, ws, 'events', after, {
        pageSize: 100,
        onBreak: refuseBreaks(store, ws),
      }))
        out.push(...page.map((e) => e[0]));
      return out;
    } catch (err) {
      return err as Error;
    }
  }

  async function archived() {
    const ws = `repair-${run}-${++n}`;
    await writeLog(suite.redis, ws, { events: 400, agents: 6, seed: n });
    const k = workspaceKeys(ws);
    const events = ((await suite.redis.xrange(k.events, '-', '+')) as StreamEntry[]).map((e) => e[0]);
    const store = new DiskArchive(await tempDir('sb-repair-'));
    await new Archiver(suite.redis, store, log, {
      retention: { count: 50 },
      segmentEntries: 100,
      everyMs: 10,
    }).drain(ws);
    return { ws, k, events, store, dir: path.join(store.root, ws, 'events') };
  }

  it('restored from a copy, is read whole again by the process that read it damaged', async () => {
    const a = await archived();
    const name = (await readdir(a.dir)).filter((f) => f.endsWith('.jsonl')).sort()[1]!;
    const file = path.join(a.dir, name);
    const good = await readFile(file);
    await writeFile(file, good.subarray(0, good.length >> 1));
    for (const after of ['0-0', a.events[150]!])
      expect(await history(a.store, a.ws, after)).toBeInstanceOf(ArchiveBreakError);
    // The operator restores it, as the error says.
    await writeFile(file, good);
    expect(await history(a.store, a.ws, '0-0')).toEqual(a.events);
    expect(await history(a.store, a.ws, a.events[150]!)).toEqual(a.events.slice(151));
  });

  it('moved aside and written again by the archiver, is read whole again', async () => {
    const a = await archived();
    // The next segment, torn on disk before the stream was trimmed for it.
    const names = (await readdir(a.dir)).filter((f) => f.endsWith('.jsonl')).sort();
    const tip = JSON.parse((await readFile(path.join(a.dir, names.at(-1)!), 'utf8')).split('\n')[0]!);
    const next = (await suite.redis.xrange(a.k.events, '-', '+', 'COUNT', 30)) as StreamEntry[];
    const seg = encodeSegment({
      workspace: a.ws,
      stream: 'events',
      index: tip.index + 1,
      prevHash: tip.hash,
      before: tip.total,
      entries: next,
    });
    await writeFile(path.join(a.dir, seg.name), seg.bytes.subarray(0, seg.bytes.length - 40));
    expect(await history(a.store, a.ws, '0-0')).toBeInstanceOf(ArchiveBreakError);
    // As the archiver's error says: the file moved aside, the segment written again from Redis
    // (the same 30 entries, so under the same name).
    await rename(path.join(a.dir, seg.name), path.join(a.dir, `${seg.name}.damaged`));
    expect(
      await new Archiver(suite.redis, a.store, log, {
        retention: { count: 20 },
        segmentEntries: 30,
        everyMs: 10,
      }).step(a.ws, 'events'),
    ).toBe(30);
    expect(await history(a.store, a.ws, '0-0')).toEqual(a.events);
  });
});
