/**
 * The archive's mark only moves forward: a trim for an older segment (an archiver that kept going
 * after it lost its lease, while another took the workspace further) changes nothing. And it never
 * marks a segment whose last entry the stream no longer holds: an archiver that read a segment's
 * entries from a Redis that then came back from an older copy (killed between the archiver's read
 * and its trim) marked the segment of lost entries on the restored Redis, which took the archive
 * as whole and chained what Redis holds onto it, with no refusal (a full run of
 * test/archive/rollback-edges-1.test.ts on a loaded machine met it).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { ArchiveMismatchError, trimAndMark } from '../../src/archive/archiver.ts';
import { parseAnchor } from '../../src/archive/chain.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { archiveLog } from '../support/archive-log.ts';
import { suiteRedis } from '../support/redis.ts';

describe('the archive mark', () => {
  const suite = suiteRedis();

  it('never moves back, and an older trim removes nothing more', async () => {
    const ws = `mark-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const r = suite.redis;
    const ids: string[] = [];
    for (let i = 1; i <= 30; i++) ids.push((await r.xadd(k.events, `1700000000000-${i}`, 'n', String(i)))!);
    const segment = (index: number, last: number) => ({
      index,
      last: ids[last - 1]!,
      hash: `h${index}`,
      total: last,
    });

    expect(await trimAndMark(r, ws, 'events', segment(0, 10))).toBe(true);
    expect(await trimAndMark(r, ws, 'events', segment(1, 20))).toBe(true);
    expect(await r.xlen(k.events)).toBe(10);
    // A late archiver with the first segment: the mark stays at the second, nothing is trimmed.
    expect(await trimAndMark(r, ws, 'events', segment(0, 10))).toBe(false);
    expect(parseAnchor(await r.hget(k.archive, 'events'))).toMatchObject({ index: 1, last: ids[19] });
    // The same segment again: already marked.
    expect(await trimAndMark(r, ws, 'events', segment(1, 20))).toBe(false);
    expect(await r.xlen(k.events)).toBe(10);
    // The other stream's mark is its own.
    expect(await r.hget(k.archive, 'commands')).toBeNull();
  });

  it('refuses to mark a segment whose last entry the stream no longer holds', async () => {
    const ws = `mark-lost-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const r = suite.redis;
    for (let i = 1; i <= 10; i++) await r.xadd(k.events, `1700000000000-${i}`, 'n', String(i));
    expect(
      await trimAndMark(r, ws, 'events', { index: 0, last: '1700000000000-5', hash: 'h0', total: 5 }),
    ).toBe(true);
    // Segment 1 was read up to 1700000000000-12 from a Redis that lost 11 and 12 since (its copy
    // ends at 10), and 13 is a new entry after the restart.
    await r.xadd(k.events, '1700000000000-13', 'n', 'new');
    await expect(
      trimAndMark(r, ws, 'events', { index: 1, last: '1700000000000-12', hash: 'h1', total: 12 }),
    ).rejects.toThrow(ArchiveMismatchError);
    // Neither trimmed nor marked.
    expect(parseAnchor(await r.hget(k.archive, 'events'))).toMatchObject({
      index: 0,
      last: '1700000000000-5',
    });
    expect(await r.xlen(k.events)).toBe(6);
  });

  it('refuses to mark a segment when the stream holds another entry at its last position', async () => {
    const ws = `mark-other-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const r = suite.redis;
    for (let i = 1; i <= 5; i++) await r.xadd(k.events, `1700000000000-${i}`, 'n', String(i));
    // Segment 0 was read up to 1700000000000-8 (n = 6, 7, 8) from a Redis that lost 6 to 8 since,
    // and whose clock, behind theirs, made new entries at the same positions.
    for (let i = 6; i <= 9; i++) await r.xadd(k.events, `1700000000000-${i}`, 'n', `new ${i}`);
    await expect(
      trimAndMark(r, ws, 'events', { index: 0, last: '1700000000000-8', hash: 'h0', total: 8 }, ['n', '8']),
    ).rejects.toThrow(ArchiveMismatchError);
    expect(await r.hget(k.archive, 'events')).toBeNull();
    expect(await r.xlen(k.events)).toBe(9);
    // The entry it read is the one the stream holds: trimmed and marked.
    expect(
      await trimAndMark(r, ws, 'events', { index: 0, last: '1700000000000-8', hash: 'h0', total: 8 }, [
        'n',
        'new 8',
      ]),
    ).toBe(true);
    expect(await r.xlen(k.events)).toBe(1);
  });

  it('trims a segment whose last entry holds bytes that are not UTF-8, by its position', async () => {
    const ws = `mark-bytes-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const r = suite.redis;
    const dir = await mkdtemp(path.join(tmpdir(), 'sb-mark-bytes-'));
    try {
      for (let i = 1; i <= 150; i++)
        await r.xadd(
          k.events,
          `1700000000000-${i}`,
          'n',
          i === 100 ? Buffer.from([0x6e, 0xff, 0xfe]) : String(i),
        );
      // Segments of 100, the newest 50 kept: the first segment ends at the entry of other bytes.
      expect(await archiveLog(r, new DiskArchive(dir), ws)).toBe(100);
      expect(await r.xlen(k.events)).toBe(50);
      expect(parseAnchor(await r.hget(k.archive, 'events'))).toMatchObject({
        index: 0,
        last: '1700000000000-100',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
