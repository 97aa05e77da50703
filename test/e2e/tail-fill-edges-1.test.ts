/**
 * The live tail's fill from the archive (an API instance stalled while the archiver moved events
 * out of Redis past its tail). A user saw two things. A stall over a large gap had the tail read
 * the whole gap from the archive into memory and hand it out as one batch: a subscriber that read
 * nothing was written the whole gap, never closed with 1013 as the feed's limit promises. And a
 * fill the archive could not give (a segment missing) was only logged: the feeds went on with a
 * silent hole. Now the fill goes out page by page, each page a batch (a slow subscriber is closed
 * with 1013 as on any batch), and a fill the archive cannot give closes the feeds with 1011 naming
 * /problems/archive-unreadable and the position to reconnect after. A tail no feed subscribed to
 * read the whole gap all the same (outcomes waiting behind it, an error logged for feeds that did
 * not exist); now it reads none of it.
 */
import { readdir, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { DiskArchive, workspaceFolder } from '../../src/archive/store.ts';
import { logFields } from '../support/archive-log.ts';
import { comparePositions } from '../support/audit.ts';
import { killAllProcesses, type SwitchboardProcess } from '../support/processes.ts';
import { suiteRedis } from '../support/redis.ts';
import { feedAcrossStall, type LiveFeed, openLiveFeed, startArchivingApi } from '../support/stalled-tail.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';
import { sleep, waitFor } from '../support/wait.ts';

describe('the live tail filling from the archive what was trimmed past it', () => {
  const suite = suiteRedis();
  const tempDir = suiteTempDirs();
  let api: SwitchboardProcess | undefined;
  let n = 0;

  afterEach(async () => {
    api?.kill('SIGCONT');
    await killAllProcesses();
    api = undefined;
  });

  /** A counter of the API process's /metrics. */
  async function metric(name: string): Promise<number> {
    const text = await (await fetch(`${api!.url}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1]);
  }

  /**
   * An API instance on a new workspace and archive, `count` events (the fields of a log made
   * through the Lua steps, given again), a feed after the first 100; then the instance stalls
   * while the rest are appended and archived in segments of `segment`, the newest 50 kept in
   * Redis, and `whileStalled` runs before it goes on.
   */
  async function stalledFeed(
    count: number,
    segment: number,
    env: Record<string, string>,
    whileStalled: (eventsDir: string) => Promise<void> = async () => {},
    beforeStall: (feed: LiveFeed) => void = () => {},
  ) {
    const ws = `tail-fill-${++n}-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const dir = await tempDir('sb-tail-fill-');
    const started = await startArchivingApi(suite.server, ws, dir, env);
    api = started;
    const redis = suite.redis;
    const fields = await logFields(redis, `${ws}-source`, 11);
    const { feed, after, last } = await feedAcrossStall(
      redis,
      started,
      ws,
      fields,
      async (append) => {
        await append(100, 101);
        await append(101, count);
        const moved = await new Archiver(redis, new DiskArchive(dir), pino({ level: 'silent' }), {
          retention: { count: 50 },
          segmentEntries: segment,
          everyMs: 10,
        }).drain(ws);
        expect(moved).toBeGreaterThan(0);
        expect(await redis.xlen(k.events)).toBe(50);
        await whileStalled(path.join(dir, workspaceFolder(ws), 'events'));
      },
      beforeStall,
    );
    return { feed, last, afterFirst: after };
  }

  it('closes a subscriber that reads nothing with 1013 as the fill goes out, not after the whole gap', async () => {
    const count = 12_000;
    const { feed } = await stalledFeed(count, 1000, { LIVE_MAX_BUFFERED_BYTES: '65536' }, undefined, (f) => {
      // The client reads nothing: what the instance writes stays in its buffers.
      (f.socket as unknown as { _socket: Socket })._socket.pause();
    });
    // The client resumes once the instance closed the subscriber (no subscriber left) or handed out
    // the whole fill: a wait on the machine's speed alone resumed it early under load.
    const subscribed = async () => {
      const text = await (await fetch(`${api!.url}/metrics`)).text();
      return Number(/^switchboard_websocket_subscribers\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
    };
    await waitFor(
      'the subscriber closed or the whole fill handed out',
      async () =>
        (await subscribed()) === 0 || (await metric('switchboard_live_fill_events_total')) >= count - 150,
      { timeoutMs: 60_000 },
    );
    (feed.socket as unknown as { _socket: Socket })._socket.resume();
    const closed = await Promise.race([feed.closed, sleep(5000).then(() => undefined)]);
    feed.socket.terminate();
    expect(closed?.code, 'close code of the subscriber that read nothing').toBe(1013);
    expect(closed!.reason).toBe(`too slow; reconnect with after=${feed.received.at(-1)}`);
    expect(feed.received.length).toBeLessThan(count - 100);
    expect(new Set(feed.received).size).toBe(feed.received.length);
    expect([...feed.received].sort(comparePositions)).toEqual(feed.received);
  }, 90_000);

  it('sends a gap of several pages to a reading subscriber once, in order, with the live events after it', async () => {
    const count = 6_000;
    const { feed, last } = await stalledFeed(count, 1000, {});
    await waitFor('the feed to reach the last event', () => feed.received.at(-1) === last, {
      timeoutMs: 20_000,
      everyMs: 50,
    }).catch(() => {});
    feed.socket.close();
    expect(feed.received, 'events the feed sent after the stall').toHaveLength(count - 100);
    expect(new Set(feed.received).size).toBe(count - 100);
    expect([...feed.received].sort(comparePositions)).toEqual(feed.received);
    // Counted for the operator: all but the 50 the stream kept came from the archive (and the
    // first, when the tail's waiting read was answered with it into the stalled socket).
    const filled = await metric('switchboard_live_fill_events_total');
    expect(filled).toBeGreaterThanOrEqual(count - 151);
    expect(filled).toBeLessThanOrEqual(count - 150);
    expect(await metric('switchboard_live_fill_failures_total')).toBe(0);
  }, 90_000);

  it('closes the feed with 1011 naming archive-unreadable when the archive cannot give the fill', async () => {
    const { feed, afterFirst } = await stalledFeed(400, 100, {}, async (eventsDir) => {
      // The segment of events 200..299 goes missing.
      const files = (await readdir(eventsDir)).filter((f) => f.endsWith('.jsonl')).sort();
      expect(files.length).toBeGreaterThanOrEqual(3);
      await rm(path.join(eventsDir, files[2]!));
    });
    const closed = await Promise.race([feed.closed, sleep(15_000).then(() => undefined)]);
    feed.socket.terminate();
    expect(closed?.code, 'close code of the feed whose fill the archive cannot give').toBe(1011);
    expect(closed!.reason).toMatch(/^history unreadable from the archive \(\/problems\/archive-unreadable\)/);
    expect(await metric('switchboard_live_fill_failures_total')).toBe(1);
    // Nothing past the hole was sent: the feed stops at the last event before it (or where it was).
    const sent = feed.received.at(-1) ?? afterFirst;
    expect(feed.received.length).toBeLessThanOrEqual(100);
    expect([...feed.received].sort(comparePositions)).toEqual(feed.received);
    expect(comparePositions(sent, afterFirst)).toBeGreaterThanOrEqual(0);
    // Reconnecting after the last event it got meets the same hole in its replay, and says so.
    const again = await openLiveFeed(api!.url!, feed.ws, sent);
    const reclosed = await Promise.race([again.closed, sleep(15_000).then(() => undefined)]);
    again.socket.terminate();
    expect(reclosed?.code).toBe(1011);
    expect(reclosed!.reason).toMatch(
      /^history unreadable from the archive \(\/problems\/archive-unreadable\)/,
    );
    // What the reopened feed got before the hole follows on from the first feed's, none twice.
    const both = [...feed.received, ...again.received];
    expect(new Set(both).size).toBe(both.length);
    expect([...both].sort(comparePositions)).toEqual(both);
  }, 90_000);

  it('reads nothing from the archive for a tail no feed subscribes to', async () => {
    const { feed } = await stalledFeed(
      400,
      100,
      {},
      async (eventsDir) => {
        const files = (await readdir(eventsDir)).filter((f) => f.endsWith('.jsonl')).sort();
        await rm(path.join(eventsDir, files[2]!));
      },
      // The feed leaves before the stall: the tail runs on (it stops after minutes unused).
      (f) => f.socket.close(),
    );
    await feed.closed;
    // The tail reads on at once after the stall (a feed subscribing before that read answers would
    // be owed the fill): given time on a loaded machine.
    await sleep(2000);
    // A feed from the stream's end opens after the tail read on; nothing was owed to anyone.
    const later = await openLiveFeed(
      api!.url!,
      feed.ws,
      (await suite.redis.xrevrange(workspaceKeys(feed.ws).events, '+', '-', 'COUNT', 1))[0]![0],
    );
    await sleep(1000);
    later.socket.close();
    expect(api!.logText()).not.toMatch(/does not give them/);
  }, 90_000);
});
