/**
 * Reads that say how long something has waited, from API hosts whose clocks differ (as real
 * processes, test/support/clock-shift.mjs): a contact's `queuedAt` is Redis's clock (the step that
 * queued it read TIME), but `GET /stats` measured its `longestWaitMs` (and the 5-minute window)
 * against the answering host's clock. Behind a load balancer, an instance 20 minutes ahead answered
 * that a contact queued a moment ago had waited 20 minutes and counted nothing in the window (nor
 * did `GET /contacts/{id}`'s `estimatedWaitMs`), and one behind answered 0 for a long wait. Now
 * the reads measure by Redis's clock (src/adapters/redis/redis-clock.ts).
 */
import { SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clockShiftEnv } from '../support/clock-shift.ts';
import { type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const TWENTY_MINUTES = 20 * 60_000;
const ws = 'clocks-stats';

describe('waits read from API hosts whose clocks differ', () => {
  let server: TestRedis;
  const started: SwitchboardProcess[] = [];

  beforeAll(async () => {
    server = await startTestRedis();
    const shifts = [0, TWENTY_MINUTES, -TWENTY_MINUTES];
    started.push(
      ...(await Promise.all([
        startProcess({ roles: 'projector,dispatcher', redis: server, env: { WORKSPACES: ws } }),
        ...shifts.map((shift) =>
          startProcess({
            roles: 'api',
            redis: server,
            name: `api ${shift / 60_000} min`,
            env: clockShiftEnv(shift),
          }),
        ),
      ])),
    );
  }, 60_000);
  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop()));
    await server?.stop();
  }, 30_000);

  it('GET /stats answers the same wait, and the same window, from every instance', async () => {
    const apis = started.slice(1);
    const clients = apis.map((a) => new SwitchboardClient({ url: a.url!, workspace: ws, retries: 0 }));
    await clients[0]!.registerAgent({ id: 'a1', skills: ['English'] });
    await clients[0]!.setAgentState('a1', 'available');
    await clients[0]!.queueContact({ id: 'c1', skills: ['English'] });
    await clients[0]!.queueContact({ id: 'c2', skills: ['English'] });
    await waitFor('c1 assigned and c2 queued', async () => {
      const [c1, c2] = await Promise.all([clients[0]!.getContact('c1'), clients[0]!.getContact('c2')]);
      return c1.state === 'assigned' && c2.state === 'queued';
    });
    for (const [i, client] of clients.entries()) {
      const stats = await client.getStats();
      const what = `${apis[i]!.name}: ${JSON.stringify(stats)}`;
      // c2 was queued a moment ago, by Redis's clock.
      expect(stats.longestWaitMs, what).toBeLessThan(60_000);
      expect(stats.longestWaitMs, what).toBeGreaterThan(0);
      // c1's decision, a moment ago, counts in the 5-minute window.
      expect(stats.window.assignments, what).toBe(1);
      // c2's estimate, from its queue's service rate: one decision a moment ago.
      const c2 = (await client.getContact('c2')) as { estimatedWaitMs?: number | null };
      expect(c2.estimatedWaitMs, `${apis[i]!.name}: ${JSON.stringify(c2)}`).toBeLessThan(60_000);
    }
  }, 60_000);
});
