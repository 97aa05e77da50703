/**
 * What a read says of the queue (docs/API.md, `GET /stats` and "Queue position and estimated wait"),
 * held against what happened: queues sharing agents across channels and skill levels, offers (an
 * offered contact has no position, counts in the occupancy of its agent's queues, and a rejected one
 * goes back to its place), a transfer moving a contact to another queue, an abandon counted in the
 * queue it waited in last, a later contact of higher priority standing ahead under aging, and the
 * window sliding (a figure counts while at most `window.ms` old, in `/stats` and in the estimate
 * alike); and the query's bad values refused with a 400 naming `serviceLevelMs`. A guard: the
 * tree answered all of these as the docs say.
 */
import { describe, expect, it } from 'vitest';
import { readStats } from '../../src/adapters/redis/projection-reads.ts';
import { contactWithPlace, SERVED_WINDOW_MS } from '../../src/adapters/redis/routing-index.ts';
import { inProcessApi, type Json } from '../support/api.ts';

const WS = 'stats-edges-seven';
const MOVE = 'stats-edges-seven-move';
const api = inProcessApi([WS, MOVE]);
const get = (path: string, ws = WS) => api.ok('GET', ws, path);

type Queue = Json & { channel: string; skills: string; agents: Record<string, number> };
const byName = (stats: Json) =>
  Object.fromEntries((stats.queues as Queue[]).map((q) => [`${q.channel} ${q.skills}`, q]));

