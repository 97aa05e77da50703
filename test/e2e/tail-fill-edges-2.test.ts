/**
 * A live feed whose API instance lost its connections to Redis while the archiver trimmed past
 * its tail (a partition longer than the archive's retention, a stalled process whose sockets
 * Redis closed). On the reconnection the tail compares its position with the stream: the last
 * event it read was no longer there, and it took the archiver's trim for a Redis that lost
 * entries, moved every live feed back to the start of what the stream held and read on from
 * there, so the feeds missed the trimmed events with no error. A position the archiver's mark
 * covers was archived, not lost: the tail reads on after it, the trimmed events from the archive.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { WorkspaceTail } from '../../src/adapters/redis/tail.ts';
import { LogReader, refuseBreaks } from '../../src/archive/log-reader.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { archiveLog, logFields } from '../support/archive-log.ts';
import { comparePositions } from '../support/audit.ts';
import { appendFields, feedAcrossStall, stalledApiSuite } from '../support/stalled-tail.ts';
import { sleep, waitFor } from '../support/wait.ts';

describe('a live feed on an instance whose connections closed while the archiver trimmed past its tail', () => {
  const t = stalledApiSuite('tail-reconnect');
  const { suite, ws, k } = t;

  /** A workspace `<ws>-<suffix>` beside the instance's, and the fields of a log made with `seed`. */
  async function sideWorkspace(suffix: string, seed: number) {
    const side = `${ws}-${suffix}`;
    return { side, keys: workspaceKeys(side), fields: await logFields(suite.redis, `${side}-source`, seed) };
  }

  it('reads the trimmed events from the archive, and no feed goes back to the start', async () => {
    const { api, dir } = t;
    const redis = suite.redis;
    const fields = await logFields(redis, `${ws}-source`, 7);
    // A feed after the first 100 events. The instance stalls and Redis closes its connections;
    // meanwhile 300 events are appended and the archiver moves all but the newest 50 to the archive.
    const { feed, after, last } = await feedAcrossStall(redis, api, ws, fields, async (append) => {
      await suite.admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await append(100, 400);
      expect(await archiveLog(redis, new DiskArchive(dir), ws)).toBeGreaterThan(0);
      expect(await redis.xlen(k.events)).toBe(50);
    });
    const { socket, received, closes } = feed;
    await waitFor('the feed to reach the last event', () => received.at(-1) === last, {
      timeoutMs: 15_000,
      everyMs: 50,
    }).catch(() => {});
    await sleep(300);
    socket.close();
    expect(closes, 'the feed closed by the server').toEqual([]);
    expect(received, 'events the feed sent after the stall').toHaveLength(300);
    expect(new Set(received).size).toBe(300);
    expect([...received].sort(comparePositions)).toEqual(received);
    expect(comparePositions(received[0]!, after)).toBeGreaterThan(0);
  }, 60_000);

  it("takes a position the archiver's mark covers for trimmed, not lost, when it compares on a reconnection", async () => {
    const redis = suite.redis;
    const { side: wsq, keys: kq, fields } = await sideWorkspace('q', 8);
    await appendFields(redis, kq.events, fields, 0, 100);
    const at = ((await redis.xrevrange(kq.events, '+', '-', 'COUNT', 1)) as StreamEntry[])[0]![0];
    // A tail that delivered up to `at`, then read nothing more (its connection closed).
    const tail = new WorkspaceTail(redis, wsq, pino({ level: 'silent' }));
    await tail.ready;
    tail.stop();
    const moved: string[] = [];
    tail.onResume((position) => moved.push(position));
    await appendFields(redis, kq.events, fields, 100, 400);
    expect(await archiveLog(redis, new DiskArchive(t.dir), wsq)).toBeGreaterThan(0);
    expect(await redis.xlen(kq.events)).toBe(50);
    // The look a reconnection takes (run beside the tail's next read, which may come after it).
    await (tail as unknown as { realign(): Promise<void> }).realign();
    expect(tail.eventPosition, 'where the tail reads on').toBe(at);
    expect(moved, 'feeds moved back').toEqual([]);
  });

  it('moves a lost position back to the newest event it delivered that the log holds, the archive included', async () => {
    const redis = suite.redis;
    const { side: wsl, keys: kl, fields } = await sideWorkspace('l', 9);
    const base = Date.now();
    const add = async (from: number, to: number, shift = 0) => {
      const m = redis.multi();
      for (let i = from; i <= to; i++)
        m.xadd(kl.events, `${base}-${i}`, ...fields[(i + shift) % fields.length]!);
      await m.exec();
    };
    await add(1, 94);
    const at = `${base}-100`;
    const store = new DiskArchive(t.dir);
    const history = (w: string, after: string, limit: number) =>
      new LogReader(redis, store, w, 'events', {
        after,
        pageSize: limit,
        onBreak: refuseBreaks(store, w),
      }).next('+');
    const tail = new WorkspaceTail(redis, wsl, pino({ level: 'silent' }), history);
    await tail.ready;
    // It delivers 95 to 100 as they come.
    await add(95, 100);
    await waitFor('the tail at 100', () => tail.eventPosition === at);
    tail.stop();
    const moved: string[] = [];
    tail.onResume((position) => moved.push(position));
    // Redis comes back from a copy that ends at 99, its clock behind: a new entry at 100, and on;
    // the archiver then moves the new history out of Redis, all but the newest 50.
    await redis.del(kl.events);
    await add(1, 99);
    await add(100, 400, 7);
    expect(await archiveLog(redis, store, wsl)).toBeGreaterThan(0);
    expect(await redis.xlen(kl.events)).toBe(50);
    await (tail as unknown as { realign(): Promise<void> }).realign();
    // Back to the newest event it delivered that the log still holds (99, in the archive now):
    // the next read fills the new 100 on from the archive.
    expect(moved, 'feeds moved back').toEqual([`${base}-99`]);
    expect(tail.eventPosition).toBe(`${base}-99`);
  });
});
