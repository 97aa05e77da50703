/**
 * The live interval projection (src/projections/intervals.ts) against the log's own computation
 * (IntervalStats over the whole event log): a realistic run through the API (offers accepted and
 * rejected, completions, a transfer, a routing step, abandons, an expiry), followed live by the
 * projector role; the same log re-timed across 15-minute bounds (its entries copied in order to
 * another workspace with chosen stream ids, the clock of Redis not being ours to move); and
 * GET /stats/intervals answering from the live projection with the figures the log gives.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { INTERVAL_MS, intervalStart } from '../../src/domain/intervals.ts';
import { dropIntervals, IntervalProjection } from '../../src/projections/intervals.ts';
import { inProcessApi, type Json } from '../support/api.ts';
import { expectLiveEqualsLog, intervalsCaughtUp, intervalsFromLog } from '../support/intervals.ts';

const LIVE = 'intervals-live';
const COPY = 'intervals-copy';
const KEPT = 'intervals-kept';
const api = inProcessApi([LIVE]);
const { call, ok, until } = api;
const THRESHOLD = 20_000;

/** Waits for `id` to be offered (to anyone but `not`) and has its agent accept (or reject) it. */
async function answer(ws: string, id: string, verb: 'accept' | 'reject', not?: string): Promise<string> {
  const c = await until(ws, `/contacts/${id}`, (v) => v.state === 'offered' && v.agentId !== not);
  await ok('POST', ws, `/contacts/${id}/${verb}`, { agentId: c.agentId });
  return c.agentId as string;
}

/** A run with every kind of event the intervals count. */
async function realisticRun(ws: string): Promise<void> {
  await ok('PUT', ws, '/settings', { offerTimeoutMs: 10_000, wrapUpMs: 0 });
  for (const [id, skills] of [
    ['s1', ['Sales']],
    ['s2', ['Sales', 'English']],
    ['b1', ['Billing']],
  ] as const)
    await ok('POST', ws, '/agents', { id, skills });
  for (const id of ['s1', 's2']) await ok('POST', ws, `/agents/${id}/state`, { state: 'available' });
  // c1: its first offer is rejected, its second (not a first decision) accepted.
  await ok('POST', ws, '/contacts', { id: 'c1', skills: ['Sales'] });
  const rejecter = await answer(ws, 'c1', 'reject');
  await answer(ws, 'c1', 'accept', rejecter);
  await ok('POST', ws, '/contacts', { id: 'c2', skills: ['Sales'] });
  await answer(ws, 'c2', 'accept');
  // Nobody serves Billing yet: one expires, one is abandoned, one relaxes to Billing by its step.
  await ok('POST', ws, '/contacts', { id: 'c3', skills: ['Billing'], maxWaitMs: 200 });
  await ok('POST', ws, '/contacts', { id: 'c4', skills: ['Billing'] });
  await ok('POST', ws, '/contacts', {
    id: 'c5',
    skills: ['Sales'],
    steps: [{ afterMs: 150, skills: ['Billing'] }],
  });
  await until(ws, '/contacts/c3', (c) => c.state === 'expired');
  await until(ws, '/contacts/c5', (c) => c.step === 1);
  await ok('POST', ws, '/contacts/c4/abandon');
  await ok('POST', ws, '/contacts/c1/complete');
  await ok('POST', ws, '/contacts/c2/transfer', { skills: ['Billing'] });
  await ok('POST', ws, '/agents/b1/state', { state: 'available' });
  for (const id of ['c2', 'c5']) {
    await answer(ws, id, 'accept');
    await ok('POST', ws, `/contacts/${id}/complete`);
  }
  // Some volume: Sales contacts served, completed, or abandoned while waiting.
  for (let i = 0; i < 12; i++) {
    const id = `v${i}`;
    await ok('POST', ws, '/contacts', { id, skills: i % 3 === 0 ? ['English'] : ['Sales'] });
    if (i % 4 === 3) {
      await ok('POST', ws, `/contacts/${id}/abandon`);
      continue;
    }
    await answer(ws, id, 'accept');
    if (i < 10) await ok('POST', ws, `/contacts/${id}/complete`);
  }
}

/**
 * Copies the event log of `from` to `to` in order, re-timed: its entries spread evenly over `spanMs`
 * from `startMs`, each keeping its fields (its data, waits and handle times as they were measured).
 * Spread by their order, not by their times: a run whose time is mostly one pause (a slow machine
 * waiting on an expiry) would otherwise put its entries in the first and last intervals only.
 */
