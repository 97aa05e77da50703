/**
 * The rebuild compares the lifecycle timers (`sb:{ws}:timers`: offers, wrap-ups, maximum waits,
 * preferences, routing steps) too: a timer lost from the live workspace would leave an offer that
 * never expires or a contact that waits past its limit, and nothing else in the state shows it.
 * Timers the clock already fired are not in the live set but stay in the shadow (no clock runs
 * there): their commands in the log (`timer:<member>:<due>`) account for them, applied or not.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { rebuildWorkspace } from '../../src/cli/rebuild/rebuild.ts';
import { dispatchPending, fireTimers } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

describe('rebuild: the lifecycle timers', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  let n = 0;

  async function send(ws: string, ...commands: Command[]): Promise<void> {
    for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws);
    await dispatchPending(suite.redis, ws);
  }

  /**
   * Timers of every kind: some fired and applied (a wrap-up, a maximum wait, an offer), one fired
   * and not applied yet (its command after the checkpoint), and some still due (a long offer, a
   * long maximum wait, a preference, a routing step).
   */
  async function lifecycle(): Promise<string> {
    const ws = `rt-${run}-${++n}`;
    await ensureGroup(suite.redis, ws);
    await send(
      ws,
      {
        type: 'ChangeSettings',
        offerTimeoutMs: 60,
        wrapUpMs: 40,
        missedOfferPresence: 'away',
        maxWaitMs: null,
      },
      { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 1 },
      { type: 'RegisterAgent', agentId: 'bob', skills: ['B'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
      { type: 'ChangeAgentState', agentId: 'bob', state: 'available' },
      { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0 },
      { type: 'QueueContact', contactId: 'c2', skills: ['B'], priority: 0 },
      { type: 'QueueContact', contactId: 'c3', skills: ['C'], priority: 0, maxWaitMs: 30 },
    );
    await send(
      ws,
      { type: 'AcceptOffer', contactId: 'c1', agentId: 'ana' },
      { type: 'CompleteContact', contactId: 'c1' },
    );
    // c2's offer expires, c3's wait ends, ana's wrap-up ends: fired and applied.
    await sleep(80);
    await fireTimers(suite.redis, ws);
    await projectPending(suite.redis, ws);
    await dispatchPending(suite.redis, ws);
    await send(
      ws,
      {
        type: 'ChangeSettings',
        offerTimeoutMs: 3_600_000,
        wrapUpMs: 50,
        missedOfferPresence: 'away',
        maxWaitMs: 86_400_000,
      },
      { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
      // Offered to ana: an offer timer an hour on.
      { type: 'QueueContact', contactId: 'c4', skills: ['A'], priority: 0 },
      // Waits: its maximum wait (the workspace's), a preference and a routing step.
      {
        type: 'QueueContact',
        contactId: 'c5',
        skills: ['D'],
        priority: 0,
        preferredAgents: ['bob'],
        preferredForMs: 600_000,
        steps: [{ afterMs: 300_000, skills: ['E'] }],
      },
      // Its maximum wait fires below and is not applied yet.
      { type: 'QueueContact', contactId: 'c6', skills: ['F'], priority: 0, maxWaitMs: 20 },
    );
    await sleep(40);
    await fireTimers(suite.redis, ws);
    return ws;
  }

  const timers = async (ws: string) => suite.redis.zrange(workspaceKeys(ws).timers, 0, -1, 'WITHSCORES');

  it('rebuilds the live timers, those fired and not applied yet accounted for by their commands', async () => {
    const ws = await lifecycle();
    const live = await timers(ws);
    for (const kind of ['o|c4|', 'm|c5|', 'f|c5|', 'r|c5|'])
      expect(
        live.some((m) => m.startsWith(kind)),
        kind,
      ).toBe(true);
    expect(
      live.some((m) => m.startsWith('m|c6|')),
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
    const live = await timers(ws);
    const offer = live.find((m) => m.startsWith('o|c4|'))!;
    const wait = live.find((m) => m.startsWith('m|c5|'))!;
    const waitDue = live[live.indexOf(wait) + 1]!;
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
