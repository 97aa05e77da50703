/**
 * What the routing steps read, counted from SLOWLOG (each command a Lua step runs is logged at a
 * 0 threshold). A dispatch step of several decisions for agents who all take any channel reads the
 * channel's pool-heads range once, not once a decision (a range found empty stays empty while the
 * step only takes agents), and the decision that takes the last contact of its queue knows nobody
 * is behind it, so it does not read the queue again. A projector step that queues several contacts
 * reads the workspace's arrival number and tick once, and writes them with one call per contact.
 * What the steps decide and record is checked too.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { parseFields } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { defaultDispatcherOptions, dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { commandsDuring } from '../support/slowlog.ts';

describe('what a routing step reads', () => {
  const suite = suiteRedis();

  async function commands(workspace: string, list: Command[]): Promise<void> {
    for (const command of list) await appendCommand(suite.redis, { workspace, command });
    await projectPending(suite.redis, workspace, [], defaultProjectorOptions);
  }

  const logged = <T>(run: () => Promise<T>) => commandsDuring(suite.admin, run);

  /** The ZRANGEBYLEX commands the next dispatch step runs. */
  async function stepReads(workspace: string): Promise<{ made: number; reads: string[][] }> {
    const { result, calls } = await logged(() =>
      dispatchPending(suite.redis, workspace, defaultDispatcherOptions),
    );
    return { made: result, reads: calls.filter((args) => args[0] === 'ZRANGEBYLEX') };
  }

  it('reads an empty channel range once a step and an emptied queue not again', async () => {
    const ws = `reads-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    const agents = ['a1', 'a2', 'a3', 'a4'];
    await commands(ws, [
      ...agents.map((id): Command => ({ type: 'RegisterAgent', agentId: id, skills: ['s'], capacity: 1 })),
      ...agents.map((id): Command => ({ type: 'ChangeAgentState', agentId: id, state: 'available' })),
    ]);
    // Nothing is queued yet: the step has nothing to decide.
    expect(await dispatchPending(suite.redis, ws, defaultDispatcherOptions)).toBe(0);
    const contacts = ['c1', 'c2', 'c3'];
    await commands(
      ws,
      contacts.map((id): Command => ({ type: 'QueueContact', contactId: id, skills: ['s'], priority: 0 })),
    );

    const { made, reads } = await stepReads(ws);
    expect(made).toBe(3);
    // Longest available first, in arrival order: a1, a2 and a3 became available in that order.
    for (const [i, id] of contacts.entries()) {
      const c = JSON.parse((await suite.redis.hget(k.contacts, id)) ?? '{}') as { agentId?: string };
      expect(c.agentId).toBe(agents[i]);
    }
    expect(await suite.redis.zcard(k.queue)).toBe(0);

    const on = (key: string, lo: string) => reads.filter((r) => r[1] === key && r[2] === lo).length;
    // Agents who take any channel sit in the bare pool "s"; the channel's pool "voice/s" is empty.
    expect(on(k.poolHeads, '[voice/s|')).toBe(1);
    expect(on(k.poolHeads, '[s|')).toBe(3);
    // The queue "voice/s": its head and the one behind it, once a decision; none after the last.
    expect(on(k.skillSetQueues, '[voice/s|')).toBe(3);
    expect(reads.filter((r) => r[1] === k.skillSetQueues && r[4] === 'LIMIT' && r[6] === '1')).toEqual([]);
  });

  it('reads the arrival number and tick once a projector step, and writes them once a contact', async () => {
    const ws = `arrivals-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    const first = ['q1', 'q2'];
    const rest = ['q3', 'q4', 'q5', 'q6'];
    const queue = (id: string): Command => ({
      type: 'QueueContact',
      contactId: id,
      skills: ['s'],
      priority: 0,
    });
    await commands(ws, first.map(queue));
    for (const id of rest) await appendCommand(suite.redis, { workspace: ws, command: queue(id) });
    const { calls } = await logged(() => projectPending(suite.redis, ws, [], defaultProjectorOptions));
    const onMeta = calls.filter(
      (args) => args[1] === k.meta && (args.includes('seq') || args.includes('tick')),
    );
    // One step applied the four: one read of both counters, then one write of both per contact.
    expect(onMeta).toEqual([
      ['HMGET', k.meta, 'seq', 'tick'],
      ...rest.map(() => ['HSET', k.meta, 'seq', expect.any(String), 'tick', expect.any(String)]),
    ]);
    // Numbers 1 to 6 in arrival order, across the two steps; ticks strictly increasing.
    const docs = await Promise.all(
      [...first, ...rest].map(async (id) => JSON.parse((await suite.redis.hget(k.contacts, id)) ?? '{}')),
    );
    expect(docs.map((d: { _seq: number }) => d._seq)).toEqual([1, 2, 3, 4, 5, 6]);
    const ticks = docs.map((d: { _tick: string }) => BigInt(d._tick));
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]! > ticks[i - 1]!).toBe(true);
    expect(await suite.redis.hmget(k.meta, 'seq', 'tick')).toEqual(['6', String(ticks.at(-1))]);

    // An id queued before is refused, and takes no arrival number; the next contact has the next.
    const q3 = await suite.redis.hget(k.contacts, 'q3');
    for (const id of ['q3', 'q7']) await appendCommand(suite.redis, { workspace: ws, command: queue(id) });
    await projectPending(suite.redis, ws, [], defaultProjectorOptions);
    expect(await suite.redis.hget(k.contacts, 'q3')).toBe(q3);
    const q7 = JSON.parse((await suite.redis.hget(k.contacts, 'q7')) ?? '{}') as { _seq: number };
    expect(q7._seq).toBe(7);
    const events = (await suite.redis.xrevrange(k.events, '+', '-', 'COUNT', 2)).map(
      ([, f]) =>
        JSON.parse(parseFields(f).event!) as { type: string; data: { status?: number; target?: string } },
    );
    expect(events.map((e) => e.type)).toEqual(['ContactQueued', 'CommandRejected']);
    expect(events[1]!.data).toMatchObject({ status: 409, target: 'q3' });
  });
});