async function copyRetimed(redis: RedisClient, from: string, to: string, startMs: number, spanMs: number) {
  const entries = (await redis.xrange(workspaceKeys(from).events, '-', '+')) as StreamEntry[];
  const gap = spanMs / Math.max(1, entries.length - 1);
  const batch = redis.pipeline();
  entries.forEach(([, fields], i) => {
    batch.xadd(workspaceKeys(to).events, `${startMs + Math.round(i * gap)}-0`, ...fields);
  });
  await batch.exec();
  return entries.length;
}

describe('the live interval projection', () => {
  it('follows a realistic run live, and the same log re-timed across 15-minute bounds, equal to the log computation', async () => {
    const redis = api.running.redis;
    await realisticRun(LIVE);
    await intervalsCaughtUp(redis, LIVE);
    await expectLiveEqualsLog(redis, LIVE, THRESHOLD);

    // Over 40 minutes starting 5 minutes before a bound, three hours ago: four intervals.
    const start = intervalStart(Date.now() - 3 * 3600_000) + INTERVAL_MS - 5 * 60_000;
    const copied = await copyRetimed(redis, LIVE, COPY, start, 40 * 60_000);
    const log = pino({ level: 'silent' });
    const a = new IntervalProjection(redis, log, undefined, {
      batch: 7,
      blockMs: 100,
      serviceLevelMs: THRESHOLD,
      keptMs: 35 * 24 * 3600_000,
    });
    const b = new IntervalProjection(redis, log, undefined, {
      batch: 5,
      blockMs: 100,
      serviceLevelMs: THRESHOLD,
      keptMs: 35 * 24 * 3600_000,
    });
    // Both step at once, from the same checkpoint: one applies each batch, the other writes nothing.
    let refused = 0;
    for (;;) {
      const steps = await Promise.all([a.step(COPY), b.step(COPY)]);
      refused += steps.filter((n) => n < 0).length;
      if (steps.every((n) => n === 0)) break;
    }
    expect(refused).toBeGreaterThan(0);
    expect(a.applied + b.applied).toBe(copied);
    const { starts } = await expectLiveEqualsLog(redis, COPY, THRESHOLD);
    expect(starts.length).toBeGreaterThanOrEqual(3);
    // Dropped and rebuilt from the log by another step: the same tallies.
    const k = workspaceKeys(COPY);
    const before = await Promise.all(starts.map((s) => redis.hgetall(`${k.intervalPrefix}${s}`)));
    await dropIntervals(redis, COPY);
    expect(await redis.exists(k.intervals, k.intervalIndex, `${k.intervalPrefix}${starts[0]}`)).toBe(0);
    await b.applyPending(COPY);
    expect(await Promise.all(starts.map((s) => redis.hgetall(`${k.intervalPrefix}${s}`)))).toEqual(before);
    await expectLiveEqualsLog(redis, COPY, THRESHOLD);

    // Every figure the intervals count happened, in more than one interval.
    const { stats } = await intervalsFromLog(redis, COPY, THRESHOLD);
    const totals = stats.result(starts[0]!, starts.at(-1)! + INTERVAL_MS);
    for (const f of ['queued', 'assigned', 'abandoned', 'expired', 'completed', 'transferred'] as const)
      expect(
        totals.reduce((n, i) => n + i[f], 0),
        f,
      ).toBeGreaterThan(0);
    expect(totals.filter((i) => i.queued > 0).length).toBeGreaterThanOrEqual(3);
    // Only contacts still able to count keep their queue: the one left assigned.
    expect(await redis.hkeys(workspaceKeys(COPY).intervalContacts)).toEqual(['v10']);
  });

  it('GET /stats/intervals answers from the live projection with the figures the log gives', async () => {
    const redis = api.running.redis;
    const path = (ws: string, q: string) => `/v1/workspaces/${ws}/stats/intervals?${q}`;
    const get = async (ws: string, q: string): Promise<Json> => {
      const r = await call('GET', path(ws, q));
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body;
    };
    // The range includes now: live, current to the checkpoint.
    await intervalsCaughtUp(redis, LIVE);
    const now = Date.now();
    const range = `from=${new Date(now - 3600_000).toISOString()}&to=${new Date(now + 60_000).toISOString()}`;
    const live = await get(LIVE, range);
    const logged = await get(LIVE, `${range}&source=log`);
    expect(live.source).toBe('live');
    expect(live.position).toBe(await redis.hget(workspaceKeys(LIVE).intervals, 'checkpoint'));
    expect(logged.source).toBe('log');
    expect(live.intervals).toEqual(logged.intervals);
    expect((live.intervals as { queued: number }[]).reduce((n, i) => n + i.queued, 0)).toBe(17);

    // The re-timed copy, in the past: from its first interval to the bound after its last event.
    const { stats, last } = await intervalsFromLog(redis, COPY, THRESHOLD);
    const starts = stats.starts();
    const past = `from=${new Date(starts[0]! + 60_000).toISOString()}&to=${new Date(starts.at(-1)! + INTERVAL_MS).toISOString()}`;
    const copyLive = await get(COPY, past);
    expect(copyLive).toMatchObject({ source: 'live', position: last });
    expect(copyLive.intervals).toEqual((await get(COPY, `${past}&source=log`)).intervals);
    expect(copyLive.intervals).toEqual(
      stats.result(starts[0]! + 60_000, starts.at(-1)! + INTERVAL_MS).map((i) => ({ ...i })),
    );
    // Another threshold, or a range ending inside an interval with events after it: from the log.
    const other = await get(COPY, `${past}&serviceLevelMs=5000`);
    expect(other.source).toBe('log');
    const inside = `from=${new Date(starts[0]!).toISOString()}&to=${new Date(starts[1]! + 60_000).toISOString()}`;
    expect(await get(COPY, inside)).toMatchObject({ source: 'log' });
    const bad = await call('GET', path(COPY, `${past}&source=cache`));
    expect(bad.status).toBe(400);
    expect((bad.body.errors as { path: string }[]).map((e) => e.path)).toEqual(['source']);
  });

  it('keeps an interval for its retention after its end: older ones are not written, the others expire on time, and older ranges come from the log', async () => {
    const redis = api.running.redis;
    const k = workspaceKeys(KEPT);
    // The run re-timed over 40 minutes about three hours ago, kept long enough that its first
    // intervals are past their retention and its last ones are not: the retention's bound is put
    // halfway between the first and the last interval the log gives (at least 15 minutes apart),
    // so the split does not depend on where the clock stands within an interval, nor on how the
    // run's events spread over its span.
    const start = intervalStart(Date.now() - 3 * 3600_000) + 5 * 60_000;
    await copyRetimed(redis, LIVE, KEPT, start, 40 * 60_000);
    const logged = (await intervalsFromLog(redis, KEPT, THRESHOLD)).stats.starts();
    expect(logged.length).toBeGreaterThan(1);
    const keptMs = Math.round(Date.now() - INTERVAL_MS - (logged[0]! + logged.at(-1)!) / 2);
    const p = new IntervalProjection(redis, pino({ level: 'silent' }), undefined, {
      batch: 50,
      blockMs: 100,
      serviceLevelMs: THRESHOLD,
      keptMs,
    });
    await p.applyPending(KEPT);
    const now = Date.now();
    const { stats, last } = await intervalsFromLog(redis, KEPT, THRESHOLD);
    expect(await redis.hget(k.intervals, 'checkpoint')).toBe(last);
    const all = stats.starts();
    const kept = all.filter((s) => s + INTERVAL_MS + keptMs > now + 5000);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(all.length);
    expect((await redis.zrange(k.intervalIndex, 0, -1)).map(Number)).toEqual(kept);
    for (const s of all) {
      const ttl = await redis.pttl(`${k.intervalPrefix}${s}`);
      if (!kept.includes(s)) expect(ttl, `interval ${s}`).toBe(-2);
      else expect(Math.abs(ttl - (s + INTERVAL_MS + keptMs - now)), `interval ${s}`).toBeLessThan(10_000);
    }
    // A range older than the live projection keeps (35 days) is read from the log.
    const old = Date.now() - 36 * 24 * 3600_000;
    const r = await call(
      'GET',
      `/v1/workspaces/${LIVE}/stats/intervals?from=${new Date(old).toISOString()}&to=${new Date(old + INTERVAL_MS).toISOString()}`,
    );
    expect(r.body).toMatchObject({ source: 'log' });
  });
});
