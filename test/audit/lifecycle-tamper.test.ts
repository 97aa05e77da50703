/**
 * The lifecycle's violations, as the auditor reports them: a real log with offers, rejections,
 * expiries and wrap-ups is audited clean; then each of the failures contact centers know from
 * other ACDs is written into a copy of it (the log a faulty router would have written), and the
 * auditor names it at its position: an offer accepted by an agent it was not made to, a contact
 * offered twice at once, an agent in two wrap-ups, a timer applied twice, and a timer that
 * fired before it was due.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { dispatchPending, fireTimers } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { plainSettings } from '../support/positions.ts';
import { sendAndSettle } from '../support/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

describe('the auditor on the work lifecycle', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  let n = 0;

  const send = (ws: string, ...commands: Command[]) => sendAndSettle(suite.redis, ws, ...commands);

  const events = async (ws: string) =>
    (await suite.redis.xrange(workspaceKeys(ws).events, '-', '+')) as StreamEntry[];
  const envelope = (e: StreamEntry) =>
    JSON.parse(e[1][3]!) as { type: string; data: Record<string, unknown>; meta: Record<string, unknown> };
  const find = async (
    ws: string,
    type: string,
    match: (d: Record<string, unknown>) => boolean = () => true,
  ) => {
    const e = (await events(ws)).find((x) => x[1][1] === type && match(envelope(x).data));
    expect(e, `${type} in the log`).toBeDefined();
    return e!;
  };
  const violations = async (ws: string) =>
    (await auditWorkspace(suite.redis, ws, { compareState: false })).violations.map(
      (v) => `${v.position} ${v.kind}: ${v.message}`,
    );

  /**
   * A log of the whole lifecycle: ana accepts c1 and completes it (a wrap-up starts and ends),
   * bob rejects c2 (queued again, offered to carl), carl lets it expire (its presence becomes
   * away), and c3 waits past its maximum wait.
   */
  async function lifecycle(): Promise<string> {
    const ws = `life-${run}-${++n}`;
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
      { type: 'RegisterAgent', agentId: 'carl', skills: ['B'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
      { type: 'ChangeAgentState', agentId: 'bob', state: 'available' },
      { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0 },
      { type: 'QueueContact', contactId: 'c2', skills: ['B'], priority: 0 },
      { type: 'QueueContact', contactId: 'c3', skills: ['C'], priority: 0, maxWaitMs: 30 },
    );
    await send(
      ws,
      { type: 'AcceptOffer', contactId: 'c1', agentId: 'ana' },
      { type: 'RejectOffer', contactId: 'c2', agentId: 'bob' },
      { type: 'ChangeAgentState', agentId: 'carl', state: 'available' },
      { type: 'CompleteContact', contactId: 'c1' },
    );
    await sleep(80);
    await fireTimers(suite.redis, ws);
    await projectPending(suite.redis, ws);
    await dispatchPending(suite.redis, ws);
    const types = (await events(ws)).map((e) => e[1][1]);
    for (const t of [
      'AssignmentAccepted',
      'AssignmentRejected',
      'AssignmentExpired',
      'WrapUpStarted',
      'WrapUpEnded',
      'ContactExpired',
    ])
      expect(types, t).toContain(t);
    return ws;
  }

  /**
   * The workspace's event stream written again in order, with one entry replaced or one added
   * right after it (new positions: no event position is referred to elsewhere). Returns the
   * position the changed or added entry got.
   */
  async function rewrite(ws: string, id: string, fields: string[] | null, after?: string[]): Promise<string> {
    const key = workspaceKeys(ws).events;
    const all = await events(ws);
    await suite.redis.del(key);
    let changed = '';
    for (const [at, f] of all) {
      const pos = (await suite.redis.xadd(key, '*', ...(at === id && fields ? fields : f))) as string;
      if (at === id) changed = pos;
      if (at === id && after) changed = (await suite.redis.xadd(key, '*', ...after)) as string;
    }
    return changed;
  }
  const fields = (env: object) => {
    const e = env as { type: string };
    return ['type', e.type, 'event', JSON.stringify(env)];
  };

  it('passes the untouched lifecycle log', async () => {
    const ws = await lifecycle();
    const report = await auditWorkspace(suite.redis, ws);
    expect(report.violations).toEqual([]);
    expect(report.state).toBe('compared');
  });

  it("reports the routing's count of turned-down contacts queued (meta excluded) that is not the replay's", async () => {
    const ws = await lifecycle();
    const meta = workspaceKeys(ws).meta;
    // c2, turned down by bob and let expire by carl, waits in the queue: one.
    expect(await suite.redis.hget(meta, 'excluded')).toBe('1');
    for (const tampered of ['0', '2']) {
      await suite.redis.hset(meta, 'excluded', tampered);
      const report = await auditWorkspace(suite.redis, ws);
      expect(report.violations.map((v) => `${v.kind}: ${v.message}`)).toEqual([
        `index: routing index: the count of queued contacts some agent turned down or that wait for their preferred agents (meta excluded) is ${tampered}, the replay's 1`,
      ]);
    }
    await suite.redis.hdel(meta, 'excluded');
    expect((await auditWorkspace(suite.redis, ws)).violations).toHaveLength(1);
  });

  it('reports an offer accepted by an agent it was not made to', async () => {
    const ws = await lifecycle();
    const e = await find(ws, 'AssignmentAccepted');
    const env = envelope(e);
    const at = await rewrite(ws, e[0], fields({ ...env, data: { ...env.data, agentId: 'bob' } }));
    const found = await violations(ws);
    expect(
      found.some((v) => v.startsWith(`${at} fact`) && v.includes('agentId')),
      found.join('\n'),
    ).toBe(true);
  });

  it('reports a contact offered twice at once', async () => {
    const ws = await lifecycle();
    const e = await find(ws, 'AssignmentMade', (d) => d.contactId === 'c1');
    const env = envelope(e);
    const twice = { ...env, data: { ...env.data, agentId: 'bob' } };
    await rewrite(ws, e[0], null, fields(twice));
    const found = await violations(ws);
    expect(found.some((v) => v.includes('c1->bob') && v.includes('offered already'))).toBe(true);
  });

  it('reports an agent in two wrap-ups', async () => {
    const ws = await lifecycle();
    const e = await find(ws, 'WrapUpStarted');
    const env = envelope(e);
    await rewrite(ws, e[0], null, fields({ ...env, data: { ...env.data, wrapUp: 2 } }));
    const found = await violations(ws);
    expect(
      found.some((v) => v.includes('WrapUpStarted')),
      found.join('\n'),
    ).toBe(true);
  });

  it('reports a timer applied twice, as a command and as a fact', async () => {
    const ws = await lifecycle();
    const k = workspaceKeys(ws);
    // The clock's command appended again (same timer, same command id): the projector applies it
    // as stale, and the auditor names the repeated command.
    const cmds = (await suite.redis.xrange(k.commands, '-', '+')) as StreamEntry[];
    const timer = cmds.find((c) => c[1][1] === 'ExpireOffer')!;
    expect(timer).toBeDefined();
    await suite.redis.xadd(k.commands, '*', ...timer[1]);
    await projectPending(suite.redis, ws);
    const again = await violations(ws);
    expect(
      again.some((v) => v.includes('command') && v.includes('appended again')),
      again.join('\n'),
    ).toBe(true);

    // And the expiry written twice.
    const ws2 = await lifecycle();
    const e = await find(ws2, 'AssignmentExpired');
    await rewrite(ws2, e[0], null, e[1]);
    const twice = await violations(ws2);
    expect(
      twice.some((v) => v.includes('AssignmentExpired')),
      twice.join('\n'),
    ).toBe(true);
  });

  it('channels: passes the untouched log, reports a contact given to an agent with no room on its channel', async () => {
    const ws = `channels-${run}-${++n}`;
    await ensureGroup(suite.redis, ws);
    // mia takes a chat and a call, tom one chat; c4 (chat) waits: both chats are taken.
    await send(
      ws,
      plainSettings({ channels: ['chat', 'voice'] }),
      { type: 'RegisterAgent', agentId: 'mia', skills: ['A'], capacity: { chat: 1, voice: 1 } },
      { type: 'RegisterAgent', agentId: 'tom', skills: ['A'], capacity: { chat: 1 } },
      { type: 'ChangeAgentState', agentId: 'mia', state: 'available' },
      { type: 'ChangeAgentState', agentId: 'tom', state: 'available' },
      { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0, channel: 'chat' },
      { type: 'QueueContact', contactId: 'c2', skills: ['A'], priority: 0, channel: 'chat' },
      { type: 'QueueContact', contactId: 'c3', skills: ['A'], priority: 0, channel: 'voice' },
      { type: 'QueueContact', contactId: 'c4', skills: ['A'], priority: 0, channel: 'chat' },
    );
    expect((await auditWorkspace(suite.redis, ws)).violations).toEqual([]);
    const pairs = async (w: string) =>
      (await events(w))
        .filter((x) => x[1][1] === 'AssignmentMade')
        .map((x) => `${envelope(x).data.contactId}->${envelope(x).data.agentId}:${envelope(x).data.channel}`);
    expect(await pairs(ws)).toEqual(['c1->mia:chat', 'c2->tom:chat', 'c3->mia:voice']);

    // c4 given to mia anyway, right after c3.
    const e = await find(ws, 'AssignmentMade', (d) => d.contactId === 'c3');
    const env = envelope(e);
    await rewrite(
      ws,
      e[0],
      null,
      fields({ ...env, data: { ...env.data, contactId: 'c4', channel: 'chat' } }),
    );
    const full = await violations(ws);
    expect(
      full.some((v) => v.includes('c4->mia') && v.includes('at capacity on chat (1 of 1)')),
      full.join('\n'),
    ).toBe(true);

    // The call given to tom, who takes chats only.
    const ws2 = `channels-${run}-${++n}`;
    await ensureGroup(suite.redis, ws2);
    for (const [, f] of (await suite.redis.xrange(workspaceKeys(ws).commands, '-', '+')) as StreamEntry[])
      await suite.redis.xadd(workspaceKeys(ws2).commands, '*', ...f);
    await projectPending(suite.redis, ws2);
    await dispatchPending(suite.redis, ws2);
    const voice = await find(ws2, 'AssignmentMade', (d) => d.contactId === 'c3');
    const v3 = envelope(voice);
    await rewrite(ws2, voice[0], fields({ ...v3, data: { ...v3.data, agentId: 'tom' } }));
    const wrong = await violations(ws2);
    expect(
      wrong.some(
        (v) => v.includes('c3->tom') && v.includes('takes no voice contacts (its capacity is for chat)'),
      ),
      wrong.join('\n'),
    ).toBe(true);
  });

  it('reports a timer fired before it was due', async () => {
    const ws = await lifecycle();
    const k = workspaceKeys(ws);
    // An offer outstanding, then its ExpireOffer applied at once (as a clock running fast would).
    await send(
      ws,
      {
        type: 'ChangeSettings',
        offerTimeoutMs: 60_000,
        wrapUpMs: 0,
        missedOfferPresence: 'away',
        maxWaitMs: null,
      },
      { type: 'ChangeAgentState', agentId: 'carl', state: 'available' },
      { type: 'QueueContact', contactId: 'c9', skills: ['B'], priority: 0 },
    );
    const made = envelope(await find(ws, 'AssignmentMade', (d) => d.contactId === 'c9'));
    const offer = (made.data.offer as { id: number }).id;
    await appendCommand(suite.redis, {
      workspace: ws,
      command: { type: 'ExpireOffer', contactId: 'c9', offer },
    });
    await projectPending(suite.redis, ws);
    // Applied as stale: nothing changed, and the audit is clean...
    expect(JSON.parse((await suite.redis.hget(k.contacts, 'c9'))!).state).toBe('offered');
    expect(await violations(ws)).toEqual([]);
    // ...and an expiry written anyway is reported.
    const cmd = ((await suite.redis.xrange(k.commands, '-', '+')) as StreamEntry[]).at(-1)!;
    const commandId = cmd[1][cmd[1].indexOf('commandId') + 1];
    const last = (await events(ws)).at(-1)!;
    await rewrite(
      ws,
      last[0],
      null,
      fields({
        type: 'AssignmentExpired',
        workspace: ws,
        at: made.data.assignedAt,
        data: { contactId: 'c9', agentId: made.data.agentId, expiredAt: made.data.assignedAt },
        meta: { commandId },
      }),
    );
    const early = await violations(ws);
    expect(
      early.some((v) => v.includes('AssignmentExpired')),
      early.join('\n'),
    ).toBe(true);
  });
});
