/**
 * The figures a contact and the workspace report, against what happened (docs/API.md, "Queue
 * position and estimated wait", "Historical intervals"): `queuePosition` with priorities, a
 * contact waiting for its preferred agents and a requirement at a level; `estimatedWaitMs` from
 * the queue's measured rate, null for a queue no decision served; a transfer counted once, under
 * the queue it leaves, the contact queued once; and the interval projection, dropped and rebuilt
 * from the log, giving the same figures.
 */
import { describe, expect, it } from 'vitest';
import { dropIntervals } from '../../src/projections/intervals.ts';
import { inProcessApi, type Json } from '../support/api.ts';
import { expectLiveEqualsLog, intervalsCaughtUp } from '../support/intervals.ts';

const WS = 'stats-edges-three';
const api = inProcessApi([WS]);
const get = (path: string) => api.ok('GET', WS, path);

describe('queuePosition, estimatedWaitMs and the counts of a transfer', () => {
  it('stands each contact in its own queue and estimates from the measured rate', async () => {
    const started = Date.now();
    await api.ok('POST', WS, '/agents', { id: 'a1', skills: ['S'], wrapUpMs: 600_000 });
    await api.ok('POST', WS, '/agents/a1/state', { state: 'available' });
    await api.ok('POST', WS, '/contacts', { id: 'x1', skills: ['S'] });
    await api.until(WS, '/contacts/x1', (c) => c.state === 'assigned');
    await api.ok('POST', WS, '/contacts', { id: 'x2', skills: ['S'] });
    await api.ok('POST', WS, '/contacts', { id: 'x3', skills: ['S'], priority: 5 });
    await api.ok('POST', WS, '/contacts', { id: 'x4', skills: ['S'], preferredAgents: ['a9'] });
    await api.ok('POST', WS, '/contacts', { id: 'x5', skills: [{ name: 'S', minLevel: 3 }] });
    await api.ok('POST', WS, '/contacts', { id: 'x6', skills: [{ name: 'S', minLevel: 3 }] });
    await api.ok('POST', WS, '/contacts', { id: 'x7', skills: ['S'], channel: 'voice', priority: 0 });
    await api.ok('POST', WS, '/contacts', { id: 'z1', skills: ['Z'] });

    const place = async (id: string) => {
      const c = await get(`/contacts/${id}`);
      expect(c.state, id).toBe('queued');
      return [c.queuePosition, c.estimatedWaitMs] as [number, number | null];
    };
    // One decision in voice/S so far, made after `started`: r = 1 / max(time since it, 1 s).
    const positions: Record<string, number> = { x3: 0, x2: 1, x4: 2, x7: 3 };
    for (const [id, n] of Object.entries(positions)) {
      const [position, wait] = await place(id);
      expect(position, id).toBe(n);
      expect(wait, id).not.toBeNull();
      expect(wait!, id).toBeGreaterThanOrEqual((n + 1) * 1000);
      expect(wait!, id).toBeLessThanOrEqual((n + 1) * Math.max(Date.now() - started, 1000) + 1);
    }
    // Another queue (S at level 3 or above): its own positions, no decision there yet.
    expect(await place('x5')).toEqual([0, null]);
    expect(await place('x6')).toEqual([1, null]);
    // No agent serves Z: no decision, no estimate.
    expect(await place('z1')).toEqual([0, null]);

    // The assigned contact is transferred: counted once, under the queue it leaves; queued once.
    const t = await api.ok('POST', WS, '/contacts/x1/transfer', { skills: ['T'] });
    const stats = await get(`/stats?minPosition=${t.position as string}`);
    expect(stats).toMatchObject({ assignments: 1, transferred: 1, contactsQueuedSoFar: 8, queued: 8 });
    const queues = stats.queues as (Json & { channel: string; skills: string })[];
    const byName = Object.fromEntries(queues.map((q) => [`${q.channel} ${q.skills}`, q]));
    expect(byName['voice S']).toMatchObject({ queued: 4, assignments: 1 });
    expect(byName['voice T']).toMatchObject({ queued: 1, assignments: 0 });
    expect(await place('x1')).toEqual([0, null]);

    const redis = api.running.redis;
    await intervalsCaughtUp(redis, WS);
    const range = `from=${new Date(started - 60_000).toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`;
    const sum = (r: Json) => {
      const out: Record<string, number> = {};
      for (const i of r.intervals as Record<string, number>[])
        for (const f of ['queued', 'assigned', 'transferred', 'completed'] as const)
          out[f] = (out[f] ?? 0) + i[f]!;
      return out;
    };
    const live = await get(`/stats/intervals?${range}`);
    expect(live.source).toBe('live');
    const log = await get(`/stats/intervals?${range}&source=log`);
    expect(sum(live)).toEqual({ queued: 8, assigned: 1, transferred: 1, completed: 0 });
    expect(sum(log)).toEqual(sum(live));
    expect((live.intervals as Json[]).map((i) => i.queues)).toEqual(
      (log.intervals as Json[]).map((i) => i.queues),
    );

    // Dropped, the projection is built again from the log: the same figures.
    await dropIntervals(redis, WS);
    await intervalsCaughtUp(redis, WS);
    await expectLiveEqualsLog(redis, WS, 20_000);
    const rebuilt = await get(`/stats/intervals?${range}`);
    expect(rebuilt.source).toBe('live');
    expect(rebuilt.intervals).toEqual(live.intervals);
  });
});
