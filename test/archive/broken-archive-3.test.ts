/**
 * The 503 archive-unreadable names the hole for the breaks between segments too (as for a removed or
 * emptied segment, broken-archive-2): a segment replaced by one with a hash of its own (the next
 * one's prevHash no longer matches), a wrong total in a segment's header, and a segment whose
 * entries start before the previous one's end. A read after a position meets the same breaks (it
 * never passes over entries of an overlapping segment), and `after=<resumeAfter>` reads on.
 *
 * And a damaged segment whose header says it ends at or before a position is still refused to a
 * read after that position: the header is not covered by the hash, and only the next segment's
 * first position bounds what the damaged one held.
 *
 * Events stand at `<BASE + 2i>-0`, archived in segments of 100 but for the newest 50 (segments
 * 0..99, 100..199, 200..299, and 300 up to the stream's oldest).
 */
import { readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { decodeSegment, encodeSegment } from '../../src/archive/segment.ts';
import { replaceSegment, retotalSegment, segmentOf, suiteLogAtIds } from '../support/archive-log.ts';

const MAX = '18446744073709551615';
const BASE = 1796482163000;
const suite = suiteLogAtIds('broken3', 11);

const id = (i: number) => `${BASE + 2 * i}-0`;
/** The `after=` right before event i (`<ms-1>-<max>`). */
const rightBefore = (i: number) => `${BASE + 2 * i - 1}-${MAX}`;

interface Archived {
  ws: string;
  events: string[];
  dir: string;
  files: string[];
}

const archived = (): Promise<Archived> => suite.archived(id);

/** Segment i replaced by one whose entries hash to its own header (an event's fields altered). */
async function replaced(i: number): Promise<Archived> {
  const a = await archived();
  await replaceSegment(a, i);
  return a;
}

/** Segment i's header with a total `by` off (its entries and hash as they were). */
async function retotaled(i: number, by: number): Promise<Archived> {
  const a = await archived();
  await retotalSegment(a, i, by);
  return a;
}

/**
 * Segment 2 written again (chained to segment 1, its name from its first) with its first entry at
 * `<BASE+301>-0`: between events 150 and 151, before segment 1's end; segment 3 chained to it.
 */
async function overlapped(): Promise<{ a: Archived; moved: string }> {
  const a = await archived();
  const s = await segmentOf(a, 2);
  const moved = `${BASE + 301}-0`;
  const again = encodeSegment({
    workspace: a.ws,
    stream: 'events',
    index: 2,
    prevHash: s.header.prevHash,
    before: 200,
    entries: s.entries.map((e, j): StreamEntry => (j === 0 ? [moved, e[1]] : e)),
  });
  await unlink(path.join(a.dir, a.files[2]!));
  await writeFile(path.join(a.dir, again.name), again.bytes);
  // Segment 3 chained to it again, so that the overlap is the only break between segments (segment
  // 3 is then not the one the mark in Redis holds: a break of its own, met after them).
  const last = await segmentOf(a, 3);
  const chained = encodeSegment({
    workspace: a.ws,
    stream: 'events',
    index: 3,
    prevHash: again.header.hash,
    before: 300,
    entries: last.entries,
  });
  await writeFile(path.join(a.dir, a.files[3]!), chained.bytes);
  return { a, moved };
}

const expectHole = suite.expectHole;

describe('the hole named for breaks between segments', () => {
  it("a segment replaced by one with a hash of its own: the segment and the next (whose prevHash breaks) are lost, from the one before's last to the one after's first", async () => {
    const a = await replaced(1);
    for (const after of ['0-0', a.events[150]!, a.events[250]!, a.events[99]!]) {
      const body = await expectHole(a.ws, after, a.events[99]!, a.events[300]!);
      expect(body.resumeAfter).toBe(rightBefore(300));
    }
    await suite.expectServed(a.ws, rightBefore(300), a.events.slice(300));
  });

  it('the first segment replaced: lost from the start of the history', async () => {
    const a = await replaced(0);
    await expectHole(a.ws, '0-0', null, a.events[200]!);
    await expectHole(a.ws, a.events[150]!, null, a.events[200]!);
  });

  it("a wrong total in a segment's header: that segment is lost, and a read after it is served", async () => {
    const a = await retotaled(2, 1);
    for (const after of ['0-0', a.events[150]!, a.events[250]!]) {
      const body = await expectHole(a.ws, after, a.events[199]!, a.events[300]!);
      expect(body.resumeAfter).toBe(rightBefore(300));
    }
    await suite.expectServed(a.ws, rightBefore(300), a.events.slice(300));
  });

  it('a wrong total in segment 1: a read starting in the next segment is served, one through it is not', async () => {
    const a = await retotaled(1, -1);
    await expectHole(a.ws, '0-0', a.events[99]!, a.events[200]!);
    await expectHole(a.ws, a.events[50]!, a.events[99]!, a.events[200]!);
    await suite.expectServed(a.ws, a.events[250]!, a.events.slice(251));
  });

  it("a segment starting before the previous one's end: both are lost, and no read passes over entries of either", async () => {
    const { a, moved } = await overlapped();
    // After event 120 (segment 1 read first), after event 160 (later than the moved first: the
    // reader starts in segment 2, and would pass over events 161..199 of segment 1).
    for (const after of ['0-0', a.events[120]!, a.events[160]!, moved]) {
      const body = await expectHole(a.ws, after, a.events[99]!, a.events[300]!);
      expect(body.resumeAfter).toBe(rightBefore(300));
    }
    // Segment 3, chained again, is not the segment the mark in Redis holds (the newest, with its
    // hash): a read after a position checks it against the mark too (broken-archive-4.test.ts), so
    // the read on from resumeAfter meets that break next, and the one after it reads on.
    const oldest = a.events.length - 50;
    const body = await expectHole(a.ws, rightBefore(300), a.events[299]!, a.events[oldest]!);
    expect(body.resumeAfter).toBe(rightBefore(oldest));
    await suite.expectServed(a.ws, rightBefore(oldest), a.events.slice(oldest));
  });
});

describe('a damaged segment whose header ends at or before the position read after', () => {
  it('is refused: a header that says less than the file held reads the same as a true one', async () => {
    const a = await archived();
    const file = path.join(a.dir, a.files[1]!);
    const whole = decodeSegment(await readFile(file));
    // Cut after event 150, its header saying so (first, last and count): only the hash, of the
    // lines as written, is left to tell the file held more.
    const text = (await readFile(file)).toString('utf8');
    const lines = text.split('\n');
    const header = JSON.parse(lines[0]!) as Record<string, unknown>;
    const kept = lines.slice(1, 52);
    await writeFile(
      file,
      `${JSON.stringify({ ...header, last: a.events[150], count: 51, total: 151 })}\n${kept.join('\n')}\n`,
    );
    const cut = decodeSegment(await readFile(file));
    expect(cut.header!.last).toBe(a.events[150]);
    expect(cut.problems.map((p) => p.message)).toEqual([
      "its entries do not hash to the header's hash (altered, removed or reordered entries)",
    ]);
    // The events a read after event 150 would have passed over had it trusted the header.
    expect(whole.entries.slice(51).map((e) => e[0])).toEqual(a.events.slice(151, 200));
    await expectHole(a.ws, a.events[150]!, a.events[99]!, a.events[200]!);
    await expectHole(a.ws, a.events[198]!, a.events[99]!, a.events[200]!);
    // Only after the next segment's first's predecessor can nothing of it follow: served.
    await suite.expectServed(a.ws, rightBefore(200), a.events.slice(200));
  });
});

describe('the hole named for the other breaks of the chain', () => {
  it('the last segment replaced (not the one marked in Redis when the stream was trimmed): it is lost, and the stream reads on', async () => {
    const a = await replaced(3);
    // The stream's oldest entry (the newest 50 are kept).
    const oldest = a.events.length - 50;
    const body = await expectHole(a.ws, '0-0', a.events[299]!, a.events[oldest]!);
    expect(body.resumeAfter).toBe(rightBefore(oldest));
    await suite.expectServed(a.ws, rightBefore(oldest), a.events.slice(oldest));
  });

  it('two segments of the same index: both are lost', async () => {
    const a = await archived();
    const s = await segmentOf(a, 1);
    const again = encodeSegment({
      workspace: a.ws,
      stream: 'events',
      index: 1,
      prevHash: s.header.prevHash,
      before: 100,
      entries: s.entries.slice(1),
    });
    expect(again.name).not.toBe(a.files[1]);
    await writeFile(path.join(a.dir, again.name), again.bytes);
    for (const after of ['0-0', a.events[50]!, a.events[120]!])
      await expectHole(a.ws, after, a.events[99]!, a.events[200]!);
    await suite.expectServed(a.ws, rightBefore(200), a.events.slice(200));
  });
});
