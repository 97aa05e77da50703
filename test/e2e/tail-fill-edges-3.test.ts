/**
 * A live tail filling what the archiver trimmed past it (its reads held while events were appended
 * and moved out of Redis) reads the archive page by page. The fill ran inside the tail's loop, so
 * the outcome read in the same turn waited for it, and so did every read after: a command waiting
 * for its outcome on this instance waited as long as the fill (seconds for a long partition's
 * events), and was answered 202 when its wait ran out. The fill runs beside the loop: the outcomes
 * go on being read and handed to their waiters while it runs, and the live events go out as
 * before, the filled ones first, in order, none twice. Around it (a desk review of that change):
 * the look a position ahead of Redis's clock asks for waits for the fill too, instead of holding
 * the outcomes in the turn that started it; a fill whose archive read never answers leaves the
 * tail not `reading` (its feeds get no heartbeat, so their clients move to another instance), as
 * a loop held by it did; a fill that fails on its way is the loop's failure, not an unhandled
 * rejection.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventHistory } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { redisClockNow } from '../../src/adapters/redis/redis-clock.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { WorkspaceTail } from '../../src/adapters/redis/tail.ts';
import { LogReader, refuseBreaks } from '../../src/archive/log-reader.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { archiveLog, logFields } from '../support/archive-log.ts';
import { suiteRedis } from '../support/redis.ts';
import { appendFields } from '../support/stalled-tail.ts';
import { sleep, waitFor } from '../support/wait.ts';

/** How long each page of the archive takes to read here: a long fill (a slow disk, a long gap). */
const PAGE_MS = 2500;

