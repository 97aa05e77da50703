/**
 * The event tail's hand-out to many live subscribers, on a real Redis: it goes out in slices that
 * let the event loop go, events read meanwhile are joined to what the subscribers not yet reached
 * are handed (one batch where there would have been two), and still every subscriber gets every
 * event read after it joined, once and in order; one that leaves is handed nothing more, one that
 * throws does not stop the others.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LiveEvent } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { TailHub } from '../../src/adapters/redis/tail.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const realSetTimeout = globalThis.setTimeout;

const log = pino({ level: 'silent' });
let redis: TestRedis;

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  await redis?.stop();
});

/** Busy for `ms`: a subscriber whose socket write is slow, so a hand-out to all spans many slices. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {}
}

/** A fresh workspace's tail hub on its own connection, and `append(n)`: a ContactQueued numbered n. */
function feed(name: string) {
  const client = redis.client();
  const hub = new TailHub(client, log);
  const ws = `${name}-${Date.now()}`;
  const key = workspaceKeys(ws).events;
  const append = (n: number) =>
    client.xadd(
      key,
      '*',
      'type',
      'ContactQueued',
      'event',
      JSON.stringify({ type: 'ContactQueued', workspace: ws, at: '2026-01-01T00:00:00.000Z', data: { n } }),
    );
  return { client, hub, ws, append };
}

describe('the event tail hands batches to many subscribers', () => {
  it('in slices, joining what is read meanwhile, every event once and in order to every subscriber', async () => {
    const { client, hub, ws, append } = feed('api-live-tail');
    try {
      const tail = await hub.get(ws);
      const N = 1500;
      /** Each subscriber's batches, as handed. */
      const got: (readonly LiveEvent[])[][] = Array.from({ length: N }, () => []);
      /** How many subscribers had been handed the first batch when a timer set by the first ran. */
      let reachedWhenTimerRan = -1;
      let reached = 0;
      let late: (readonly LiveEvent[])[] | undefined;
      let appendedLater: Promise<string | null>[] = [];
      const stops: (() => void)[] = [];
      for (let i = 0; i < N; i++) {
        stops.push(
          tail.subscribeBatches((batch) => {
            got[i]!.push(batch);
            if (got[i]!.length === 1) reached++;
            // 1,500 subscribers: at least 450 ms for a hand-out, many slices of 4 ms; the later
            // events are read within its first half even when Redis waits a while for a core.
            busy(0.3);
            if (i === 0 && got[0]!.length === 1) {
              setTimeout(() => {
                reachedWhenTimerRan = reached;
              }, 0);
              // Read while the first batch is still going out.
              appendedLater = [append(2), append(3), append(4)];
            }
            if (i === 10 && got[10]!.length === 1) {
              stops[N - 1]!(); // the last subscriber leaves before it is reached
              late = [];
              const into = late;
              tail.subscribeBatches((b) => into.push(b)); // joins mid-hand-out: only what is read next
            }
            if (i === 20) throw new Error('a subscriber that fails');
          }),
        );
      }
      const first = await append(1);
      await waitFor('the first events appended', () => appendedLater.length === 3);
      const later = (await Promise.all(appendedLater)) as string[];
      const all = [first!, ...later];
      await waitFor(
        'every subscriber handed every event',
        () => got.every((b, i) => i === N - 1 || b.flat().length === all.length),
        { timeoutMs: 20_000, everyMs: 20 },
      );

      // Every subscriber that stayed got the four events once, in order.
      for (let i = 0; i < N - 1; i++) expect(got[i]!.flat().map((e) => e.position)).toEqual(all);
      expect(got[N - 1]).toEqual([]);
      // The event loop ran during the hand-out of the first batch, well before its end.
      expect(reachedWhenTimerRan).toBeGreaterThan(0);
      expect(reachedWhenTimerRan).toBeLessThan(N - 100);
      // The subscribers reached after the later events were read were handed them joined to the
      // first: one batch of all four.
      const joined = got.filter((b) => b.length === 1);
      expect(joined.length).toBeGreaterThan(N / 2);
      // Handed the same array: what is made of a batch (frames) is made once for all of them.
      for (const b of joined) expect(b[0]).toBe(joined[0]![0]);
      expect(got[0]!.length).toBeGreaterThan(1);
      expect(got[0]![0]!.map((e) => e.position)).toEqual([first]);
      // The subscriber that joined mid-hand-out: only what was read after it joined, if anything.
      const lateEvents = late!.flat().map((e) => e.position);
      expect(all.slice(all.length - lateEvents.length)).toEqual(lateEvents);
      expect(lateEvents).not.toContain(first);

      // A later read reaches everyone once more, alone.
      const fifth = await append(5);
      await waitFor(
        'the fifth event handed to everyone',
        () => got.every((b, i) => i === N - 1 || b.at(-1)!.at(-1)!.position === fifth),
        { timeoutMs: 20_000, everyMs: 20 },
      );
      for (let i = 0; i < N - 1; i++) expect(got[i]!.at(-1)!.map((e) => e.position)).toEqual([fifth]);
      for (const stop of stops) stop();
    } finally {
      hub.stop();
      client.disconnect();
    }
  });

  it('after a pass of 1 ms or more, waits as long (at most a slice) so that what is read meanwhile goes out in one write', async () => {
    const { client, hub, ws, append } = feed('api-live-pause');
    // The wait's duration, among every timer set meanwhile: in whole ms (see handBatches).
    const delays: number[] = [];
    const timer = vi.spyOn(globalThis, 'setTimeout');
    timer.mockImplementation(((fn: () => void, ms?: number) => {
      if (ms !== undefined && ms > 0) delays.push(ms);
      return realSetTimeout(fn, ms);
    }) as typeof setTimeout);
    try {
      const tail = await hub.get(ws);
      const N = 100;
      /** The first subscriber's batches (their events' numbers) and when each pass began and ended. */
      const batches: number[][] = [];
      const passes: { began: number; ended: number }[] = [];
      for (let i = 0; i < N; i++)
        tail.subscribeBatches((batch) => {
          if (i === 0) {
            batches.push(batch.map((e) => (e.envelope.data as { n: number }).n));
            passes.push({ began: performance.now(), ended: Number.NaN });
            // Read while this pass goes on: handed after it, together.
            if (batches.length === 1) void Promise.all([append(2), append(3)]);
          }
          busy(0.03); // 100 subscribers: a pass of 3 ms or more
          if (i === N - 1) passes.at(-1)!.ended = performance.now();
        });
      await append(1);
      await waitFor('the three events handed', () => batches.flat().length === 3, {
        timeoutMs: 5000,
        everyMs: 5,
      });
      expect(batches).toEqual([[1], [2, 3]]);
      const [first, second] = passes;
      expect(first!.ended - first!.began).toBeGreaterThanOrEqual(2.9);
      // The next pass waited as long as the first took, in whole ms, at most 4 (the slice). Node
      // counts a timer from its loop's clock in whole ms, so a wait of k ms can end after k - 1 and
      // a bit (measured: a 3-ms timer set at random fractions of a ms fired after 2.08 ms at least).
      const waitMs = Math.min(Math.round(first!.ended - first!.began), 4);
      expect(second!.began - first!.ended).toBeGreaterThanOrEqual(waitMs - 1);
      expect(delays.filter((ms) => ms >= 1 && ms <= 4).length).toBeGreaterThan(0);
      expect(delays.filter((ms) => !Number.isInteger(ms))).toEqual([]);
    } finally {
      timer.mockRestore();
      hub.stop();
      client.disconnect();
    }
  });
});
