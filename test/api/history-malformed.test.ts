/**
 * Entries of a workspace's event stream that are no event (not JSON, JSON that is no object, an
 * object with no `type` or no `data`) read by the history's readers: `GET /events` (a page, a
 * type-filtered page, a page ending on them), `GET /state?at=`, `GET /stats/intervals?source=log`
 * and `GET /stats`. The rule of the live feed (test/api/live-malformed.test.ts): each such entry is
 * passed over, logged with its position, and the page's `next` moves past it; no 5xx anywhere.
 * Only Switchboard writes the stream normally: the test writes the entries with raw XADDs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';
import { capturedLogger } from '../support/log-capture.ts';

const WS = 'history-malformed';
const { logger, lines: logged } = capturedLogger('warn');
const api = inProcessApi([WS], { logger });
const B = `/v1/workspaces/${WS}`;

type Page = {
  events: { position: string; type: string; data: Record<string, unknown> }[];
  next: string | null;
};

/** What each malformed entry's `event` field holds (its `type` field says AgentStateChanged). */
const BAD = [
  '{"type": "AgentStateChanged", not json',
  '"just a string"',
  'null',
  '[1, 2]',
  '{"type": "AgentStateChanged", "data": null}',
];
let first = ''; // the agent's registration
let bads: string[] = [];
let good = ''; // the event after the malformed entries
let last = ''; // the event after `good`

beforeAll(async () => {
  const reg = await api.ok('POST', WS, '/agents', { id: 'a1', skills: ['s'] });
  await api.ok('GET', WS, `/agents/a1?minPosition=${reg.position}`);
  const redis = api.server.adminClient();
  const key = workspaceKeys(WS).events;
  first = (await redis.xrevrange(key, '+', '-', 'COUNT', 1))[0]![0];
  bads = [];
  for (const text of BAD)
    bads.push((await redis.xadd(key, '*', 'type', 'AgentStateChanged', 'event', text))!);
  const s1 = await api.ok('POST', WS, '/agents/a1/state', { state: 'available' });
  await api.ok('GET', WS, `/agents/a1?minPosition=${s1.position}`);
  const s2 = await api.ok('POST', WS, '/agents/a1/state', { state: 'away' });
  await api.ok('GET', WS, `/agents/a1?minPosition=${s2.position}`);
  const after = (await redis.xrange(key, `(${bads[bads.length - 1]}`, '+')).map((e) => e[0]);
  [good, last] = [after[0]!, after[after.length - 1]!];
  expect(after.length).toBeGreaterThanOrEqual(2);
});

const get = async (path: string) => {
  const r = await api.call('GET', `${B}${path}`);
  expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBeLessThan(500);
  return r;
};

describe('GET /events over entries that are no event', () => {
  it('passes them over in an unfiltered page, logging each with its position', async () => {
    const r = await get('/events?limit=1000');
    expect(r.status).toBe(200);
    const positions = (r.body as unknown as Page).events.map((e) => e.position);
    expect(positions).toContain(first);
    expect(positions).toContain(good);
    for (const b of bads) expect(positions).not.toContain(b);
    for (const b of bads)
      expect(
        logged.some((l) => l.position === b),
        `logged ${b}`,
      ).toBe(true);
  });

  it('passes them over in a type-filtered page', async () => {
    const r = await get('/events?type=AgentStateChanged&limit=1000');
    expect(r.status).toBe(200);
    const page = r.body as unknown as Page;
    for (const b of bads) expect(page.events.map((e) => e.position)).not.toContain(b);
    expect(page.events.length).toBeGreaterThanOrEqual(2);
    for (const e of page.events) expect(e.type).toBe('AgentStateChanged');
  });

  it('a page after them: next moves past them, and paging reaches the end', async () => {
    // A page of one right before the malformed entries: its one event is the next good one.
    const r = await get(`/events?after=${first}&limit=1`);
    expect((r.body as unknown as Page).events.map((e) => e.position)).toEqual([good]);
    // A filtered page whose scan ends on them moves past them.
    const typed = await get(`/events?after=${first}&limit=1&type=AgentStateChanged`);
    expect((typed.body as unknown as Page).events.map((e) => e.position)).toEqual([good]);
    // Paging from the start with pages of one ends with `next: null`, every good event once.
    const seen: string[] = [];
    let after = '0-0';
    for (let i = 0; i < 50; i++) {
      const p = (await get(`/events?after=${after}&limit=1`)).body as unknown as Page;
      seen.push(...p.events.map((e) => e.position));
      if (p.next === null) break;
      expect(p.next > after || p.next.length > after.length).toBe(true);
      after = p.next;
    }
    expect(seen).toContain(last);
    for (const b of bads) expect(seen).not.toContain(b);
  });
});

describe('other readers of the history over entries that are no event', () => {
  it('GET /state?at= after them answers the state (no 5xx)', async () => {
    const r = await get(`/state?at=${last}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.position).toBe(last);
    const at = await get(`/state?at=${bads[2]}`);
    expect(at.status, JSON.stringify(at.body)).toBe(200);
  });

  it('GET /stats/intervals?source=log over them answers (no 5xx)', async () => {
    const from = new Date(Date.now() - 3600_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const r = await get(`/stats/intervals?from=${from}&to=${to}&source=log`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const live = await get(`/stats/intervals?from=${from}&to=${to}`);
    expect(live.status, JSON.stringify(live.body)).toBe(200);
  });

  it('GET /stats answers, and the workspace goes on', async () => {
    const r = await get('/stats');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const s = await api.ok('POST', WS, '/agents/a1/state', { state: 'available' });
    expect((await api.ok('GET', WS, `/agents/a1?minPosition=${s.position}`)).state).toBe('available');
  });
});
