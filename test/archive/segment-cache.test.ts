/**
 * A client paging through archived history (GET /events?after=…, a live feed resumed from an old
 * position) makes a new log reader per page, each starting inside a segment. Decoding a segment is
 * the whole file (10,000 entries by default: 20 – 50 ms of the API's event loop here), so each
 * segment is read and decoded once while pages move through it, not once per page: the readers
 * share a small cache of decoded segments, bounded in bytes.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { LogReader, SEGMENT_CACHE_BYTES } from '../../src/archive/log-reader.ts';
import type { LogStream } from '../../src/archive/segment.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';

/** A disk archive that counts the segments read from it. */
class CountingArchive extends DiskArchive {
  reads = 0;
  override read(workspace: string, stream: LogStream, name: string): Promise<Buffer> {
    this.reads++;
    return super.read(workspace, stream, name);
  }
}

describe('archived history read in pages', () => {
  const suite = suiteRedis();
  const tempDir = suiteTempDirs();

  it('reads and decodes each segment once while pages move through it', async () => {
    const ws = `seg-cache-${Date.now().toString(36)}`;
    const r = suite.redis;
    await ensureGroup(r, ws);
    const commands: Command[] = Array.from({ length: 200 }, (_, i) => ({
      type: 'QueueContact',
      contactId: `c${i}`,
      skills: ['s'],
      priority: 0,
    }));
    for (const command of commands) await appendCommand(r, { workspace: ws, command });
    await projectPending(r, ws);
    const k = workspaceKeys(ws);
    const all = ((await r.xrange(k.events, '-', '+')) as StreamEntry[]).map((e) => e[0]);
    const dir = await tempDir('sb-segcache-');
    const archive = new CountingArchive(dir);
    await new Archiver(r, archive, pino({ level: 'silent' }), {
      retention: { count: 20 },
      segmentEntries: 50,
      everyMs: 10,
    }).drain(ws);
    const segments = (await archive.list(ws, 'events')).length;
    expect(segments).toBeGreaterThanOrEqual(3);
    archive.reads = 0;

    // As GET /events pages: a reader per page of 10, from a position inside the first segment.
    const seen: string[] = [];
    let after = all[4]!;
    for (;;) {
      const page = await new LogReader(r, archive, ws, 'events', { after, pageSize: 10 }).next('+');
      seen.push(...page.map((e) => e[0]));
      if (page.length < 10) break;
      after = page.at(-1)![0];
    }
    expect(seen).toEqual(all.slice(5));
    expect(archive.reads).toBe(segments);
    expect(SEGMENT_CACHE_BYTES).toBeGreaterThan(0);
  });

  it('reads and decodes a segment once for readers that ask for it at the same time', async () => {
    // Clients resuming from archived positions together (live feeds reconnecting after a restart):
    // each would read and decode the same file, holding a decoded copy of it each meanwhile.
    const ws = `seg-cache-together-${Date.now().toString(36)}`;
    const r = suite.redis;
    await ensureGroup(r, ws);
    for (let i = 0; i < 120; i++)
      await appendCommand(r, {
        workspace: ws,
        command: { type: 'QueueContact', contactId: `c${i}`, skills: ['s'], priority: 0 },
      });
    await projectPending(r, ws);
    const all = ((await r.xrange(workspaceKeys(ws).events, '-', '+')) as StreamEntry[]).map((e) => e[0]);
    const archive = new CountingArchive(await tempDir('sb-segcache-'));
    await new Archiver(r, archive, pino({ level: 'silent' }), {
      retention: { count: 20 },
      segmentEntries: 50,
      everyMs: 10,
    }).drain(ws);
    archive.reads = 0;
    const pages = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        new LogReader(r, archive, ws, 'events', { after: all[i]!, pageSize: 10 }).next('+'),
      ),
    );
    pages.forEach((page, i) => {
      expect(page.map((e) => e[0])).toEqual(all.slice(i + 1, i + 11));
    });
    expect(archive.reads).toBe(1);
  });
});
