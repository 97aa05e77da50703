/**
 * A live feed whose API instance lost its connections to Redis while the archiver trimmed past
 * its tail (a partition longer than the archive's retention, a stalled process whose sockets
 * Redis closed). On the reconnection the tail compares its position with the stream: the last
 * event it read was no longer there, and it took the archiver's trim for a Redis that lost
 * entries, moved every live feed back to the start of what the stream held and read on from
 * there, so the feeds missed the trimmed events with no error. A position the archiver's mark
 * covers was archived, not lost: the tail reads on after it, the trimmed events from the archive.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { WorkspaceTail } from '../../src/adapters/redis/tail.ts';
import { LogReader, refuseBreaks } from '../../src/archive/log-reader.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { archiveLog, logFields } from '../support/archive-log.ts';
import { comparePositions } from '../support/audit.ts';
import { killAllProcesses, type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

describe('a live feed on an instance whose connections closed while the archiver trimmed past its tail', () => {
  const suite = suiteRedis();
  const ws = `tail-reconnect-${Date.now().toString(36)}`;
  const k = workspaceKeys(ws);
  let dir: string;
  let api: SwitchboardProcess;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sb-tail-reconnect-'));
    api = await startProcess({
      roles: 'api',
      redis: suite.server,
      name: 'api',
      env: { WORKSPACES: ws, DISCOVER_WORKSPACES: 'false', ARCHIVE_DIR: dir },
    });
  }, 60_000);

  afterAll(async () => {
    api?.kill('SIGCONT');
    await killAllProcesses();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads the trimmed events from the archive, and no feed goes back to the start', async () => {
    const redis = suite.redis;
    const fields = await logFields(redis, `${ws}-source`, 7);
    const append = async (from: number, to: number) => {
      const m = redis.multi();
      for (let i = from; i < to; i++) m.xadd(k.events, '*', ...fields[i]!);
      await m.exec();
    };
    await append(0, 100);
    const first = ((await redis.xrange(k.events, '-', '+')) as StreamEntry[]).map((e) => e[0]);

    const received: string[] = [];
    const closes: number[] = [];
    const socket = new WebSocket(
      `${api.url!.replace('http', 'ws')}/v1/workspaces/${ws}/events/live?after=${first.at(-1)}`,
    );
    socket.on('close', (code) => closes.push(code));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.on('message', (data) => {
        const e = JSON.parse(String(data)) as { position?: string; heartbeat?: unknown };
        if ('heartbeat' in e) resolve();
        else received.push(e.position!);
      });
    });
    await sleep(200);

    // The instance stalls and Redis closes its connections; meanwhile 300 events are appended and
    // the archiver moves all but the newest 50 to the archive.
    api.kill('SIGSTOP');
    try {
      await suite.admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await append(100, 400);
      expect(await archiveLog(redis, new DiskArchive(dir), ws)).toBeGreaterThan(0);
      expect(await redis.xlen(k.events)).toBe(50);
    } finally {
      api.kill('SIGCONT');
    }
    const all = (await redis.xrange(k.events, '-', '+')) as StreamEntry[];
    const last = all.at(-1)![0];
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
    expect(comparePositions(received[0]!, first.at(-1)!)).toBeGreaterThan(0);
  }, 60_000);

  it("takes a position the archiver's mark covers for trimmed, not lost, when it compares on a reconnection", async () => {
    const redis = suite.redis;
    const wsq = `${ws}-q`;
    const kq = workspaceKeys(wsq);
    const fields = await logFields(redis, `${wsq}-source`, 8);
    const m = redis.multi();
    for (let i = 0; i < 100; i++) m.xadd(kq.events, '*', ...fields[i]!);
    await m.exec();
    const at = ((await redis.xrevrange(kq.events, '+', '-', 'COUNT', 1)) as StreamEntry[])[0]![0];
    // A tail that delivered up to `at`, then read nothing more (its connection closed).
    const tail = new WorkspaceTail(redis, wsq, pino({ level: 'silent' }));
    await tail.ready;
    tail.stop();
    const moved: string[] = [];
    tail.onResume((position) => moved.push(position));
    const more = redis.multi();
    for (let i = 100; i < 400; i++) more.xadd(kq.events, '*', ...fields[i]!);
    await more.exec();
    expect(await archiveLog(redis, new DiskArchive(dir), wsq)).toBeGreaterThan(0);
    expect(await redis.xlen(kq.events)).toBe(50);
    // The look a reconnection takes (run beside the tail's next read, which may come after it).
    await (tail as unknown as { realign(): Promise<void> }).realign();
    expect(tail.eventPosition, 'where the tail reads on').toBe(at);
    expect(moved, 'feeds moved back').toEqual([]);
  });

  it('moves a lost position back to the newest event it delivered that the log holds, the archive included', async () => {
    const redis = suite.redis;
    const wsl = `${ws}-l`;
    const kl = workspaceKeys(wsl);
    const fields = await logFields(redis, `${wsl}-source`, 9);
    const base = Date.now();
    const add = async (from: number, to: number, shift = 0) => {
      const m = redis.multi();
      for (let i = from; i <= to; i++)
        m.xadd(kl.events, `${base}-${i}`, ...fields[(i + shift) % fields.length]!);
      await m.exec();
    };
    await add(1, 94);
    const at = `${base}-100`;
    const store = new DiskArchive(dir);
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
