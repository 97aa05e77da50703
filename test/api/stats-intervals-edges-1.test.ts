/**
 * GET /stats/intervals from the live projection reads the settled intervals a few at a time, then
 * the rest with the checkpoint. When the projection was dropped and rebuilt between those reads,
 * past its checkpoint, the answer held the rebuild's partial tallies for the settled intervals
 * (zeros where the rebuild had not reached yet) as `source: "live"`. The route now reads the
 * projection's build (its generation) before and after, and answers from the log when it changed.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { INTERVAL_MS, intervalStart } from '../../src/domain/intervals.ts';
import { dropIntervals, IntervalProjection } from '../../src/projections/intervals.ts';
import { inProcessApi, type Json } from '../support/api.ts';

const WS = 'stats-intervals-rebuild';
// No projector in the instance: the test runs the interval projection itself, step by step.
const api = inProcessApi([WS], { env: { ROLES: 'api' } });

describe('GET /stats/intervals while the projection is rebuilt', () => {
  it('never answers a rebuild partway as the live figures', async () => {
    const redis = api.running.redis;
    const k = workspaceKeys(WS);
    const now = Number((await redis.time())[0]) * 1000;
    const first = intervalStart(now) - 4 * INTERVAL_MS;
    // Ten contacts queued in each of the four intervals before this one, one more just now.
    let last = '';
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 10; j++) {
        const ms = first + i * INTERVAL_MS + 1000 + j;
        const event = JSON.stringify({
          type: 'ContactQueued',
          workspace: WS,
          at: new Date(ms).toISOString(),
          data: { id: `c${i}-${j}`, skills: ['s'], channel: 'voice' },
        });
        last = (await redis.xadd(k.events, `${ms}-0`, 'type', 'ContactQueued', 'event', event))!;
      }
    const event = JSON.stringify({
      type: 'ContactQueued',
      workspace: WS,
      at: new Date(now - 1000).toISOString(),
      data: { id: 'now', skills: ['s'], channel: 'voice' },
    });
    last = (await redis.xadd(k.events, `${now - 1000}-0`, 'type', 'ContactQueued', 'event', event))!;
    const log = pino({ level: 'silent' });
    const opts = { batch: 10, blockMs: 200, serviceLevelMs: 20_000, keptMs: 35 * 24 * 3600_000 };
    await new IntervalProjection(redis, log, undefined, opts).applyPending(WS);
    expect(await redis.hget(k.intervals, 'checkpoint')).toBe(last);

    const range = `from=${new Date(first).toISOString()}&to=${new Date(intervalStart(now) + INTERVAL_MS).toISOString()}`;
    const fromLog = await api.ok('GET', WS, `/stats/intervals?${range}&source=log`);
    const before = await api.ok('GET', WS, `/stats/intervals?${range}`);
    expect(before.source).toBe('live');
    expect(before.intervals).toEqual(fromLog.intervals);

    // The route's client, hooked: on its first read of a settled interval's size, the projection
    // is dropped and rebuilt one step (the first interval); once the settled intervals are read,
    // the rebuild goes on to the log's end, past the checkpoint the route read first.
    const client = api.running.api!.deps.redis;
    const hlen = client.hlen.bind(client);
    const hgetall = client.hgetall.bind(client);
    const rebuild = new IntervalProjection(redis, log, undefined, opts);
    let dropped = false;
    let settledRead = 0;
    const hooked = client as unknown as Record<string, unknown>;
    hooked.hlen = async (key: string) => {
      if (!dropped && key.startsWith(k.intervalPrefix)) {
        dropped = true;
        await dropIntervals(redis, WS);
        await rebuild.step(WS);
      }
      return hlen(key);
    };
    hooked.hgetall = async (key: string) => {
      const got = await hgetall(key);
      if (key.startsWith(k.intervalPrefix) && ++settledRead === 4) await rebuild.applyPending(WS);
      return got;
    };
    let during: Json;
    try {
      during = await api.ok('GET', WS, `/stats/intervals?${range}`);
    } finally {
      delete hooked.hlen;
      delete hooked.hgetall;
    }
    expect(dropped).toBe(true);
    expect(await redis.hget(k.intervals, 'checkpoint')).toBe(last);
    const queued = (r: Json) => (r.intervals as Json[]).map((i) => i.queued).join(' ');
    expect(`${queued(during)} (${String(during.source)})`).toBe(`${queued(fromLog)} (log)`);
    expect(during.intervals).toEqual(fromLog.intervals);
    // Once rebuilt, the live figures answer again.
    const after = await api.ok('GET', WS, `/stats/intervals?${range}`);
    expect(after.source).toBe('live');
    expect(after.intervals).toEqual(fromLog.intervals);
  }, 60_000);
});
