/**
 * The dispatcher's clock step runs when a timer is due, not after every wake-up: the dispatch
 * step reports the earliest timer, and the dispatcher sets its alarm by it. A real Switchboard of
 * every role on a real Redis; Lua steps counted from SLOWLOG.
 */
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { scriptCalls, startScriptTiming } from '../../src/cli/bench/redis-time.ts';
import { Dispatcher } from '../../src/dispatcher/dispatcher.ts';
import { inProcessApi } from '../support/api.ts';
import { sleep } from '../support/wait.ts';

const WS = 'clock-steps';
const api = inProcessApi([WS]);
const post = (path: string, payload?: unknown) => api.ok('POST', WS, path, payload);

describe('the clock step', () => {
  it('does not run after wake-ups with no timer due, and still fires a timer on time', async () => {
    const admin = api.server.adminClient();
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
        await api.until(WS, `/contacts/c${i}`, (c) => c.state === 'assigned', 10_000);
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
      const expired = await api.until(WS, '/contacts/waits', (c) => c.state === 'expired', 5000);
      const queuedAt = Date.parse(String(queued.queuedAt));
      const endedAt = Date.parse(String(expired.expiredAt ?? expired.endedAt));
      console.log(JSON.stringify({ dispatches, clocks, expiredAfterMs: endedAt - queuedAt }));
      expect(endedAt - queuedAt).toBeGreaterThanOrEqual(300);
      expect(endedAt - queuedAt).toBeLessThan(1500);
    } finally {
      admin.disconnect();
    }
  });
});

/**
 * Timers are due by Redis's clock (the steps read TIME); a dispatcher host's clock may be off by
 * seconds. Its alarm must wait for Redis's time, not its own: ahead, it would wake its loop again
 * and again until Redis's clock reached the due time (a dispatch and a clock step each time);
 * behind, the timer would fire that much late.
 */
describe('the clock on a host whose clock is off', () => {
  for (const skewMs of [2000, -1500])
    it(`fires a timer once, on Redis's time, with the host ${skewMs > 0 ? 'ahead' : 'behind'} by ${Math.abs(skewMs)} ms`, async () => {
      const ws = `clock-skew-${skewMs > 0 ? 'ahead' : 'behind'}`;
      const redis = api.server.client();
      const realNow = Date.now.bind(Date);
      const redisNow = async () => {
        const [s, us] = await redis.time();
        return Number(s) * 1000 + Math.floor(Number(us) / 1000);
      };
      const dispatcher = new Dispatcher(redis, pino({ level: 'silent' }));
      let steps = 0;
      dispatcher.observeStep = () => steps++;
      let running = true;
      const now = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + skewMs);
      try {
        const due = (await redisNow()) + 800;
        await redis.zadd(workspaceKeys(ws).timers, due, 'm|nobody|1');
        const loop = dispatcher.run(ws, () => running);
        let firedAt: number | undefined;
        while (firedAt === undefined && (await redisNow()) < due + 4000) {
          if (dispatcher.timersFired > 0) firedAt = await redisNow();
          else await sleep(10);
        }
        running = false;
        dispatcher.interrupt(ws);
        await loop;
        console.log(JSON.stringify({ skewMs, steps, lateMs: firedAt === undefined ? null : firedAt - due }));
        expect(dispatcher.timersFired).toBe(1);
        expect(firedAt! - due, 'fired on time by Redis').toBeLessThan(400);
        expect(steps, 'dispatch steps while the timer waited').toBeLessThanOrEqual(4);
      } finally {
        now.mockRestore();
        running = false;
        redis.disconnect();
      }
    });
});
