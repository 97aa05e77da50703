/**
 * A discovered workspace with a timer pending stays in the registry until that timer is due, so a
 * dispatcher started again after a stop longer than the idle window (10 minutes; scaled down here
 * to 600 ms) still serves it and fires the timer. Two ways the mark was lowered below the pending
 * timer's due time: a command appended meanwhile (the API marks the workspace active "now"), an
 * earlier timer of the same workspace (the dispatcher marked the earliest due time only, and
 * marked again only a minute later), and a timer added after the last mark (a stop marks again).
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { globalKeys, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { WorkspaceRunner } from '../../src/app/workspace-runner.ts';
import { Dispatcher } from '../../src/dispatcher/dispatcher.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

const log = pino({ level: 'silent' });
const IDLE_MS = 600;

describe('a timer pending across a dispatcher stop longer than the idle window', () => {
  let server: TestRedis;
  let redis: RedisClient;
  beforeAll(async () => {
    server = await startTestRedis();
    redis = server.client();
  });
  afterAll(async () => {
    redis.disconnect();
    await server.stop();
  });

  const redisNow = async (): Promise<number> => {
    const [s, us] = await redis.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  };
  const runnerOf = (dispatcher: Dispatcher): WorkspaceRunner =>
    new WorkspaceRunner(redis, dispatcher, log, {
      workspaces: [],
      discover: true,
      discoverEveryMs: 50,
      idleAfterMs: IDLE_MS,
    });

  /** `lower` runs while the first dispatcher serves `ws`; then it stops, and another starts later. */
  const firesAfterRestart = async (ws: string, lower: () => Promise<void>): Promise<void> => {
    const timers = workspaceKeys(ws).timers;
    const first = new Dispatcher(redis, log);
    const runner1 = runnerOf(first);
    runner1.start();
    try {
      await waitFor('the first dispatcher to serve it', () => runner1.serves(ws), { everyMs: 20 });
      await lower();
    } finally {
      await runner1.stop();
    }
    expect(await redis.zscore(timers, 'm|late|1')).not.toBeNull();
    // Stopped for longer than the idle window (10 minutes in production).
    await sleep(IDLE_MS + 300);
    const second = new Dispatcher(redis, log);
    const runner2 = runnerOf(second);
    runner2.start();
    try {
      await waitFor(
        'the restarted dispatcher to fire the pending timer',
        async () => (await redis.zscore(timers, 'm|late|1')) === null,
        { timeoutMs: 4000, everyMs: 20 },
      );
    } finally {
      await runner2.stop();
    }
    const fired = (await redis.xrange(workspaceKeys(ws).commands, '-', '+')).filter(([, f]) =>
      f.includes(`timer:m|late|1:${due.get(ws)}`),
    );
    expect(fired).toHaveLength(1);
  };
  const due = new Map<string, number>();

  it('a command appended meanwhile does not lower the mark below the pending timer', async () => {
    const ws = `timers-edges-cmd-${Date.now()}`;
    const at = (await redisNow()) + 2500;
    due.set(ws, at);
    await redis.zadd(workspaceKeys(ws).timers, at, 'm|late|1');
    await redis.zadd(globalKeys.activeWorkspaces, Date.now(), ws); // its last command: now
    await firesAfterRestart(ws, async () => {
      await sleep(100); // the dispatcher marked it until the timer's due time
      // Any command through the API marks the workspace active now.
      await appendCommand(redis, {
        workspace: ws,
        command: { type: 'RegisterAgent', agentId: 'a1', skills: ['A'], capacity: 1 },
      });
    });
  });

  it('an earlier timer of the workspace does not leave it marked only until that one', async () => {
    const ws = `timers-edges-two-${Date.now()}`;
    const now = await redisNow();
    due.set(ws, now + 2500);
    await redis.zadd(workspaceKeys(ws).timers, now + 150, 'm|soon|1', now + 2500, 'm|late|1');
    await redis.zadd(globalKeys.activeWorkspaces, Date.now(), ws);
    await firesAfterRestart(ws, async () => {
      await waitFor(
        'the earlier timer to fire',
        async () => (await redis.zscore(workspaceKeys(ws).timers, 'm|soon|1')) === null,
        { timeoutMs: 2000, everyMs: 20 },
      );
      await sleep(100);
    });
  });

  it('a timer added after the last mark is marked when the dispatcher stops', async () => {
    const ws = `timers-edges-stop-${Date.now()}`;
    const timers = workspaceKeys(ws).timers;
    const now = await redisNow();
    due.set(ws, now + 2500);
    await redis.zadd(timers, now + 300, 'm|soon|1');
    await redis.zadd(globalKeys.activeWorkspaces, Date.now(), ws);
    await firesAfterRestart(ws, async () => {
      await sleep(100); // marked until the one timer then (a mark a minute at most)
      // A contact queued meanwhile with a longer maximum wait (as the projector adds its timer).
      await redis.zadd(timers, now + 2500, 'm|late|1');
      await redis.zadd(workspaceKeys(ws).wake, 0, 'w');
      await waitFor(
        'the earlier timer to fire',
        async () => (await redis.zscore(timers, 'm|soon|1')) === null,
        {
          timeoutMs: 2000,
          everyMs: 20,
        },
      );
    });
  });
});