describe('GET /stats and a queued contact read against what happened', () => {
  it('refuses each bad serviceLevelMs with a 400 naming it', async () => {
    for (const q of ['0', '1e3', '86400001', '-1', '', ' 5', '5.0', '0x10', '1&serviceLevelMs=2']) {
      const r = await api.call('GET', `/v1/workspaces/${WS}/stats?serviceLevelMs=${q}`);
      expect(r.status, q).toBe(400);
      expect(r.type.split(';')[0], q).toBe('application/problem+json');
      expect(r.body.type, q).toBe('/problems/invalid-request');
      expect(r.body.errors, q).toEqual([{ path: 'serviceLevelMs', message: expect.any(String) }]);
    }
    const ok = await get('/stats?serviceLevelMs=86400000');
    expect((ok.window as Json).serviceLevelMs).toBe(86_400_000);
    const one = await get('/stats?serviceLevelMs=0001');
    expect((one.window as Json).serviceLevelMs).toBe(1);
  });

  it('counts agents per queue by channel and level, positions per queue, offers and rejects', async () => {
    await api.ok('PUT', WS, '/settings', { channels: ['voice', 'chat'], offerTimeoutMs: 600_000 });
    // a1: S at level 3, chat only (2), away. a2: S, voice and chat, available later. a3: S#1, T: any channel, offline.
    await api.ok('POST', WS, '/agents', {
      id: 'a1',
      skills: [{ name: 'S', level: 3 }],
      capacity: { chat: 2 },
    });
    await api.ok('POST', WS, '/agents', { id: 'a2', skills: ['S'], capacity: { voice: 1, chat: 2 } });
    await api.ok('POST', WS, '/agents', { id: 'a3', skills: ['S', 'T'], capacity: 2 });
    await api.ok('POST', WS, '/agents/a1/state', { state: 'away' });
    await api.ok('POST', WS, '/contacts', { id: 'v1', skills: ['S'], channel: 'voice' });
    await api.ok('POST', WS, '/contacts', { id: 'c1', skills: ['S'], channel: 'chat' });
    await api.ok('POST', WS, '/contacts', {
      id: 'c2',
      skills: [{ name: 'S', minLevel: 2 }],
      channel: 'chat',
    });
    await api.ok('POST', WS, '/contacts', { id: 'v2', skills: ['S'], channel: 'voice' });
    const t1 = await api.ok('POST', WS, '/contacts', { id: 't1', skills: ['S', 'T'], channel: 'chat' });
    const s = await get(`/stats?minPosition=${t1.position as string}`);
    const q = byName(s);
    expect(Object.keys(q).sort()).toEqual(['chat S', 'chat S#2', 'chat S,T', 'voice S']);
    expect(q['voice S']!.agents).toMatchObject({ offline: 2, away: 0 });
    expect(q['chat S']!.agents).toMatchObject({ offline: 2, away: 1 });
    expect(q['chat S#2']!.agents).toMatchObject({ offline: 0, away: 1 });
    expect(q['chat S,T']!.agents).toMatchObject({ offline: 1, away: 0 });
    expect(q['voice S']!.queued).toBe(2);
    expect(s.queued).toBe(5);
    expect((await get('/contacts/v2')).queuePosition).toBe(1);
    expect((await get('/contacts/c2')).queuePosition).toBe(0);

    // a2 comes: offered v1 (voice) and c1 (chat), reserved; occupancy counts the offers.
    await api.ok('POST', WS, '/agents/a2/state', { state: 'available' });
    await api.until(WS, '/contacts/v1', (c) => c.state === 'offered');
    await api.until(WS, '/contacts/c1', (c) => c.state === 'offered');
    const v1 = await get('/contacts/v1');
    expect(v1.queuePosition).toBeUndefined();
    expect(v1.estimatedWaitMs).toBeUndefined();
    expect((await get('/contacts/v2')).queuePosition).toBe(0);
    const s2 = await get('/stats');
    const q2 = byName(s2);
    expect(s2.occupancy).toBe(Math.round((2 / 3) * 1000) / 1000);
    expect(q2['voice S']!.occupancy).toBe(Math.round((2 / 3) * 1000) / 1000);
    expect(q2['chat S,T']!.occupancy).toBeNull();
    expect(q2['voice S']!.queued).toBe(1);
    // Rejected: back at its place, ahead of v2.
    const r = await api.ok('POST', WS, '/contacts/v1/reject', { agentId: 'a2' });
    const back = await get(`/contacts/v1?minPosition=${r.position as string}`);
    expect(back.state).toBe('queued');
    expect(back.queuePosition).toBe(0);
  });

  it('moves a transferred contact to its new queue at its arrival, counts its abandon there, and slides the window', async () => {
    await api.ok('PUT', MOVE, '/settings', { priorityWeightMs: 60_000 });
    await api.ok('POST', MOVE, '/agents', { id: 'm1', skills: ['S'] });
    await api.ok('POST', MOVE, '/agents/m1/state', { state: 'available' });
    await api.ok('POST', MOVE, '/contacts', { id: 'x', skills: ['S'] });
    await api.until(MOVE, '/contacts/x', (c) => c.state === 'assigned', 10_000);
    // y waits in T; x, arrived before it, is transferred there: it stands ahead of y.
    await api.ok('POST', MOVE, '/contacts', { id: 'y', skills: ['T'] });
    expect((await get('/contacts/y', MOVE)).queuePosition).toBe(0);
    const t = await api.ok('POST', MOVE, '/contacts/x/transfer', { skills: ['T'] });
    const x = await get(`/contacts/x?minPosition=${t.position as string}`, MOVE);
    expect(x).toMatchObject({ state: 'queued', queuePosition: 0, estimatedWaitMs: null });
    expect((await get('/contacts/y', MOVE)).queuePosition).toBe(1);
    // Under aging, a later contact of a higher priority comes to stand ahead: y's position grows.
    await api.ok('POST', MOVE, '/contacts', { id: 'z', skills: ['T'], priority: 3 });
    expect((await get('/contacts/y', MOVE)).queuePosition).toBe(2);
    expect((await get('/contacts/z', MOVE)).queuePosition).toBe(0);
    // x leaves while waiting in T: its abandon counts in voice T, not in voice S it was served from.
    const ab = await api.ok('POST', MOVE, '/contacts/x/abandon');
    const s = await get(`/stats?minPosition=${ab.position as string}`, MOVE);
    const q = byName(s);
    expect(q['voice S']).toMatchObject({ queued: 0, assignments: 1, abandons: 0 });
    expect(q['voice T']).toMatchObject({ queued: 2, assignments: 0, abandons: 1 });
    expect(s).toMatchObject({ queued: 2, abandoned: 1, transferred: 1 });

    // The window slides: a figure counts while at most window.ms old, at both reads alike.
    const events = (await get('/events?limit=1000', MOVE)).events as Json[];
    const decided = Date.parse(
      ((events.find((e) => e.type === 'AssignmentMade')!.data as Json).assignedAt as string) ?? '',
    );
    const abandoned = Date.parse(
      (events.find((e) => e.type === 'ContactAbandoned')!.data as Json).abandonedAt as string,
    );
    const redis = api.running.redis;
    const at = async (now: number) => {
      const st = await readStats(redis, MOVE, now);
      return { assignments: st.window.assignments, abandons: st.window.abandons };
    };
    expect(await at(decided + SERVED_WINDOW_MS)).toEqual({ assignments: 1, abandons: 1 });
    expect(await at(decided + SERVED_WINDOW_MS + 1)).toEqual({ assignments: 0, abandons: 1 });
    expect(await at(abandoned + SERVED_WINDOW_MS + 1)).toEqual({ assignments: 0, abandons: 0 });
    // m1 served x in voice S: a contact waiting there now would be estimated from it until it slides out.
    await api.ok('POST', MOVE, '/agents/m1/state', { state: 'away' });
    const w = await api.ok('POST', MOVE, '/contacts', { id: 'w', skills: ['S'] });
    await get(`/contacts/w?minPosition=${w.position as string}`, MOVE);
    const place = async (now: number) => (await contactWithPlace(redis, MOVE, 'w', now))?.place;
    expect(await place(decided + SERVED_WINDOW_MS)).toEqual({
      queuePosition: 0,
      estimatedWaitMs: SERVED_WINDOW_MS,
    });
    expect(await place(decided + SERVED_WINDOW_MS + 1)).toEqual({ queuePosition: 0, estimatedWaitMs: null });
  });
});
