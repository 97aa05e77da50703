/**
 * The rebuild compares the lifecycle timers (`sb:{ws}:timers`: offers, wrap-ups, maximum waits,
 * preferences, routing steps) too: a timer lost from the live workspace would leave an offer that
 * never expires or a contact that waits past its limit, and nothing else in the state shows it.
 * Timers the clock already fired are not in the live set but stay in the shadow (no clock runs
 * there): their commands in the log (`timer:<member>:<due>`) account for them, applied or not.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { rebuildWorkspace } from '../../src/cli/rebuild/rebuild.ts';
import { suiteRedis } from '../support/redis.ts';
import { timerNamed, timersLifecycle, timersOf } from '../support/timers.ts';

describe('rebuild: the lifecycle timers', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  let n = 0;

  async function lifecycle(): Promise<string> {
    const ws = `rt-${run}-${++n}`;
    await timersLifecycle(suite.redis, ws);
    return ws;
  }

  it('rebuilds the live timers, those fired and not applied yet accounted for by their commands', async () => {
    const ws = await lifecycle();
    const live = await timersOf(suite.redis, ws);
    for (const kind of ['o|c4|', 'm|c5|', 'f|c5|', 'r|c5|']) timerNamed(live, kind);
    expect(
      [...live.keys()].some((m) => m.startsWith('m|c6|')),
      'c6 fired',
    ).toBe(false);
    const pending = await suite.redis.xrange(
      workspaceKeys(ws).commands,
      `(${await suite.redis.hget(workspaceKeys(ws).meta, 'applied')}`,
      '+',
    );
    expect(pending.map(([, f]) => f[1])).toEqual(['ExpireContact']);

    const report = await rebuildWorkspace(suite.redis, ws);
    expect(report.differences).toEqual([]);
    expect(report.compared).toBe(true);
  });

  it('reports a timer lost, a due time changed and a timer that nothing set', async () => {
    const ws = await lifecycle();
    const k = workspaceKeys(ws);
    const live = await timersOf(suite.redis, ws);
    const [offer] = timerNamed(live, 'o|c4|');
    const [wait, waitDue] = timerNamed(live, 'm|c5|');
    await suite.redis.zrem(k.timers, offer);
    await suite.redis.zadd(k.timers, Number(waitDue) + 1000, wait);
    await suite.redis.zadd(k.timers, 1, 'w|ana|9');

    const report = await rebuildWorkspace(suite.redis, ws);
    expect(report.differences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'timer', key: 'timers', member: offer, live: null }),
        expect.objectContaining({
          kind: 'timer',
          key: 'timers',
          member: wait,
          live: String(Number(waitDue) + 1000),
          rebuilt: waitDue,
        }),
        expect.objectContaining({ kind: 'timer', key: 'timers', member: 'w|ana|9', rebuilt: null }),
      ]),
    );
    expect(report.differenceCount).toBe(3);
  });
});
