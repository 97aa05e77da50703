/**
 * GET /stats per queue over the sliding window: abandons and expirations (the projector's ended
 * set, each in the queue the contact waited in last, trimmed once per step per queue to the
 * window and to 64), and each queue's occupancy (its agents present as available), against the
 * OpenAPI document's Stats schema.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { openapi } from '../../src/adapters/http/openapi.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { readStats } from '../../src/adapters/redis/projection-reads.ts';
import { SERVED_KEEP, SERVED_WINDOW_MS } from '../../src/adapters/redis/routing-index.ts';
import { inProcessApi, type Json } from '../support/api.ts';

const WS = { ended: 'win-ended', trim: 'win-trim', occupancy: 'win-occupancy' };
const api = inProcessApi(Object.values(WS));

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema({ components: openapi.components }, 'doc');
const validStats = ajv.compile({ $ref: 'doc#/components/schemas/Stats' });

type Queue = {
  channel: string;
  skills: string;
  queued: number;
  abandons: number;
  expirations: number;
  assignments: number;
  occupancy: number | null;
  agents: Record<string, number>;
};
const queueOf = (stats: { queues: readonly unknown[] }, channel: string, skills: string) =>
  (stats.queues as Queue[]).find((q) => q.channel === channel && q.skills === skills);
const left = (q: Queue | undefined) => q && { abandons: q.abandons, expirations: q.expirations };

describe('GET /stats: abandons and expirations per queue over the window', () => {
  it('each counts in the queue its contact waited in last (channel, requirements after steps), nowhere else', async () => {
    const ws = WS.ended;
    await api.ok('PUT', ws, '/settings', { channels: ['voice', 'chat'], offerTimeoutMs: 60_000 });
    // Voice Billing: one abandoned, one expired, one still waiting.
    await api.ok('POST', ws, '/contacts', { id: 'b-ab', skills: ['Billing'] });
    await api.ok('POST', ws, '/contacts', { id: 'b-ex', skills: ['Billing'], maxWaitMs: 200 });
    await api.ok('POST', ws, '/contacts', { id: 'b-wait', skills: ['Billing'] });
    // Relaxes from Spanish to Billing after 50 ms, then expires: a Billing expiration.
    await api.ok('POST', ws, '/contacts', {
      id: 'stepped',
      skills: ['Spanish'],
      steps: [{ afterMs: 50, skills: ['Billing'] }],
      maxWaitMs: 400,
    });
    // The same skills on chat: another queue.
    await api.ok('POST', ws, '/contacts', { id: 'c-ab', skills: ['Billing'], channel: 'chat' });
    // Sales: waiting, nothing ended.
    await api.ok('POST', ws, '/contacts', { id: 's-wait', skills: ['Sales'] });
    // Support: abandoned while offered to its agent.
    await api.ok('POST', ws, '/agents', { id: 'sup', skills: ['Support'], capacity: 1 });
    await api.ok('POST', ws, '/agents/sup/state', { state: 'available' });
    await api.ok('POST', ws, '/contacts', { id: 'o-ab', skills: ['Support'] });
    await api.until(ws, '/contacts/o-ab', (c) => c.state === 'offered');
    for (const id of ['b-ab', 'c-ab', 'o-ab']) await api.ok('POST', ws, `/contacts/${id}/abandon`);
    const stats = await api.until(ws, '/stats', (s) => s.expired === 2 && s.abandoned === 3, 10_000);
    expect(validStats(stats), JSON.stringify(validStats.errors)).toBe(true);
    const s = stats as unknown as { queues: Queue[]; window: Json };
    expect(left(queueOf(s, 'voice', 'Billing'))).toEqual({ abandons: 1, expirations: 2 });
    expect(queueOf(s, 'voice', 'Billing')!.queued).toBe(1);
    expect(left(queueOf(s, 'chat', 'Billing'))).toEqual({ abandons: 1, expirations: 0 });
    expect(left(queueOf(s, 'voice', 'Support'))).toEqual({ abandons: 1, expirations: 0 });
    expect(left(queueOf(s, 'voice', 'Sales'))).toEqual({ abandons: 0, expirations: 0 });
    // The stepped contact left Spanish's queue before it expired: Spanish has nothing to show.
    expect(queueOf(s, 'voice', 'Spanish')).toBeUndefined();
    // The offer was a decision: Support's one assignment.
    expect(s.window).toMatchObject({ abandons: 3, expirations: 2, assignments: 1 });
    // The offer's agent was freed; the queue lists it as present with nothing in hand.
    expect(queueOf(s, 'voice', 'Support')!.agents.available).toBe(1);
    expect(queueOf(s, 'voice', 'Support')!.occupancy).toBe(0);

    // The window slides: read just past it, nothing counts, and queues with nothing waiting go.
    const later = await readStats(api.running.redis, ws, Date.now() + SERVED_WINDOW_MS + 1);
    expect(later.window).toMatchObject({ abandons: 0, expirations: 0 });
    expect(later.queues.map((q) => `${q.channel}/${q.skills}`)).toEqual(['voice/Billing', 'voice/Sales']);
    expect(left(queueOf(later, 'voice', 'Billing') as Queue)).toEqual({ abandons: 0, expirations: 0 });
    // The totals since the start stay.
    expect(later).toMatchObject({ abandoned: 3, expired: 2 });
  });

  it(`each step trims the queues it wrote to: members older than the window go, and past the newest ${SERVED_KEEP}`, async () => {
    const ws = WS.trim;
    const k = workspaceKeys(ws);
    const redis = api.running.redis;
    const ms = (t: number) => String(t).padStart(15, '0');
    const old = Date.now() - SERVED_WINDOW_MS - 60_000;
    // As a step six minutes ago left them: one in the queue written below, one in a queue not written.
    await redis.zadd(
      k.ended,
      0,
      `voice/Trim|${ms(old)}|abandoned|ghost`,
      0,
      `voice/Quiet|${ms(old)}|expired|q`,
    );
    const n = SERVED_KEEP + 6;
    for (let i = 0; i < n; i++) await api.ok('POST', ws, '/contacts', { id: `t${i}`, skills: ['Trim'] });
    for (let i = 0; i < n; i += 10)
      await Promise.all(
        Array.from({ length: Math.min(10, n - i) }, (_, j) =>
          api.ok('POST', ws, `/contacts/t${i + j}/abandon`),
        ),
      );
    const stats = await api.until(ws, '/stats', (s) => s.abandoned === n);
    expect(validStats(stats), JSON.stringify(validStats.errors)).toBe(true);
    const trim = await redis.zrangebylex(k.ended, '[voice/Trim|', '(voice/Trim|\xff');
    expect(trim).toHaveLength(SERVED_KEEP);
    expect(trim.some((m) => m.endsWith('|ghost'))).toBe(false);
    expect(trim.every((m) => m.split('|')[2] === 'abandoned')).toBe(true);
    // The newest were kept: the set holds the latest times written.
    const times = (await redis.zrangebylex(k.ended, '[voice/Trim|', '(voice/Trim|\xff')).map((m) =>
      Number(m.split('|')[1]),
    );
    expect(Math.min(...times)).toBeGreaterThan(old);
    // A queue no step wrote to is left as it was (a step's cost is its own queues'), and not counted.
    expect(await redis.zrangebylex(k.ended, '[voice/Quiet|', '(voice/Quiet|\xff')).toHaveLength(1);
    const s = stats as unknown as { queues: Queue[]; window: Json };
    expect(left(queueOf(s, 'voice', 'Trim'))).toEqual({ abandons: SERVED_KEEP, expirations: 0 });
    expect(queueOf(s, 'voice', 'Quiet')).toBeUndefined();
    expect(s.window).toMatchObject({ abandons: SERVED_KEEP, expirations: 0 });
  }, 30_000);
});

describe('GET /stats: occupancy per queue', () => {
  it("the share of capacity in use among the queue's agents present as available", async () => {
    const ws = WS.occupancy;
    const agents: [string, string[], number, string][] = [
      ['o1', ['Support'], 1, 'available'],
      ['o2', ['Support'], 1, 'available'],
      // Away: counted in the queue's agents, not in its capacity.
      ['o3', ['Support'], 1, 'away'],
      // Another queue's agent, idle: the workspace's occupancy counts it, Support's does not.
      ['o4', ['Other'], 2, 'available'],
    ];
    for (const [id, skills, capacity, state] of agents) {
      await api.ok('POST', ws, '/agents', { id, skills, capacity });
      await api.ok('POST', ws, `/agents/${id}/state`, { state });
    }
    await api.ok('POST', ws, '/contacts', { id: 'x', skills: ['Support'] });
    await api.ok('POST', ws, '/contacts', { id: 'y', skills: ['Nobody'] });
    const stats = await api.until(ws, '/stats', (s) => s.assignments === 1 && s.queued === 1);
    expect(validStats(stats), JSON.stringify(validStats.errors)).toBe(true);
    const s = stats as unknown as { queues: Queue[]; occupancy: number };
    const support = queueOf(s, 'voice', 'Support')!;
    expect(support.agents).toMatchObject({ available: 1, busy: 1, away: 1 });
    expect(support.occupancy).toBe(0.5);
    expect(s.occupancy).toBe(0.25);
    // A queue nobody may take: no capacity, no share.
    expect(queueOf(s, 'voice', 'Nobody')!.occupancy).toBeNull();
    // The busy one completes: nothing in use.
    await api.ok('POST', ws, '/contacts/x/complete');
    const after = await api.until(ws, '/stats', (v) => v.completed === 1);
    expect(queueOf(after as unknown as { queues: Queue[] }, 'voice', 'Support')!.occupancy).toBe(0);
  });
});