describe('the live tail while it fills trimmed events from the archive', () => {
  const suite = suiteRedis();
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sb-tail-fill-wait-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * A tail of a new workspace (100 events in it) whose reads are held (its connection's socket
   * reads nothing) while 3,000 events are appended and the archiver moves all but the newest 50
   * out of Redis, then let go: its first read gives the next 1,000, the one after starts after a
   * hole that `history` (given the archive's reader) fills. `beforeRelease` runs while it is held.
   */
  async function heldAcrossTrim(
    name: string,
    history: (read: EventHistory) => EventHistory,
    beforeRelease: (
      k: ReturnType<typeof workspaceKeys>,
      tail: WorkspaceTail,
    ) => Promise<void> = async () => {},
  ) {
    const redis = suite.redis;
    const ws = `${name}-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const fields = await logFields(redis, `${ws}-source`, 12);
    await appendFields(redis, k.events, fields, 0, 100);
    const store = new DiskArchive(dir);
    const pages: string[] = [];
    const read: EventHistory = (w, after, limit) =>
      new LogReader(redis, store, w, 'events', {
        after,
        pageSize: limit,
        onBreak: refuseBreaks(store, w),
      }).next('+');
    const given = history(read);
    const counted: EventHistory = (w, after, limit) => {
      pages.push(after);
      return given(w, after, limit);
    };
    const tail = new WorkspaceTail(redis, ws, pino({ level: 'silent' }), counted);
    await tail.ready;
    const got: string[] = [];
    tail.subscribeBatches((events) => got.push(...events.map((e) => e.position)));
    await sleep(100);
    const socket = (tail as unknown as { conn: Redis }).conn.stream;
    socket.pause();
    const appended = await appendFields(redis, k.events, fields, 100, 3100);
    expect(await archiveLog(redis, store, ws)).toBeGreaterThan(0);
    expect(await redis.xlen(k.events)).toBe(50);
    await beforeRelease(k, tail);
    socket.resume();
    await waitFor('the fill to begin', () => pages.length > 0, { timeoutMs: 10_000, everyMs: 10 });
    return { redis, ws, k, fields, tail, got, pages, appended };
  }

  /** Appends an outcome for `commandId`; how long its waiter on `tail` waited, and what it got. */
  async function outcomeWait(tail: WorkspaceTail, redis: RedisClient, outcomes: string, commandId: string) {
    const wait = tail.waitOutcome(commandId, 10_000);
    const t0 = performance.now();
    const outcome = { status: 201, body: { id: commandId } };
    await redis.xadd(outcomes, '*', 'commandId', commandId, 'outcome', JSON.stringify(outcome));
    const got = await wait.promise;
    expect(got).toEqual(outcome);
    return performance.now() - t0;
  }

  /** An archive read that takes PAGE_MS a page. */
  const slow =
    (read: EventHistory): EventHistory =>
    async (w, after, limit) => {
      const page = await read(w, after, limit);
      await sleep(PAGE_MS);
      return page;
    };

  it.each([
    ['', false],
    [', a position read ahead of Redis clock (the look it asks for waits for the fill)', true],
  ])(
    'an outcome reaches its waiting command at once, not after the fill%s; the feed gets every event once, in order',
    async (_, ahead) => {
      const { redis, k, fields, tail, got, pages, appended } = await heldAcrossTrim(
        'tail-fill-wait',
        slow,
        async (keys) => {
          if (!ahead) return;
          // An outcome at a position a minute ahead of Redis's clock, read in the turn that starts
          // the fill (the clock read beforehand, as a running instance has).
          await redisClockNow(suite.redis, keys.events);
          await suite.redis.xadd(keys.outcomes, `${Date.now() + 60_000}-0`, 'position', '0-1');
        },
      );
      try {
        const took = await outcomeWait(tail, redis, k.outcomes, 'c-during-fill');
        expect(pages.length, 'the fill still reading its first page').toBe(1);
        expect(took, 'ms the outcome waited').toBeLessThan(PAGE_MS / 2);

        await waitFor('the feed to reach the last event', () => got.at(-1) === appended.at(-1), {
          timeoutMs: 20_000,
          everyMs: 20,
        });
        await sleep(200);
        expect(got).toEqual(appended);
        expect(pages.length, 'pages read from the archive').toBeGreaterThanOrEqual(2);
        // The tail reads on live after the fill.
        const more = await appendFields(redis, k.events, fields, 3100, 3105);
        await waitFor('the next events', () => got.at(-1) === more.at(-1), { timeoutMs: 5000, everyMs: 10 });
        expect(got.slice(appended.length)).toEqual(more);
      } finally {
        tail.stop();
      }
    },
    60_000,
  );

  it('an archive read that never answers: the tail is no longer reading after 10 s, its outcomes still reach their waiters', async () => {
    const { redis, k, tail, got } = await heldAcrossTrim('tail-fill-hang', () => () => new Promise(() => {}));
    try {
      expect(tail.reading).toBe(true);
      await waitFor('the tail not reading', () => !tail.reading, { timeoutMs: 15_000, everyMs: 100 });
      // Held by the fill, it would wait for ever (the fill never ends): 5 s is room for a loaded machine.
      expect(await outcomeWait(tail, redis, k.outcomes, 'c-hung-fill')).toBeLessThan(5000);
      // Nothing went out past the read before the fill: the feed waits, not skips.
      expect(got).toHaveLength(1000);
    } finally {
      tail.stop();
    }
  }, 60_000);

  it('a fill that fails on its way (a listener that throws) is logged and tried again, never an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    let reads = 0;
    let stopListening = () => {};
    const { tail } = await heldAcrossTrim(
      'tail-fill-throws',
      () => async () => {
        reads++;
        throw new Error('segment damaged');
      },
      async (_, t) => {
        stopListening = t.onFillFailed(() => {
          throw new Error('a listener that throws');
        });
      },
    );
    try {
      await waitFor('a second fill', () => reads >= 2, { timeoutMs: 10_000, everyMs: 20 });
      await sleep(300);
      expect(unhandled).toEqual([]);
    } finally {
      stopListening();
      tail.stop();
      process.off('unhandledRejection', onUnhandled);
    }
  }, 30_000);
});
