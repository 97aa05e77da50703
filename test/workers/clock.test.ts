/**
 * The dispatcher's clock step runs when a timer is due, not after every wake-up: the dispatch
 * step reports the earliest timer, and the dispatcher sets its alarm by it. A real Switchboard of
 * every role on a real Redis; Lua steps counted from SLOWLOG.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { scriptCalls, startScriptTiming } from '../../src/cli/bench/redis-time.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = 'clock-steps';
let redis: TestRedis;
let running: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  running = await startSwitchboard(
    loadConfig({
      AUTH: 'off',
      ...redis.env,
      PORT: '0',
      LOG_LEVEL: 'silent',
      WORKSPACES: WS,
      DISCOVER_WORKSPACES: 'false',
    }),
    pino({ level: 'silent' }),
  );
  await projectorReady(running.redis, [WS]);
});

afterAll(async () => {
  await running?.stop();
  await redis?.stop();
});

const post = async (path: string, payload?: unknown) => {
  const r = await running.api!.inject({
    method: 'POST',
    url: `/v1/workspaces/${WS}${path}`,
    ...(payload !== undefined
      ? { headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) }
      : {}),
  });
  expect(r.statusCode, r.body).toBeLessThan(300);
  return r.json() as Record<string, unknown>;
};

describe('the clock step', () => {
  it('does not run after wake-ups with no timer due, and still fires a timer on time', async () => {
    const admin = redis.adminClient();
    try {
      await admin.ping(); // a cluster client knows its masters once connected
      await startScriptTiming(admin);
      for (let i = 0; i < 4; i++) {
        await post('/agents', { id: `a${i}`, skills: ['A'] });
        await post(`/agents/a${i}/state`, { state: 'available' });
      }
      // Twelve contacts assigned and completed, one at a time: a wake-up (or more) each.
      for (let i = 0; i < 12; i++) {
        await post('/contacts', { id: `c${i}`, skills: ['A'] });
        await waitFor(`c${i} assigned`, async () => {
          const r = await running.api!.inject({ method: 'GET', url: `/v1/workspaces/${WS}/contacts/c${i}` });
          return (r.json() as { state?: string }).state === 'assigned';
        });
        await post(`/contacts/c${i}/complete`);
      }
      await sleep(200);
      const steps = await scriptCalls(admin);
      const dispatches = steps.filter((c) => c.name === 'dispatch').length;
      const clocks = steps.filter((c) => c.name === 'clock').length;
      // One clock step per wake-up before (as many as the dispatch steps); now only the one a
      // dispatcher loop runs when it starts (an idle workspace's loop ends and starts again).
      expect(dispatches).toBeGreaterThanOrEqual(12);
      expect(clocks).toBeLessThanOrEqual(2);

      // A contact nobody can serve, waiting at most 300 ms: the alarm set from the dispatch
      // step's report fires its timer on time.
      const queued = await post('/contacts', { id: 'waits', skills: ['Nobody'], maxWaitMs: 300 });
      const expired = await waitFor(
        'the wait timer fired',
        async () => {
          const r = await running.api!.inject({ method: 'GET', url: `/v1/workspaces/${WS}/contacts/waits` });
          const c = r.json() as { state?: string; endedAt?: string; expiredAt?: string };
          return c.state === 'expired' ? c : undefined;
        },
        { timeoutMs: 5000 },
      );
      const queuedAt = Date.parse(String((queued as { queuedAt?: string }).queuedAt));
      const endedAt = Date.parse(String(expired.expiredAt ?? expired.endedAt));
      console.log(JSON.stringify({ dispatches, clocks, expiredAfterMs: endedAt - queuedAt }));
      expect(endedAt - queuedAt).toBeGreaterThanOrEqual(300);
      expect(endedAt - queuedAt).toBeLessThan(1500);
    } finally {
      admin.disconnect();
    }
  });
});
