import type { Cluster } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { globalKeys, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { TailHub } from '../../src/adapters/redis/tail.ts';
import { WorkspaceRunner } from '../../src/app/workspace-runner.ts';
import { Dispatcher } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

const log = pino({ level: 'silent' });

describe('idle workspaces are let go and come back with their next command', () => {
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

  it('a worker loop ends when its workspace goes idle and restarts on the next command', async () => {
    const ws = `idle-${Date.now()}`;
    const runs: string[] = [];
    let live = 0;
    const runner = new WorkspaceRunner(
      redis,
      {
        async run(workspace, running) {
          runs.push(workspace);
          live++;
          while (running()) await sleep(10);
          live--;
        },
      },
      log,
      { workspaces: [], discover: true, discoverEveryMs: 50, idleAfterMs: 600 },
    );
    runner.start();
    try {
      const queue: Command = { type: 'QueueContact', contactId: 'c1', skills: ['a'], priority: 0 };
      await appendCommand(redis, { workspace: ws, command: queue });
      await waitFor('the loop to start', () => runs.includes(ws) && live === 1, { everyMs: 20 });
      await waitFor('the loop to end once idle', () => live === 0, { timeoutMs: 3000, everyMs: 20 });
      expect(runner.workspaces()).not.toContain(ws);
      await sleep(1100); // appendCommand marks a workspace active at most once a second per process
      await appendCommand(redis, { workspace: ws, command: { ...queue, contactId: 'c2' } });
      await waitFor(
        'the loop to start again',
        () => runs.filter((w) => w === ws).length === 2 && live === 1,
        { everyMs: 20 },
      );
    } finally {
      await runner.stop();
    }
    expect(live).toBe(0);
  });

  it('a workspace with a timer pending is served until the timer has fired, however idle', async () => {
    // A contact waits at most 15 minutes, with no command for 10: its workspace (discovered, not
    // configured) must not be let go before its maximum wait has fired. Scaled down: idle after
    // 600 ms, the timer due in 1.5 s.
    const ws = `idle-timer-${Date.now()}`;
    const dispatcher = new Dispatcher(redis, log);
    const runner = new WorkspaceRunner(redis, dispatcher, log, {
      workspaces: [],
      discover: true,
      discoverEveryMs: 50,
      idleAfterMs: 600,
    });
    const [s, us] = await redis.time();
    const now = Number(s) * 1000 + Math.floor(Number(us) / 1000);
    await redis.zadd(workspaceKeys(ws).timers, now + 1500, 'm|c1|1');
    await redis.zadd(globalKeys.activeWorkspaces, Date.now(), ws); // its last command: now
    runner.start();
    try {
      await waitFor('the dispatcher to serve it', () => runner.serves(ws), { everyMs: 20 });
      await waitFor('the timer to fire', () => dispatcher.timersFired === 1, {
        timeoutMs: 4000,
        everyMs: 20,
      });
      expect(await redis.xlen(workspaceKeys(ws).commands)).toBe(1);
    } finally {
      await runner.stop();
    }
  });

  it('an event tail nobody uses is stopped, and starts again when asked for', async () => {
    const hub = new TailHub(redis, log, 200);
    try {
      const ws = `tail-${Date.now()}`;
      const t = await hub.get(ws);
      const unsubscribe = t.subscribe(() => {});
      await sleep(250);
      hub.sweep();
      expect(hub.running).toBe(1); // a subscriber keeps it
      unsubscribe();
      hub.sweep(Date.now() + 1000);
      expect(hub.running).toBe(0);
      expect(await hub.get(ws)).not.toBe(t);
      expect(hub.running).toBe(1);
    } finally {
      hub.stop();
    }
  });

  it('a tail still starting when its hub sweeps is not stopped: the one handed out runs and delivers', async () => {
    const hub = new TailHub(redis, log, 200);
    const admin = server.adminClient();
    try {
      const ws = `tail-slow-${Date.now()}`;
      // Redis stalled for 700 ms (every master of a cluster): the tail's first reads wait, and the
      // hub's sweeper (every 200 ms here) runs meanwhile, the tail still without a subscriber.
      const masters = 'nodes' in admin ? (admin as Cluster).nodes('master') : [admin];
      await Promise.all(masters.map((m) => m.call('CLIENT', 'PAUSE', '700', 'ALL')));
      const t = await hub.get(ws);
      expect(hub.running).toBe(1);
      const got: string[] = [];
      t.subscribe((e) => got.push(e.position));
      const at = await redis.xadd(workspaceKeys(ws).events, '*', 'type', 'AgentRegistered', 'data', '{}');
      await waitFor(`the event ${at} delivered by the tail handed out`, () => got.includes(at!), {
        timeoutMs: 3000,
        everyMs: 20,
      });
    } finally {
      hub.stop();
      admin.disconnect();
    }
  });
});
