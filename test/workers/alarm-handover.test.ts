/**
 * A dispatcher loop that ends (its lease lapsed or handed back, its process stopping) after it
 * made an offer held the offer's alarm alone: the dispatch step adds the offer's timer and wakes
 * nobody, and the loop's end cleared the alarm. Another dispatcher already blocked on the
 * workspace's wake set (two holders overlap while a lapsed lease is found out, or a surplus lease
 * is handed back before its loop is interrupted) heard of the timer only at its BZPOPMIN timeout
 * (wakeTimeoutS, 5 s): the offer expired seconds late. A loop that ends with a timer pending (an
 * alarm set, or a due time its last step read while the loop was already ending) wakes the
 * workspace, so the next holder reads the timer and sets its own.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Dispatcher } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup } from '../../src/projections/projector.ts';
import { plainSettings } from '../support/positions.ts';
import { sendProjected } from '../support/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

describe("an offer's alarm when the loop that made it ends", () => {
  const suite = suiteRedis();

  // Counts the blocked clients of the suite's one server: the single target only (vitest.config.ts).
  it.each([
    ['blocked on its wake set when it is ended', false],
    ['ending while the step that made the offer runs (its alarm never set)', true],
  ])(
    'the dispatcher blocked beside it wakes and expires the offer on time: the loop %s',
    async (_, duringStep) => {
      const ws = `alarm-handover-${Date.now().toString(36)}`;
      const k = workspaceKeys(ws);
      const send = (...commands: Command[]) => sendProjected(suite.redis, ws, ...commands);
      await ensureGroup(suite.redis, ws);
      await send(
        plainSettings({ offerTimeoutMs: 1000 }),
        { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 1 },
        { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
      );
      const blocked = async () =>
        String(await suite.admin.call('CLIENT', 'LIST'))
          .split('\n')
          .filter((l) => l.includes('cmd=bzpopmin')).length;
      const base = await blocked();

      const log = pino({ level: 'silent' });
      const loops = [new Dispatcher(suite.redis, log), new Dispatcher(suite.redis, log)].map((d) => {
        const state = { running: true, d, done: Promise.resolve() };
        // During the step: the loop is over for it once that step has made an offer, as when its
        // lease went while the step ran.
        state.done = d.run(ws, () => state.running && !(duringStep && d.assignments > 0));
        return state;
      });
      try {
        await waitFor('both dispatchers block', async () => (await blocked()) === base + 2, { everyMs: 10 });
        await send({ type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0 });
        const maker = await waitFor('the offer', () => loops.find((l) => l.d.assignments === 1), {
          everyMs: 5,
        });
        const expiresAt = Number(await suite.redis.zscore(k.timers, 'o|c1|1'));
        expect(expiresAt).toBeGreaterThan(0);
        // The loop that made it ends (its lease gone), the other still blocked on the wake set.
        maker.running = false;
        maker.d.interrupt(ws);
        await maker.done;

        const fired = await waitFor(
          'the offer expired',
          async () => {
            const entries = (await suite.redis.xrange(k.commands, '-', '+')) as [string, string[]][];
            return entries.find(([, fields]) => fields.includes('ExpireOffer'))?.[0];
          },
          { timeoutMs: 10_000, everyMs: 10 },
        );
        const lateMs = Number(fired.split('-')[0]) - expiresAt;
        expect(lateMs).toBeGreaterThanOrEqual(0);
        expect(lateMs, 'ms the offer expired after its due time').toBeLessThan(500);
      } finally {
        for (const l of loops) {
          l.running = false;
          l.d.interrupt(ws);
        }
        await Promise.all(loops.map((l) => l.done));
      }
    },
  );
});
