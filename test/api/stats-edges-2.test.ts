/**
 * GET /stats/intervals at its edges (docs/API.md, "Historical intervals"): an event exactly on an
 * interval bound, an empty interval, a `to` inside an interval, a range across a UTC day written
 * with an offset, a service level at its threshold exactly, the longest range and one past it, and
 * the forms refused (400 naming the field). The live projection and the log's reading agree.
 * February 29th of year 0000 (a leap year, as ISO 8601 counts) was refused as a day that does not
 * exist (its month's length was taken from 1900's); now it is read, and 1900's and 0100's refused.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { INTERVAL_MS, intervalStart } from '../../src/domain/intervals.ts';
import { inProcessApi, type Json } from '../support/api.ts';
import { intervalsCaughtUp } from '../support/intervals.ts';

const WS = 'stats-edges-two';
const api = inProcessApi([WS]);

type Row = Json & { from: string; to: string; queues: Record<string, Json> };

async function read(query: string, source?: 'live' | 'log') {
  const r = await api.call('GET', `/v1/workspaces/${WS}/stats/intervals?${query}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  if (source) expect(r.body.source, query).toBe(source);
  return r.body as Json & { intervals: Row[] };
}

const iso = (ms: number) => new Date(ms).toISOString();

async function append(ms: number, type: string, data: Json): Promise<void> {
  await api.running.redis.xadd(
    workspaceKeys(WS).events,
    `${ms}-0`,
    'type',
    type,
    'event',
    JSON.stringify({ type, workspace: WS, data }),
  );
}

describe('GET /stats/intervals at its edges', () => {
  // Three intervals ago, on its bound exactly: b0; the interval after it empty; then b2.
  const b0 = intervalStart(Date.now()) - 3 * INTERVAL_MS;
  const b1 = b0 + INTERVAL_MS;
  const b2 = b1 + INTERVAL_MS;

  it('counts an event on a bound in the interval it starts, lists empty ones, and cuts at `to`', async () => {
    await append(b0 - 2000, 'ContactQueued', { id: 'c1', skills: ['S'], channel: 'voice', priority: 0 });
    await append(b0 - 1000, 'ContactQueued', { id: 'c2', skills: ['S'], channel: 'voice', priority: 0 });
    // Waited exactly the threshold (within), and 1 ms more (not).
    await append(b0, 'AssignmentMade', {
      contactId: 'c1',
      agentId: 'a',
      skills: ['S'],
      channel: 'voice',
      waitedMs: 20_000,
    });
    await append(b2, 'AssignmentMade', {
      contactId: 'c2',
      agentId: 'b',
      skills: ['S'],
      channel: 'voice',
      waitedMs: 20_001,
    });
    await append(b2 + 1000, 'ContactCompleted', { contactId: 'c1', agentId: 'a', handledMs: 5000 });
    await intervalsCaughtUp(api.running.redis, WS);

    for (const source of ['live', 'log'] as const) {
      const extra = source === 'log' ? '&source=log' : '';
      const whole = await read(`from=${iso(b0 - INTERVAL_MS)}&to=${iso(b2 + INTERVAL_MS)}${extra}`, source);
      expect(whole.intervals.map((i) => [i.from, i.to])).toEqual(
        [0, 1, 2, 3].map((n) => [iso(b0 - INTERVAL_MS + n * INTERVAL_MS), iso(b0 + n * INTERVAL_MS)]),
      );
      const [before, first, empty, last] = whole.intervals as [Row, Row, Row, Row];
      expect(before).toMatchObject({ queued: 2, assigned: 0, meanWaitMs: null, serviceLevel: null });
      expect(first).toMatchObject({ queued: 0, assigned: 1, meanWaitMs: 20_000, serviceLevel: 1 });
      expect(empty).toEqual({
        from: iso(b1),
        to: iso(b2),
        queued: 0,
        assigned: 0,
        abandoned: 0,
        expired: 0,
        completed: 0,
        transferred: 0,
        meanWaitMs: null,
        serviceLevel: null,
        meanHandleMs: null,
        queues: {},
      });
      expect(last).toMatchObject({ assigned: 1, serviceLevel: 0, completed: 1, meanHandleMs: 5000 });
      expect(last.queues['voice ["S"]']).toMatchObject({ assigned: 1, completed: 1, serviceLevel: 0 });

      // `to` on the bound b0: the event at b0 is after it.
      const upTo = await read(`from=${iso(b0 - INTERVAL_MS)}&to=${iso(b0)}${extra}`);
      expect(upTo.intervals.map((i) => i.assigned)).toEqual([0]);
      // One interval, from its bound: the event on it counts.
      const one = await read(`from=${iso(b0)}&to=${iso(b1)}${extra}`);
      expect(one.intervals.map((i) => i.assigned)).toEqual([1]);
      // `to` inside the last interval: events from `to` on are not counted.
      const cut = await read(`from=${iso(b2)}&to=${iso(b2 + 500)}${extra}`);
      expect(cut.intervals).toHaveLength(1);
      expect(cut.intervals[0]).toMatchObject({ to: iso(b2 + 500), assigned: 1, completed: 0 });
      // `from` inside an interval: the whole interval from its bound.
      const mid = await read(`from=${iso(b2 + 700)}&to=${iso(b2 + INTERVAL_MS)}${extra}`);
      expect(mid.from).toBe(iso(b2));
      expect(mid.intervals[0]).toMatchObject({ assigned: 1, completed: 1 });
    }
  });

  it('reads a range written with an offset across a UTC day, and 24 hours at most', async () => {
    // 23:30 to 00:30 UTC written at +02:00.
    const r = await read('from=2026-11-30T01:30:00%2B02:00&to=2026-11-30T02:30:00%2B02:00');
    expect(r.from).toBe('2026-11-29T23:30:00.000Z');
    expect(r.to).toBe('2026-11-30T00:30:00.000Z');
    expect(r.intervals.map((i) => i.from)).toEqual([
      '2026-11-29T23:30:00.000Z',
      '2026-11-29T23:45:00.000Z',
      '2026-11-30T00:00:00.000Z',
      '2026-11-30T00:15:00.000Z',
    ]);
    const day = await read('from=2026-11-30T00:00:00Z&to=2026-12-01T00:00:00Z');
    expect(day.intervals).toHaveLength(96);
    // February 29th of year 0000, a leap year (proleptic Gregorian, as ISO 8601 counts): a day
    // that exists. Date.UTC reads years 0..99 as 1900..1999, and 1900 is no leap year: refused.
    const leap = await read('from=0000-02-29T00:00:00Z&to=0000-02-29T01:00:00Z');
    expect(leap.from).toBe('0000-02-29T00:00:00.000Z');
    expect(leap.intervals).toHaveLength(4);
    const midnight = await read('from=2026-11-30T00:00:00Z&to=2026-11-30T24:00:00Z');
    expect(midnight.to).toBe('2026-12-01T00:00:00.000Z');
    expect(midnight.intervals).toHaveLength(96);
  });

  it('GET /stats: a decision made exactly at the threshold is within it, 1 ms past it is not', async () => {
    const now = Date.now();
    const at = String(now).padStart(15, '0');
    await api.running.redis.zadd(
      workspaceKeys(WS).served,
      0,
      `voice/W|${at}|20000|w1`,
      0,
      `voice/W|${at}|20001|w2`,
    );
    const level = async (ms: number) => {
      const r = await api.ok('GET', WS, `/stats?serviceLevelMs=${ms}`);
      const q = (r.queues as { channel: string; skills: string; serviceLevel: number }[]).find(
        (x) => x.channel === 'voice' && x.skills === 'W',
      );
      return [q?.serviceLevel, (r.window as { serviceLevel: number }).serviceLevel];
    };
    expect(await level(20_000)).toEqual([0.5, 0.5]);
    expect(await level(20_001)).toEqual([1, 1]);
    expect(await level(19_999)).toEqual([0, 0]);
  });

  it('refuses each bad form with a 400 naming the field', async () => {
    const bad: [string, string][] = [
      ['to=2026-11-30T01:00:00Z', 'from'],
      ['from=2026-11-30T00:00:00Z', 'to'],
      ['from=2026-11-30T00:00:00Z&to=2026-12-01T00:00:00.001Z', 'to'],
      ['from=2026-11-30T01:00:00Z&to=2026-11-30T01:00:00Z', 'to'],
      ['from=2026-11-30T02:00:00Z&to=2026-11-30T01:00:00Z', 'to'],
      ['from=2026-02-30T00:00:00Z&to=2026-03-01T01:00:00Z', 'from'],
      ['from=1900-02-29T00:00:00Z&to=1900-03-01T01:00:00Z', 'from'],
      ['from=0100-02-29T00:00:00Z&to=0100-03-01T01:00:00Z', 'from'],
      ['from=2026-11-30&to=2026-11-30T01:00:00Z', 'from'],
      ['from=2026-11-30T00:00:00+01:00&to=2026-11-30T01:00:00Z', 'from'],
      ['from=2026-11-30T00:00:00Z&to=2026-11-30T01:00:00Z&serviceLevelMs=0', 'serviceLevelMs'],
      ['from=2026-11-30T00:00:00Z&to=2026-11-30T01:00:00Z&serviceLevelMs=86400001', 'serviceLevelMs'],
      ['from=2026-11-30T00:00:00Z&to=2026-11-30T01:00:00Z&source=live', 'source'],
      ['from=2026-11-30T00:00:00Z&to=2026-11-30T01:00:00Z&interval=5', 'interval'],
    ];
    for (const [q, field] of bad) {
      const r = await api.call('GET', `/v1/workspaces/${WS}/stats/intervals?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.type.split(';')[0], q).toBe('application/problem+json');
      const paths = ((r.body.errors as { path: string }[] | undefined) ?? []).map((e) => e.path);
      expect(paths.join(','), `${q}: ${JSON.stringify(r.body)}`).toContain(field);
    }
  });
});
