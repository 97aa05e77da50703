/**
 * The dispatcher's alarm is set by two paths that run side by side: a dispatch step (after an
 * offer, for its expiry) and the clock step, which reads the next due time, then may read Redis's
 * clock again (`await`) before it sets the alarm. An offer made in that gap set an earlier alarm,
 * and the clock's older due time then replaced it: the offer expired late (until that older due
 * time, or the next BZPOPMIN timeout, up to wakeTimeoutS).
 *
 * A real Dispatcher on a real Redis. Its reads of Redis's clock fail (the test sends their TIME
 * with an argument, which Redis refuses), so every clock step reads the clock again (as it does
 * once a minute otherwise; the offset stays 0, right for a Redis on this host). One such read is
 * held back (its send waits for the test) while the offer is made: the interleaving happens in
 * that order every time.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Dispatcher } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { plainSettings } from '../support/positions.ts';
import { suiteRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

describe("the dispatcher's alarm", () => {
  const suite = suiteRedis();

  // The hook is on the single client's one connection, and CLIENT LIST on its one server: the
  // single target only (vitest.config.ts).
  it('an offer made while a clock step reads the clock still expires on time', async () => {
    const ws = `alarm-race-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const send = async (...commands: Command[]) => {
      for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
      await projectPending(suite.redis, ws);
    };
    await ensureGroup(suite.redis, ws);
    await send(
      plainSettings({ offerTimeoutMs: 200 }),
      { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
    );

    const redis = suite.server.client();

    // The dispatcher's reads of Redis's clock (a pipeline: EXISTS, TIME) are refused by Redis;
    // while `hold` is set, the next one waits for `release` before it is sent.
    let hold = false;
    let held = false;
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    interface Pipe {
      call(command: string, ...args: unknown[]): Pipe;
      exec(...e: unknown[]): Promise<unknown>;
    }
    const plain = redis as unknown as { pipeline(...a: unknown[]): Pipe };
    const pipeline = plain.pipeline.bind(plain);
    plain.pipeline = (...a) => {
      const p = pipeline(...a);
      const call = p.call.bind(p);
      const exec = p.exec.bind(p);
      p.call = (command, ...args) =>
        command.toLowerCase() === 'time' ? call('TIME', 'refused') : call(command, ...args);
      p.exec = async (...e) => {
        if (hold) {
          hold = false;
          held = true;
          await released;
        }
        return exec(...e);
      };
      return p;
    };

    const dispatcher = new Dispatcher(redis, pino({ level: 'silent' }));
    let running = true;
    const loop = dispatcher.run(ws, () => running);
    try {
      // The loop is blocked on its wake set (the only blocked client of this suite's Redis).
      await waitFor(
        'the dispatcher blocks',
        async () =>
          String(await suite.admin.call('CLIENT', 'LIST'))
            .split('\n')
            .some((l) => l.includes('cmd=bzpopmin')),
        { everyMs: 10 },
      );
      // A timer due now and one in 1.5 s: the clock step fires the first, reads the second as the
      // next due time, and its read of Redis's clock is held.
      const [s, us] = await suite.redis.time();
      const now = Number(s) * 1000 + Math.floor(Number(us) / 1000);
      hold = true;
      await suite.redis.zadd(k.timers, now - 1, 'm|nobody|0', now + 1500, 'm|nobody|1');
      await suite.redis.zadd(k.wake, 0, 'w');
      await waitFor('the clock step reads the clock', () => held, { everyMs: 5 });

      // Meanwhile a contact is offered to ana: its offer expires in 200 ms.
      await send({ type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0 });
      await waitFor('the offer', () => dispatcher.assignments === 1, { everyMs: 5 });
      const expiresAt = Number(await suite.redis.zscore(k.timers, 'o|c1|1'));
      expect(expiresAt).toBeGreaterThan(now);
      release();

      const fired = await waitFor(
        'the offer expired',
        async () => {
          const entries = (await suite.redis.xrange(k.commands, '-', '+')) as [string, string[]][];
          const hit = entries.find(([, fields]) => fields.includes('ExpireOffer'));
          return hit?.[0];
        },
        { timeoutMs: 8000, everyMs: 10 },
      );
      const lateMs = Number(fired.split('-')[0]) - expiresAt;
      expect(held, 'the clock step read the clock while the offer was made').toBe(true);
      expect(lateMs).toBeGreaterThanOrEqual(0);
      expect(lateMs, 'ms the offer expired after its due time').toBeLessThan(250);
    } finally {
      running = false;
      release();
      dispatcher.interrupt(ws);
      await loop;
      redis.disconnect();
    }
  });
});
