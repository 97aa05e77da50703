/**
 * The live interval projection's loop on a busy workspace: new events wake it, it lets them gather
 * (`gatherMs`) and applies them in few steps, not one per round trip, and it still ends caught up.
 * A real Redis; the events are appended as the projector appends them (type and JSON fields).
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { IntervalProjection } from '../../src/projections/intervals.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

describe('the live interval projection on a busy workspace', () => {
  const suite = suiteRedis();

  it('applies a steady stream of events in steps of what gathered, and catches up', async () => {
    const ws = `gather-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const p = new IntervalProjection(suite.redis, pino({ level: 'silent' }), undefined, {
      batch: 1000,
      blockMs: 200,
      serviceLevelMs: 20_000,
      keptMs: 3600_000,
      gatherMs: 100,
    });
    let steps = 0;
    const step = p.step.bind(p);
    p.step = async (workspace: string) => {
      const n = await step(workspace);
      if (n > 0) steps++;
      return n;
    };
    let on = true;
    const loop = p.run(ws, () => on);
    // A contact queued every millisecond or so for a second (a busy workspace): never a pause
    // long enough for a step to find nothing new.
    let last = '';
    let n = 0;
    const started = Date.now();
    while (Date.now() - started < 1000) {
      const at = new Date().toISOString();
      const data = { id: `c${n++}`, skills: ['A'], priority: 0, queuedAt: at };
      const event = { type: 'ContactQueued', workspace: ws, at, data };
      last = (await suite.redis.xadd(
        k.events,
        '*',
        'type',
        'ContactQueued',
        'event',
        JSON.stringify(event),
      ))!;
      await sleep(1);
    }
    const seconds = (Date.now() - started) / 1000;
    await waitFor(
      'the projection to catch up',
      async () => (await suite.redis.hget(k.intervals, 'checkpoint')) === last,
    );
    on = false;
    p.interrupt(ws);
    await loop;
    // One step per gathering (100 ms) and a few more; stepping until a step finds nothing made a
    // step per round trip (66 here, a step for every 11 events).
    expect(steps).toBeLessThanOrEqual(Math.ceil(seconds / 0.1) + 3);
    expect(steps).toBeGreaterThan(1);
    const tally = await suite.redis.hgetall(
      `${k.intervalPrefix}${Math.floor(Date.now() / 900_000) * 900_000}`,
    );
    expect(Number(tally.queued ?? 0)).toBeLessThanOrEqual(n); // the interval may have turned meanwhile
    console.log(JSON.stringify({ steps, events: n, seconds, tally }));
  });
});
