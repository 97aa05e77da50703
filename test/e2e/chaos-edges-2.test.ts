/**
 * A live feed whose API instance stalled while the archiver trimmed past it. The instance's tail
 * reads the event stream after the last event it read; an instance held still (SIGSTOP, a long
 * pause of its process) while events were appended and the archiver moved them out of Redis
 * read on after its position from what the stream still held: the events trimmed meanwhile
 * reached none of its live feeds, which went on with no error, a hole in them (a chaos run's
 * follower missed one AssignmentMade). Now the tail reads what was trimmed past its position from
 * the archive before what it read from the stream: every feed gets every event, once, in order.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { archiveLog, logFields } from '../support/archive-log.ts';
import { comparePositions } from '../support/audit.ts';
import { killAllProcesses, type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

describe('a live feed on an instance that stalled while the archiver trimmed past its tail', () => {
  const suite = suiteRedis();
  const ws = `chaos-trim-${Date.now().toString(36)}`;
  const k = workspaceKeys(ws);
  let dir: string;
  let api: SwitchboardProcess;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sb-chaos-trim-'));
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

  it('sends every event, the trimmed ones from the archive, once and in order', async () => {
    const redis = suite.redis;
    // 400 events of a log made through the Lua steps, given again in this workspace.
    const fields = await logFields(redis, `${ws}-source`, 7);
    const append = async (from: number, to: number) => {
      const m = redis.multi();
      for (let i = from; i < to; i++) m.xadd(k.events, '*', ...fields[i]!);
      await m.exec();
    };
    await append(0, 100);
    const first = ((await redis.xrange(k.events, '-', '+')) as StreamEntry[]).map((e) => e[0]);

    // A feed from the last of them: nothing to replay, then live from the instance's tail.
    const received: string[] = [];
    const socket = new WebSocket(
      `${api.url!.replace('http', 'ws')}/v1/workspaces/${ws}/events/live?after=${first.at(-1)}`,
    );
    const opened = new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.on('message', (data) => {
        const e = JSON.parse(String(data)) as { position?: string; heartbeat?: unknown };
        if ('heartbeat' in e) resolve();
        else received.push(e.position!);
      });
    });
    await opened;
    await sleep(200);

    // The instance stalls; meanwhile 300 events are appended (the first alone: Redis answers the
    // tail's waiting read with it, into the stalled socket) and the archiver moves all but the
    // newest 50 of the stream to the archive (segments of 100).
    api.kill('SIGSTOP');
    try {
      await append(100, 101);
      await append(101, 400);
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
    socket.close();
    expect(received, 'events the feed sent after the stall').toHaveLength(300);
    expect(new Set(received).size).toBe(300);
    expect([...received].sort(comparePositions)).toEqual(received);
  }, 60_000);
});
