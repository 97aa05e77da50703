/**
 * The dispatcher's wake signal: a contact queued wakes it; an agent who becomes available wakes it
 * only while some contact is queued (with nobody waiting, a dispatch step would find nothing: the
 * agent's pool stays a candidate, and the next contact's wake-up finds it). A real Redis and the
 * real Lua steps.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

describe('the wake signal', () => {
  const suite = suiteRedis();

  async function send(ws: string, ...commands: Command[]): Promise<void> {
    for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws);
  }

  /** A fresh workspace: its keys, whether the wake signal is written, and the candidates. */
  async function workspace(prefix: string) {
    const ws = `${prefix}-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    const woken = async () => (await suite.redis.zcard(k.wake)) > 0;
    const candidates = () => suite.redis.zrange(k.candidates, 0, -1);
    /** The dispatcher was woken, and the step finds nothing to do and leaves no candidate. */
    const wokenForNothing = async () => {
      expect(await woken()).toBe(true);
      await suite.redis.del(k.wake);
      expect(await dispatchPending(suite.redis, ws)).toBe(0);
      expect(await candidates()).toEqual([]);
    };
    return { ws, k, woken, candidates, wokenForNothing };
  }

  /** Every decision followed the rule, and there were `n`. */
  async function expectAudited(ws: string, n: number): Promise<void> {
    const audit = await auditWorkspace(suite.redis, ws);
    expect(audit.violations).toEqual([]);
    expect(audit.assignments).toBe(n);
  }

  it('is written for a queued contact, and for an agent made available only while someone waits', async () => {
    const { ws, k, woken } = await workspace('wake');

    // Nobody waits: registering and making agents available leaves the dispatcher asleep.
    await send(
      ws,
      { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
    );
    expect(await woken()).toBe(false);

    // A contact arrives: the signal is written, and the step it wakes finds ana's pool.
    await send(ws, { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0 });
    expect(await woken()).toBe(true);
    await suite.redis.del(k.wake);
    expect(await dispatchPending(suite.redis, ws)).toBe(1);

    // ana frees up with nobody waiting: asleep; a second agent too.
    await send(
      ws,
      { type: 'CompleteContact', contactId: 'c1' },
      { type: 'RegisterAgent', agentId: 'bo', skills: ['A'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'bo', state: 'available' },
    );
    expect(await woken()).toBe(false);

    // A contact nobody can serve waits; an agent who could serve it becomes available: woken.
    await send(
      ws,
      { type: 'QueueContact', contactId: 'c2', skills: ['B'], priority: 0 },
      { type: 'RegisterAgent', agentId: 'cy', skills: ['B'], capacity: 1 },
    );
    await suite.redis.del(k.wake);
    await send(ws, { type: 'ChangeAgentState', agentId: 'cy', state: 'available' });
    expect(await woken()).toBe(true);
    expect(await dispatchPending(suite.redis, ws)).toBe(1);

    // Every decision still follows the rule: ana, available longest, took c1, and cy took c2.
    await expectAudited(ws, 2);
  });

  it('is not written for an agent who joins available agents of the same skills, unless someone is blocked', async () => {
    const { ws, k, woken, candidates, wokenForNothing } = await workspace('wake-same');

    // ana (A) is available; c1 needs A and B: the step it wakes finds nobody, and leaves no
    // candidate behind.
    await send(
      ws,
      {
        type: 'ChangeSettings',
        offerTimeoutMs: 60_000,
        wrapUpMs: 0,
        missedOfferPresence: 'available',
        maxWaitMs: null,
      },
      { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
      { type: 'QueueContact', contactId: 'c1', skills: ['A', 'B'], priority: 0 },
    );
    await wokenForNothing();

    // bo (A too) becomes available while ana still is: whatever bo can serve, ana could, and is
    // covered already; no wake-up, no candidate, no step. Nor when ana goes and comes back.
    await send(
      ws,
      { type: 'RegisterAgent', agentId: 'bo', skills: ['A'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'bo', state: 'available' },
    );
    // A later millisecond than bo's: ana comes back after bo (ties go by id, and 'ana' < 'bo').
    await sleep(5);
    await send(
      ws,
      { type: 'ChangeAgentState', agentId: 'ana', state: 'away' },
      { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
    );
    expect(await woken()).toBe(false);
    expect(await candidates()).toEqual([]);

    // cy (A and B) becomes available: woken, and takes c1.
    await send(
      ws,
      { type: 'RegisterAgent', agentId: 'cy', skills: ['A', 'B'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'cy', state: 'available' },
    );
    expect(await woken()).toBe(true);
    await suite.redis.del(k.wake);
    expect(await dispatchPending(suite.redis, ws)).toBe(1);
    expect(JSON.parse((await suite.redis.hget(k.contacts, 'c1'))!).agentId).toBe('cy');

    // Blocked: c2 (A) is offered to bo (available longest: ana came back later), who turns it
    // down; ana takes it. With c2 then turned down by both, dan (A) joining them is woken for:
    // they may not take c2, dan may.
    await send(ws, { type: 'QueueContact', contactId: 'c2', skills: ['A'], priority: 0 });
    expect(await dispatchPending(suite.redis, ws)).toBe(1);
    expect(JSON.parse((await suite.redis.hget(k.contacts, 'c2'))!).agentId).toBe('bo');
    await send(ws, { type: 'RejectOffer', contactId: 'c2', agentId: 'bo' });
    expect(await dispatchPending(suite.redis, ws)).toBe(1);
    expect(JSON.parse((await suite.redis.hget(k.contacts, 'c2'))!).agentId).toBe('ana');
    await send(
      ws,
      { type: 'RejectOffer', contactId: 'c2', agentId: 'ana' },
      { type: 'RegisterAgent', agentId: 'dan', skills: ['A'], capacity: 1 },
    );
    expect(await dispatchPending(suite.redis, ws)).toBe(0);
    await suite.redis.del(k.wake);
    await send(ws, { type: 'ChangeAgentState', agentId: 'dan', state: 'available' });
    expect(await woken()).toBe(true);
    expect(await dispatchPending(suite.redis, ws)).toBe(1);
    expect(JSON.parse((await suite.redis.hget(k.contacts, 'c2'))!).agentId).toBe('dan');

    await expectAudited(ws, 4);
  });

  it('is not written for a contact queued behind a head no agent can take, unless someone is blocked', async () => {
    const { ws, k, woken, candidates, wokenForNothing } = await workspace('wake-busy');

    // ana is busy with c1; c2 arrives and heads the queue: woken, and the step finds nobody, so
    // the queue is no candidate any more.
    await send(
      ws,
      { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
      { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0 },
    );
    expect(await dispatchPending(suite.redis, ws)).toBe(1);
    await suite.redis.del(k.wake);
    await send(ws, { type: 'QueueContact', contactId: 'c2', skills: ['A'], priority: 0 });
    await wokenForNothing();

    // The queue builds behind c2 while every agent is busy: no wake-up, no candidate, no step.
    await send(
      ws,
      { type: 'QueueContact', contactId: 'c3', skills: ['A'], priority: 0 },
      { type: 'QueueContact', contactId: 'c4', skills: ['A'], priority: 0 },
    );
    expect(await woken()).toBe(false);
    expect(await candidates()).toEqual([]);

    // ana frees up: woken, and her pool takes the head of the queue, then the next.
    await send(ws, { type: 'CompleteContact', contactId: 'c1' });
    expect(await woken()).toBe(true);
    await suite.redis.del(k.wake);
    expect(await dispatchPending(suite.redis, ws)).toBe(1);
    expect(JSON.parse((await suite.redis.hget(k.contacts, 'c2'))!).agentId).toBe('ana');
    await send(ws, { type: 'CompleteContact', contactId: 'c2' });
    await suite.redis.del(k.wake);
    expect(await dispatchPending(suite.redis, ws)).toBe(1);
    expect(JSON.parse((await suite.redis.hget(k.contacts, 'c3'))!).agentId).toBe('ana');

    // A contact waiting for a preferred agent may be passed over: with one queued, a contact
    // behind the head wakes the dispatcher as before, and is looked at.
    await send(ws, {
      type: 'QueueContact',
      contactId: 'c5',
      skills: ['A'],
      priority: 0,
      preferredAgents: ['ana'],
      preferredForMs: 60_000,
    });
    await suite.redis.del(k.wake);
    await send(ws, { type: 'QueueContact', contactId: 'c6', skills: ['A'], priority: 0 });
    expect(await woken()).toBe(true);

    await expectAudited(ws, 3);
  });
});
