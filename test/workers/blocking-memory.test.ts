/**
 * A blocking loop (the projector's, the dispatcher's, the interval projection's) keeps nothing of
 * the reads it has done while it runs: each read's reply is garbage once the loop has moved on.
 * Raced against the loop's stop as a promise that lives as long as the loop, every read left a
 * reaction on that promise holding its reply: a process that ran for an hour at 1,000 contacts/s
 * kept hundreds of MB. Real blocking reads on a real Redis, the replies watched by WeakRefs while
 * the loop still runs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockingLoops, pauseUnlessStopped, raceBlocking, STOPPED } from '../../src/adapters/redis/client.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { gc } from '../support/gc.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

const KEY = workspaceKeys('blocking-memory').events;
let redis: TestRedis;
let client: RedisClient;

beforeAll(async () => {
  redis = await startTestRedis();
  client = redis.client();
  await client.del(KEY);
  await client.xadd(KEY, '*', 'payload', 'x'.repeat(2000));
});

afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

describe('a blocking loop', () => {
  it('keeps no reply of the reads it has done while it runs', async () => {
    const loops = new BlockingLoops(client);
    const watched: WeakRef<object>[] = [];
    let held = -1;
    await loops.run('w', async (conn, stopped) => {
      for (let i = 0; i < 2000; i++) {
        // Answered at once (the stream has an entry after 0-0), as a busy workspace's reads are.
        const reply = await raceBlocking(
          conn.xread('COUNT', 1, 'BLOCK', 1000, 'STREAMS', KEY, '0-0'),
          stopped,
          6000,
        );
        expect(reply).not.toBe(STOPPED);
        if (i % 100 === 0) watched.push(new WeakRef(reply as object));
        // The interval projection's pause between reads, raced with the stop the same way.
        if (i % 100 === 0) expect(await pauseUnlessStopped(1, stopped)).toBeUndefined();
      }
      // Still inside the loop: its stop signal is live. WeakRefs let go at the end of a job.
      await sleep(10);
      gc();
      await sleep(10);
      gc();
      held = watched.filter((w) => w.deref() !== undefined).length;
    });
    expect(watched.length).toBe(20);
    expect(held, `${held} of ${watched.length} replies still held`).toBe(0);
  });

  it('is stopped at once in a blocking read and in a pause', async () => {
    const loops = new BlockingLoops(client);
    const read = loops.run('r', (conn, stopped) =>
      raceBlocking(conn.xread('BLOCK', 10_000, 'STREAMS', KEY, '$'), stopped, 15_000),
    );
    const paused = loops.run('p', (_conn, stopped) => pauseUnlessStopped(10_000, stopped));
    await sleep(100);
    const started = performance.now();
    loops.interrupt('r');
    loops.interrupt('p');
    expect(await read).toBe(STOPPED);
    expect(await paused).toBe(STOPPED);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
