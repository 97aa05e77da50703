/**
 * A wrong `total` in the header of the LAST archived segment (the one the mark in Redis holds):
 * that segment is lost, and the hole ends where the archive ends, which the mark and the stream
 * tell (not the segment's header): `resumeAt` is the stream's oldest entry (the first after the
 * archived range), for a read from the start and a read after a position alike, and a read after
 * the segment's last entry (positions Redis holds, none of them in the segment) is served.
 *
 * And a wrong `total` in a middle segment's header: a read after a position from that segment's
 * last entry up to the next segment's first (entries it cannot hold: they hash to its header,
 * which ends at its last) is served from the next segment.
 *
 * Events stand at `<BASE + 2i>-0`, archived in segments of 100 but for the newest 50 (segments
 * 0..99, 100..199, 200..299, and 300 up to the stream's oldest; the mark at segment 3).
 */
import { describe, expect, it } from 'vitest';
import { retotalSegment, suiteLogAtIds } from '../support/archive-log.ts';

const MAX = '18446744073709551615';
const BASE = 1796482363000;
const suite = suiteLogAtIds('broken5', 17);

const id = (i: number) => `${BASE + 2 * i}-0`;
/** The `after=` right before event i (`<ms-1>-<max>`). */
const rightBefore = (i: number) => `${BASE + 2 * i - 1}-${MAX}`;

describe("a wrong total in the last segment's header", () => {
  for (const by of [1, -1]) {
    const which = by > 0 ? 'one more' : 'one less';
    it(`(${which}): the hole ends at the stream's oldest entry, the first after the archive`, async () => {
      const a = await suite.archived(id);
      await retotalSegment(a, 3, by);
      // The stream's oldest entry (the newest 50 are kept): segment 3 holds events 300 .. oldest - 1.
      const oldest = a.events.length - 50;
      expect(oldest).toBeGreaterThan(349);
      for (const after of ['0-0', a.events[150]!, a.events[299]!, a.events[320]!, a.events[oldest - 2]!]) {
        const body = await suite.expectHole(a.ws, after, a.events[299]!, a.events[oldest]!);
        expect(body.resumeAfter, `after ${after}`).toBe(rightBefore(oldest));
      }
    });

    it(`(${which}): a read after the segment's last entry is served from the stream`, async () => {
      const a = await suite.archived(id);
      await retotalSegment(a, 3, by);
      const oldest = a.events.length - 50;
      await suite.expectServed(a.ws, a.events[oldest - 1]!, a.events.slice(oldest));
      await suite.expectServed(a.ws, rightBefore(oldest), a.events.slice(oldest));
      await suite.expectServed(a.ws, a.events[oldest + 10]!, a.events.slice(oldest + 11));
    });
  }
});

describe("a wrong total in a middle segment's header", () => {
  for (const by of [1, -1]) {
    const which = by > 0 ? 'one more' : 'one less';
    it(`(${which}): a read after its last entry, up to the next segment's first, is served`, async () => {
      const a = await suite.archived(id);
      await retotalSegment(a, 1, by);
      // Segment 1 holds events 100 .. 199; segment 2 starts at event 200, two milliseconds on.
      for (const after of [a.events[199]!, `${BASE + 399}-0`, `${BASE + 398}-7`, rightBefore(200)])
        await suite.expectServed(a.ws, after, a.events.slice(200));
      // Inside it, still refused with the hole.
      await suite.expectHole(a.ws, a.events[150]!, a.events[99]!, a.events[200]!);
    });
  }
});
