/**
 * A live feed whose API instance stalled while the archiver trimmed past it. The instance's tail
 * reads the event stream after the last event it read; an instance held still (SIGSTOP, a long
 * pause of its process) while events were appended and the archiver moved them out of Redis
 * read on after its position from what the stream still held: the events trimmed meanwhile
 * reached none of its live feeds, which went on with no error, a hole in them (a chaos run's
 * follower missed one AssignmentMade). Now the tail reads what was trimmed past its position from
 * the archive before what it read from the stream: every feed gets every event, once, in order.
 */
import { describe, expect, it } from 'vitest';
import { DiskArchive } from '../../src/archive/store.ts';
import { archiveLog, logFields } from '../support/archive-log.ts';
import { comparePositions } from '../support/audit.ts';
import { feedAcrossStall, stalledApiSuite } from '../support/stalled-tail.ts';
import { waitFor } from '../support/wait.ts';

describe('a live feed on an instance that stalled while the archiver trimmed past its tail', () => {
  const t = stalledApiSuite('chaos-trim');
  const { suite, ws, k } = t;

  it('sends every event, the trimmed ones from the archive, once and in order', async () => {
    const { api, dir } = t;
    const redis = suite.redis;
    // 400 events of a log made through the Lua steps, given again in this workspace; a feed from
    // the 100th: nothing to replay, then live from the instance's tail.
    const fields = await logFields(redis, `${ws}-source`, 7);
    // The instance stalls; meanwhile 300 events are appended (the first alone: Redis answers the
    // tail's waiting read with it, into the stalled socket) and the archiver moves all but the
    // newest 50 of the stream to the archive (segments of 100).
    const { feed, last } = await feedAcrossStall(redis, api, ws, fields, async (append) => {
      await append(100, 101);
      await append(101, 400);
      expect(await archiveLog(redis, new DiskArchive(dir), ws)).toBeGreaterThan(0);
      expect(await redis.xlen(k.events)).toBe(50);
    });
    const { socket, received } = feed;
    await waitFor('the feed to reach the last event', () => received.at(-1) === last, {
      timeoutMs: 15_000,
      everyMs: 50,
    }).catch(() => {});
    socket.close();
    expect(received, 'events the feed sent after the stall').toHaveLength(300);
    expect(new Set(received).size).toBe(300);
    expect([...received].sort(comparePositions)).toEqual(received);
  }, 60_000);
});
