/**
 * GET /stats/intervals counts each contact's first decision once (docs/API.md, "Historical
 * intervals"): a contact assigned, transferred and assigned again is one first decision, whether
 * its decisions were direct assignments or offers, from the log and from the live projection.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi, type Json } from '../support/api.ts';
import { intervalsCaughtUp } from '../support/intervals.ts';

const WS = { direct: 'iv-direct', offers: 'iv-offers', switched: 'iv-switched' };
const api = inProcessApi(Object.values(WS));

type Figures = { queued: number; assigned: number; transferred: number; completed: number };

/** The intervals of the last hour (and the next minute) summed, the workspace's and per queue. */
async function totals(
  ws: string,
  source: 'live' | 'log',
): Promise<{ all: Figures; queues: Record<string, Figures> }> {
  const now = Date.now();
  const q = `from=${new Date(now - 3600_000).toISOString()}&to=${new Date(now + 60_000).toISOString()}${source === 'log' ? '&source=log' : ''}`;
  const r = await api.call('GET', `/v1/workspaces/${ws}/stats/intervals?${q}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.source).toBe(source);
  const add = (to: Figures, i: Figures) => {
    for (const f of ['queued', 'assigned', 'transferred', 'completed'] as const) to[f] += i[f];
  };
  const zero = (): Figures => ({ queued: 0, assigned: 0, transferred: 0, completed: 0 });
  const all = zero();
  const queues: Record<string, Figures> = {};
  for (const i of r.body.intervals as (Figures & { queues: Record<string, Figures> })[]) {
    add(all, i);
    for (const [name, f] of Object.entries(i.queues)) {
      queues[name] ??= zero();
      add(queues[name], f);
    }
  }
  return { all, queues };
}

/** Agent `a1` (Sales, Billing) available; contact c1 queued for Sales. */
async function setUp(ws: string, offerTimeoutMs: number): Promise<void> {
  await api.ok('PUT', ws, '/settings', { offerTimeoutMs, wrapUpMs: 0 });
  await api.ok('POST', ws, '/agents', { id: 'a1', skills: ['Sales', 'Billing'] });
  await api.ok('POST', ws, '/agents/a1/state', { state: 'available' });
  await api.ok('POST', ws, '/contacts', { id: 'c1', skills: ['Sales'] });
}

async function assigned(ws: string, offered: boolean): Promise<void> {
  const c = await api.until(ws, '/contacts/c1', (v: Json) => v.state === (offered ? 'offered' : 'assigned'));
  if (offered) await api.ok('POST', ws, '/contacts/c1/accept', { agentId: c.agentId });
}

async function expectOneFirstDecision(ws: string): Promise<void> {
  await intervalsCaughtUp(api.running.redis, ws);
  for (const source of ['log', 'live'] as const) {
    const { all, queues } = await totals(ws, source);
    expect(all, source).toEqual({ queued: 1, assigned: 1, transferred: 1, completed: 1 });
    // The decision counts under the queue it was made for: the first one, Sales.
    expect(queues['voice ["Sales"]']?.assigned, source).toBe(1);
    expect(queues['voice ["Billing"]']?.assigned ?? 0, source).toBe(0);
  }
}

describe('GET /stats/intervals: first decisions', () => {
  it('a contact assigned directly, transferred and assigned again is one first decision', async () => {
    const ws = WS.direct;
    await setUp(ws, 0);
    await assigned(ws, false);
    await api.ok('POST', ws, '/contacts/c1/transfer', { skills: ['Billing'] });
    await assigned(ws, false);
    await api.ok('POST', ws, '/contacts/c1/complete');
    await expectOneFirstDecision(ws);
  });

  it('the same with offers: the offer after the transfer is not a first decision', async () => {
    const ws = WS.offers;
    await setUp(ws, 60_000);
    await assigned(ws, true);
    await api.ok('POST', ws, '/contacts/c1/transfer', { skills: ['Billing'] });
    await assigned(ws, true);
    await api.ok('POST', ws, '/contacts/c1/complete');
    await expectOneFirstDecision(ws);
  });

  it('assigned directly, transferred, then offered once offers are on: one first decision', async () => {
    const ws = WS.switched;
    await setUp(ws, 0);
    await assigned(ws, false);
    await api.ok('PUT', ws, '/settings', { offerTimeoutMs: 60_000, wrapUpMs: 0 });
    await api.ok('POST', ws, '/contacts/c1/transfer', { skills: ['Billing'] });
    await assigned(ws, true);
    await api.ok('POST', ws, '/contacts/c1/complete');
    await expectOneFirstDecision(ws);
  });
});

describe('GET /stats/intervals: the range asked for', () => {
  it('a time without its offset is UTC, not read in the server time zone', async () => {
    const ws = WS.direct;
    const zone = process.env.TZ;
    // A zone without summer time, 5 h 30 ahead of UTC.
    process.env.TZ = 'Asia/Kolkata';
    try {
      const ask = (from: string, to: string) =>
        api.call('GET', `/v1/workspaces/${ws}/stats/intervals?from=${from}&to=${to}&source=log`);
      // Before, 02:30Z to 03:30Z here: another range on each server.
      const local = await ask('2026-12-01T08:00:00', '2026-12-01T09:00:00');
      expect(local.status, JSON.stringify(local.body)).toBe(200);
      expect(local.body.from).toBe('2026-12-01T08:00:00.000Z');
      expect((local.body.intervals as unknown[]).length).toBe(4);
      // With an offset the range is the same instant whatever the server's zone.
      const utc = await ask('2026-12-01T08:00:00Z', '2026-12-01T09:00:00Z');
      expect(utc.status, JSON.stringify(utc.body)).toBe(200);
      expect(utc.body.from).toBe('2026-12-01T08:00:00.000Z');
      const offset = await ask('2026-12-01T13:30:00%2B05:30', '2026-12-01T14:30:00%2B05:30');
      expect(offset.status, JSON.stringify(offset.body)).toBe(200);
      expect(offset.body.from).toBe('2026-12-01T08:00:00.000Z');
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });
});
