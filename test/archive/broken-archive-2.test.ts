/**
 * A history the archive cannot give whole, as the client sees it: the 503 archive-unreadable names
 * the positions around the hole (`lostAfter`, the last position before it that reads; `resumeAt`,
 * the first one after it; `resumeAfter`, the `after=` that reads on from there), and a read after
 * a position past which the broken segment can hold nothing is served, not refused. The positions
 * are written by hand here (the same events, at ids chosen around the segment boundaries): the
 * segment after the broken one starts at a sequence above 0 in one log, at sequence 0 in the other.
 */
import { readdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { suiteLogAtIds } from '../support/archive-log.ts';

const MAX = '18446744073709551615';
const BASE = 1796482163000;
/** A Switchboard, and the events of a log made through the Lua steps given again at other ids. */
const suite = suiteLogAtIds('broken2', 7);

/**
 * A workspace whose events stand at `id(i)`, archived in segments of 100 but for the newest 50
 * (segments 0..99, 100..199, 200..299, 300..349 of the events).
 */
async function archived(
  id: (i: number) => string,
): Promise<{ ws: string; events: string[]; segments: string }> {
  const { ws, events, dir } = await suite.archived(id);
  return { ws, events, segments: dir };
}

/** Five events a millisecond: event 200 (segment 2's first) at sequence 4, 199 at sequence 3. */
const sameMs = (i: number) => `${BASE + Math.floor((i + 4) / 5)}-${(i + 4) % 5}`;
/** An event every 2 ms at sequence 0: event 200 at `<BASE+400>-0`, 199 at `<BASE+398>-0`. */
const seqZero = (i: number) => `${BASE + 2 * i}-0`;

async function emptied(id: (i: number) => string, segment: number) {
  const a = await archived(id);
  const files = (await readdir(a.segments)).filter((f) => f.endsWith('.jsonl')).sort();
  await writeFile(path.join(a.segments, files[segment]!), '');
  return a;
}

async function removed(id: (i: number) => string, segment: number) {
  const a = await archived(id);
  const files = (await readdir(a.segments)).filter((f) => f.endsWith('.jsonl')).sort();
  await unlink(path.join(a.segments, files[segment]!));
  return a;
}

const events = suite.events;

describe('503 archive-unreadable names the hole', () => {
  it("an emptied segment: after the previous segment's last, resuming at the next one's first, with the after= to read on", async () => {
    const a = await emptied(sameMs, 1);
    for (const after of [a.events[150]!, a.events[50]!, a.events[99]!]) {
      const got = await events(a.ws, after, 100);
      expect(got.status, `after ${after}`).toBe(503);
      expect(got.body.type).toBe('/problems/archive-unreadable');
      expect(got.body.lostAfter, `after ${after}`).toBe(a.events[99]);
      expect(got.body.resumeAt, `after ${after}`).toBe(a.events[200]);
      expect(got.body.resumeAfter, `after ${after}`).toBe(a.events[199]);
      expect(got.body.detail).toContain(`after=${a.events[199]}`);
      expect(got.body.detail).toMatch(/restore/);
    }
    // Read from the start (the whole chain checked).
    const whole = await events(a.ws, '0-0', 1000);
    expect(whole.status).toBe(503);
    expect(whole.body.lostAfter).toBe(a.events[99]);
    expect(whole.body.resumeAt).toBe(a.events[200]);
  });

  it('the first segment emptied: lost from the start of the history (lostAfter null)', async () => {
    const a = await emptied(seqZero, 0);
    const got = await events(a.ws, '0-0', 1000);
    expect(got.status).toBe(503);
    expect(got.body.lostAfter).toBeNull();
    expect(got.body.resumeAt).toBe(a.events[100]);
    expect(got.body.resumeAfter).toBe(`${BASE + 199}-${MAX}`);
  });

  it('a removed segment: the same positions, and reading on with resumeAfter gives the rest', async () => {
    const a = await removed(seqZero, 1);
    const got = await events(a.ws, a.events[20]!, 1000);
    expect(got.status).toBe(503);
    expect(got.body.lostAfter).toBe(a.events[99]);
    expect(got.body.resumeAt).toBe(a.events[200]);
    expect(got.body.resumeAfter).toBe(`${BASE + 399}-${MAX}`);
    const on = await events(a.ws, got.body.resumeAfter as string, 1000);
    expect(on.status).toBe(200);
    expect(on.body.events!.map((e) => e.position)).toEqual(a.events.slice(200));
  });

  it('the last segment emptied: where the history reads again is not known from the archive (resumeAt null)', async () => {
    const a = await emptied(sameMs, 3);
    const got = await events(a.ws, a.events[250]!, 1000);
    expect(got.status).toBe(503);
    expect(got.body.lostAfter).toBe(a.events[299]);
    expect(got.body.resumeAt).toBeNull();
    expect(got.body.resumeAfter).toBeNull();
  });
});

describe('a read after a position past which the broken segment holds nothing', () => {
  it('next segment first at sequence 4: after sequence 3 of the same millisecond is served', async () => {
    const a = await emptied(sameMs, 1);
    expect(a.events[200]).toMatch(/-4$/);
    await suite.expectServed(a.ws, a.events[199]!, a.events.slice(200));
    // One sequence earlier, a position of the emptied segment may still follow: refused.
    const [ms, seq] = a.events[199]!.split('-');
    const earlier = await events(a.ws, `${ms}-${Number(seq) - 1}`);
    expect(earlier.status).toBe(503);
    expect(earlier.body.type).toBe('/problems/archive-unreadable');
  });

  it("next segment first at sequence 0: after the previous millisecond's largest sequence is served, one less is not", async () => {
    const a = await emptied(seqZero, 1);
    expect(a.events[200]).toBe(`${BASE + 400}-0`);
    await suite.expectServed(a.ws, `${BASE + 399}-${MAX}`, a.events.slice(200));
    // `<ms-1>-<max-1>`: `<ms-1>-<max>` could be an entry of the emptied segment.
    const refused = await events(a.ws, `${BASE + 399}-18446744073709551614`);
    expect(refused.status).toBe(503);
    // And after the emptied segment's own first, or its previous segment's last: refused.
    expect((await events(a.ws, a.events[100]!)).status).toBe(503);
    expect((await events(a.ws, a.events[99]!)).status).toBe(503);
  });

  it('a removed segment followed by one at sequence 0: after its predecessor is served', async () => {
    const a = await removed(seqZero, 1);
    await suite.expectServed(a.ws, `${BASE + 399}-${MAX}`, a.events.slice(200));
    expect((await events(a.ws, `${BASE + 398}-0`)).status).toBe(503);
  });
});

describe('the members are documented', () => {
  it('the OpenAPI Problem declares lostAfter, resumeAt and resumeAfter', async () => {
    const { openapi } = await import('../../src/adapters/http/openapi.ts');
    const declared = Object.keys(openapi.components.schemas.Problem.properties);
    for (const member of ['lostAfter', 'resumeAt', 'resumeAfter']) expect(declared).toContain(member);
  });
});
