/**
 * Hosts whose clocks differ, as real processes (test/support/clock-shift.mjs moves one process's
 * `Date.now()`): the registry of active workspaces (`sb:workspaces:active`, which workers discover
 * workspaces by) was scored by each host's own clock, the API's when it marked a command and the
 * worker's when it looked for the workspaces active in the last 10 minutes. An API host 20 minutes
 * behind the workers' (or workers 20 minutes ahead) marked every workspace as idle for 10 minutes
 * already: no worker took up a workspace its commands named, so nothing was projected or routed
 * (each command answered `202` and never applied). An API host ahead kept its workspaces marked
 * active for as long as it was ahead. Now every mark and every read is by Redis's clock.
 */
import { SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { globalKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { clockShiftEnv } from '../support/clock-shift.ts';
import { type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const TWENTY_MINUTES = 20 * 60_000;

describe('workspaces are discovered whatever the hosts’ clocks', () => {
  let server: TestRedis;
  let redis: RedisClient;
  const started: SwitchboardProcess[] = [];
  const start = async (roles: string, shiftMs: number): Promise<SwitchboardProcess> => {
    const p = await startProcess({
      roles,
      redis: server,
      name: `${roles} ${shiftMs >= 0 ? '+' : ''}${shiftMs / 60_000} min`,
      env: clockShiftEnv(shiftMs),
    });
    started.push(p);
    return p;
  };
  const redisNow = async (): Promise<number> => {
    const [s, us] = await redis.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  };

  beforeAll(async () => {
    server = await startTestRedis();
    redis = server.client();
  });
  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop()));
    redis?.disconnect();
    await server?.stop();
  }, 30_000);

  /** An agent and a contact through `api`; resolves once the contact is assigned to the agent. */
  const routes = async (api: SwitchboardProcess, ws: string, logs: () => string): Promise<void> => {
    const client = new SwitchboardClient({ url: api.url!, workspace: ws, retries: 0 });
    await client.registerAgent({ id: 'a1', skills: ['English'] });
    await client.setAgentState('a1', 'available');
    await client.queueContact({ id: 'c1', skills: ['English'] });
    await waitFor(
      `contact c1 of ${ws} to be assigned (the workspace served by the worker)\n${logs()}`,
      async () => {
        const c = await client.getContact('c1').catch(() => undefined);
        return c?.state === 'assigned';
      },
      { timeoutMs: 15_000, everyMs: 100 },
    );
  };

  it('an API host 20 minutes behind the worker’s: its workspace is served', async () => {
    const worker = await start('projector,dispatcher', 0);
    const api = await start('api', -TWENTY_MINUTES);
    const ws = 'clocks-api-behind';
    try {
      await routes(api, ws, () => `${api.logText()}\n${worker.logText()}`);
      // Marked by Redis's clock, not the API host's.
      const score = Number(await redis.zscore(globalKeys.activeWorkspaces, ws));
      expect(Math.abs(score - (await redisNow()))).toBeLessThan(60_000);
    } finally {
      await Promise.all([api.stop(), worker.stop()]);
    }
  }, 60_000);

  it('a worker host 20 minutes ahead of the API’s: the workspace is served', async () => {
    const worker = await start('projector,dispatcher', TWENTY_MINUTES);
    const api = await start('api', 0);
    try {
      await routes(api, 'clocks-worker-ahead', () => `${api.logText()}\n${worker.logText()}`);
    } finally {
      await Promise.all([api.stop(), worker.stop()]);
    }
  }, 60_000);

  it('an API host 20 minutes ahead: its mark is Redis’s time, not 20 minutes on', async () => {
    const worker = await start('projector,dispatcher', 0);
    const api = await start('api', TWENTY_MINUTES);
    const ws = 'clocks-api-ahead';
    try {
      await routes(api, ws, () => `${api.logText()}\n${worker.logText()}`);
      const score = Number(await redis.zscore(globalKeys.activeWorkspaces, ws));
      expect(score - (await redisNow())).toBeLessThan(60_000);
    } finally {
      await Promise.all([api.stop(), worker.stop()]);
    }
  }, 60_000);
});
