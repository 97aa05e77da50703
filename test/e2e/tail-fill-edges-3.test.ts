/**
 * A live tail filling what the archiver trimmed past it (its reads held while events were appended
 * and moved out of Redis) reads the archive page by page. The fill ran inside the tail's loop, so
 * the outcome read in the same turn waited for it, and so did every read after: a command waiting
 * for its outcome on this instance waited as long as the fill (seconds for a long partition's
 * events), and was answered 202 when its wait ran out. The fill runs beside the loop: the outcomes
 * go on being read and handed to their waiters while it runs, and the live events go out as
 * before, the filled ones first, in order, none twice.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { WorkspaceTail } from '../../src/adapters/redis/tail.ts';
import { LogReader, refuseBreaks } from '../../src/archive/log-reader.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { archiveLog, logFields } from '../support/archive-log.ts';
import { suiteRedis } from '../support/redis.ts';
import { appendFields, streamPositions } from '../support/stalled-tail.ts';
import { sleep, waitFor } from '../support/wait.ts';

/** How long each page of the archive takes to read here: a long fill (a slow disk, a long gap). */
const PAGE_MS = 1500;

describe('an outcome appended while the live tail fills trimmed events from the archive', () => {
  const suite = suiteRedis();
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sb-tail-fill-wait-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reaches its waiting command at once, not after the fill; the feed gets every event once, in order', async () => {
    const redis = suite.redis;
    const ws = `tail-fill-wait-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const fields = await logFields(redis, `${ws}-source`, 12);
    const before = await appendFields(redis, k.events, fields, 0, 100);
    const store = new DiskArchive(dir);
    const pages: string[] = [];
    const history = async (w: string, after: string, limit: number) => {
      pages.push(after);
      const page = await new LogReader(redis, store, w, 'events', {
        after,
        pageSize: limit,
        onBreak: refuseBreaks(store, w),
      }).next('+');
      await sleep(PAGE_MS);
      return page;
    };
    const tail = new WorkspaceTail(redis, ws, pino({ level: 'silent' }), history);
    try {
      await tail.ready;
      expect(tail.eventPosition).toBe(before.at(-1));
      const got: string[] = [];
      tail.subscribeBatches((events) => got.push(...events.map((e) => e.position)));
      await sleep(100);
      // The tail's replies are held (its connection's socket reads nothing) while 3,000 events are
      // appended and the archiver moves all but the newest 50 out of Redis: its first read gives
      // the first 1,000, the next one starts after a hole the archive fills.
      const socket = (tail as unknown as { conn: Redis }).conn.stream;
      socket.pause();
      const appended = await appendFields(redis, k.events, fields, 100, 3100);
      expect(await archiveLog(redis, store, ws)).toBeGreaterThan(0);
      expect(await redis.xlen(k.events)).toBe(50);
      socket.resume();
      await waitFor('the fill to begin', () => pages.length > 0, { timeoutMs: 10_000, everyMs: 10 });

      const wait = tail.waitOutcome('c-during-fill', 10_000);
      const t0 = performance.now();
      const outcome = { status: 201, body: { id: 'x' } };
      await redis.xadd(
        k.outcomes,
        '*',
        'commandId',
        'c-during-fill',
        'outcome',
        JSON.stringify(outcome),
        'position',
        appended.at(-1)!,
      );
      expect(await wait.promise).toEqual(outcome);
      const took = performance.now() - t0;
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
      expect(await streamPositions(redis, k.events)).toContain(more.at(-1));
    } finally {
      tail.stop();
    }
  }, 60_000);
});
