/**
 * A dispatcher whose host clock jumps back (an NTP step, a VM resumed): the clock's alarm was set
 * by `Date.now()` plus the offset to Redis's clock read a minute earlier, so after a jump back of
 * 30 s every timer (offer expiry, wrap-up end, maximum wait) fired 30 s late until the next read.
 * Now the offset is carried forward by the monotonic clock (`performance.now()`), which no jump
 * moves. A real Dispatcher on a real Redis; the jump is this process's `Date.now()`.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Dispatcher } from '../../src/dispatcher/dispatcher.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

describe('timers fire on time when the host clock jumps', () => {
  const suite = suiteRedis();

  it('a jump back of 30 s does not make a timer 30 s late', async () => {
    const ws = 'clocks-jump';
    const k = workspaceKeys(ws);
    const dispatcher = new Dispatcher(suite.redis, pino({ level: 'silent' }));
    let running = true;
    const loop = dispatcher.run(ws, () => running);
    const realNow = Date.now;
    try {
      await sleep(300); // the loop has read Redis's clock
      Date.now = () => realNow() - 30_000;
      const [s, us] = await suite.redis.time();
      const due = Number(s) * 1000 + Math.floor(Number(us) / 1000) + 1000;
      await suite.redis.zadd(k.timers, due, 'm|nobody|1');
      await suite.redis.zadd(k.wake, 0, 'w'); // as the projector does when it adds a timer
      // By the monotonic clock: this process's Date.now() is off.
      const until = performance.now() + 8000;
      while (dispatcher.timersFired === 0 && performance.now() < until) await sleep(10);
      expect(dispatcher.timersFired, 'the timer fired within 8 s of a due time 1 s away').toBe(1);
      const [[id]] = (await suite.redis.xrange(k.commands, '-', '+')) as [[string, string[]]];
      const lateMs = Number(id.split('-')[0]) - due;
      expect(lateMs).toBeGreaterThanOrEqual(0);
      expect(lateMs, 'ms the timer fired after its due time').toBeLessThan(500);
    } finally {
      Date.now = realNow;
      running = false;
      dispatcher.interrupt(ws);
      await loop;
    }
  }, 30_000);
});
