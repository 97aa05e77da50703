/**
 * Edges of the read routes held against docs/API.md: the answers a client pages, parses and
 * compares must name what they say whatever spelling of the request they answer.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';

const WS = 'read-edges';
const AGED = 'read-edges-aged';
const api = inProcessApi([WS, AGED]);

/** An RFC 3339 date-time: a date, a time of day (hours 00..23) and an offset (Z or ±hh:mm). */
const RFC3339 = /^\d{4}-\d\d-\d\dT([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i;

describe('GET /stats/intervals: the range it answers', () => {
  it('names its end as a UTC time, whatever form the request wrote it in', async () => {
    // Each `to` names 2026-01-01T00:30:00Z: without an offset (UTC, as documented), with one, as 24:00.
    for (const [from, to, end] of [
      ['2026-01-01T00:00:00', '2026-01-01T00:30:00', '2026-01-01T00:30:00.000Z'],
      ['2026-01-01T00:00:00Z', '2026-01-01T02:30:00%2B02:00', '2026-01-01T00:30:00.000Z'],
      ['2026-01-01T23:00:00Z', '2026-01-01T24:00:00Z', '2026-01-02T00:00:00.000Z'],
    ] as const) {
      const r = await api.ok('GET', WS, `/stats/intervals?from=${from}&to=${to}`);
      // A time without an offset is read in the reader's own time zone by JavaScript's Date (and
      // is no date-time for the OpenAPI document's format): the answer must carry one.
      expect(r.to, `to=${to}`).toMatch(RFC3339);
      expect(r.from, `from=${from}`).toMatch(RFC3339);
      expect(r.to).toBe(end);
      const intervals = r.intervals as { from: string; to: string }[];
      expect(intervals[0]!.from).toBe(r.from);
      expect(Date.parse(intervals.at(-1)!.to)).toBe(Date.parse(end));
    }
    // A bare `+` in a query is a space (docs/API.md: the offset's `+` is written %2B): a 400 naming both.
    const bare = await api.problem(
      'GET',
      WS,
      '/stats/intervals?from=2026-01-01T02:00:00+02:00&to=2026-01-01T02:30:00+02:00',
      undefined,
      400,
      'invalid-request',
    );
    expect((bare.errors as { path: string }[]).map((e) => e.path)).toEqual(['from', 'to']);
  });
});

describe('GET /stats/intervals: a range that ends inside an interval', () => {
  it('ends its last interval where the range ends: events after it are not counted, and it does not say they are', async () => {
    // Events now; the range ends 1 ms after the last of them, inside the current interval.
    const before = Date.now();
    await api.ok('POST', WS, '/contacts', { id: 'partial-1', skills: ['nobody-has-it'] });
    await api.ok('POST', WS, '/contacts', { id: 'partial-2', skills: ['nobody-has-it'] });
    // The events' positions (a command's position is its own, a little before its events').
    const queued = (await api.ok('GET', WS, '/events?type=ContactQueued&limit=1000')).events as {
      position: string;
    }[];
    const lastMs = Number(queued.at(-1)!.position.split('-')[0]);
    const end = new Date(lastMs + 1).toISOString();
    const from = new Date(before - 20 * 60_000).toISOString();
    for (const source of ['', '&source=log']) {
      const r = await api.ok('GET', WS, `/stats/intervals?from=${from}&to=${end}${source}`);
      const intervals = r.intervals as { from: string; to: string; queued: number }[];
      expect(intervals.at(-1)!.to, `source=${source || 'default'}`).toBe(end);
      expect(Date.parse(intervals.at(-1)!.from)).toBeLessThan(Date.parse(end));
      // Every interval before it is whole.
      for (const i of intervals.slice(0, -1)) expect(Date.parse(i.to) - Date.parse(i.from)).toBe(15 * 60_000);
      // The log counts both contacts; the live projection lags the log by up to a few hundred ms
      // (API.md), so its figures may not hold the last one yet.
      if (source) expect(intervals.reduce((n, i) => n + i.queued, 0)).toBeGreaterThanOrEqual(2);
    }
  });
});

describe('serviceLevelMs, as /stats and /stats/intervals take it', () => {
  it('is read alike by both: the same value with a leading zero, and the same refusals', async () => {
    const range = 'from=2026-01-01T00:00:00Z&to=2026-01-01T00:15:00Z';
    for (const value of ['086400000', '0001', '86400000', '0086400000']) {
      await api.ok('GET', WS, `/stats?serviceLevelMs=${value}`);
      await api.ok('GET', WS, `/stats/intervals?${range}&serviceLevelMs=${value}`);
    }
    for (const value of ['0', '86400001', '1e3', '0086400001']) {
      await api.problem('GET', WS, `/stats?serviceLevelMs=${value}`, undefined, 400, 'invalid-request');
      await api.problem(
        'GET',
        WS,
        `/stats/intervals?${range}&serviceLevelMs=${value}`,
        undefined,
        400,
        'invalid-request',
      );
    }
  });
});

describe('GET /state?at=: the queue and the contacts', () => {
  it('lists the queue in routing order (the aged one under priority aging), its skills as routing names them', async () => {
    // Each priority point counts as 1 ms of earlier arrival: a priority-1 contact arriving 20 ms
    // after a priority-0 one is routed after it (priority first would put it ahead).
    await api.ok('PUT', AGED, '/settings', { priorityWeightMs: 1 });
    await api.ok('POST', AGED, '/contacts', { id: 'early', skills: ['s'], priority: 0 });
    await new Promise((r) => setTimeout(r, 20));
    await api.ok('POST', AGED, '/contacts', { id: 'urgent', skills: ['s'], priority: 1 });
    await api.ok('POST', AGED, '/contacts', { id: 'leveled', skills: [{ name: 'B', minLevel: 2 }] });
    const events = (await api.ok('GET', AGED, '/events')).events as { position: string }[];
    const state = await api.ok('GET', AGED, `/state?at=${events.at(-1)!.position}`);
    const queue = state.queue as { contactId: string; skills: string[] }[];
    expect(queue.map((q) => q.contactId)).toEqual(['early', 'urgent', 'leveled']);
    // GET /contacts/{id} agrees: `urgent` stands behind `early` in their queue.
    expect((await api.ok('GET', AGED, '/contacts/urgent')).queuePosition).toBe(1);
    // The queue names a requirement at a level as routing (and /stats) does; the documents as written.
    expect(queue[2]!.skills).toEqual(['B#2']);

    // The documents are GET's, but for what GET computes when it reads a queued contact.
    for (const c of state.contacts as { id: string }[]) {
      const { queuePosition, estimatedWaitMs, ...read } = await api.ok('GET', AGED, `/contacts/${c.id}`);
      expect(typeof queuePosition).toBe('number');
      expect(estimatedWaitMs).toBeNull();
      expect(c).toEqual(read);
    }
  });
});
