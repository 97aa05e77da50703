/**
 * Rule 1 when several changes arrive between two dispatcher steps: the dispatcher looks at the
 * state as it is, not at the order in which agents and contacts turned up.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { readEvents } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

describe('rule 1 under batching', () => {
  const suite = suiteRedis();
  let n = 0;

  async function send(workspace: string, ...commands: Command[]): Promise<void> {
    for (const command of commands) await appendCommand(suite.redis, { workspace, command });
    await projectPending(suite.redis, workspace);
  }
  async function assignments(workspace: string): Promise<string[]> {
    const page = await readEvents(suite.redis, workspace, {
      limit: 1000,
      types: new Set(['AssignmentMade']),
    });
    return page.events.map((e) => `${e.data.contactId as string}->${e.data.agentId as string}`);
  }

  it('the longest available agent takes the high-priority contact, the newer one the other', async () => {
    const ws = `rule1-${++n}-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    await send(
      ws,
      { type: 'RegisterAgent', agentId: 'old', skills: ['X'], capacity: 1 },
      { type: 'RegisterAgent', agentId: 'new', skills: ['X', 'Y'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'old', state: 'available' },
    );
    expect(await dispatchPending(suite.redis, ws)).toBe(0);
    // The dispatcher is stopped while these three are applied.
    await send(
      ws,
      { type: 'ChangeAgentState', agentId: 'new', state: 'available' },
      { type: 'QueueContact', contactId: 'hi', skills: ['X'], priority: 9 },
      { type: 'QueueContact', contactId: 'lo', skills: ['Y'], priority: 0 },
    );
    expect(await dispatchPending(suite.redis, ws)).toBe(2);
    expect(await assignments(ws)).toEqual(['hi->old', 'lo->new']);
  });

  it('contacts that arrive together are served in routing order, not arrival order', async () => {
    const ws = `rule1-${++n}-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    await send(
      ws,
      { type: 'QueueContact', contactId: 'first', skills: ['A'], priority: 0 },
      { type: 'QueueContact', contactId: 'urgent', skills: ['A', 'B'], priority: 5 },
      { type: 'RegisterAgent', agentId: 'ab', skills: ['A', 'B'], capacity: 1 },
      { type: 'RegisterAgent', agentId: 'a', skills: ['A'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'ab', state: 'available' },
      { type: 'ChangeAgentState', agentId: 'a', state: 'available' },
    );
    expect(await dispatchPending(suite.redis, ws)).toBe(2);
    expect(await assignments(ws)).toEqual(['urgent->ab', 'first->a']);
  });

  it('records the command-stream position each decision was based on', async () => {
    const ws = `rule1-${++n}-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    await send(ws, { type: 'RegisterAgent', agentId: 'x', skills: ['A'], capacity: 1 });
    const last = await appendCommand(suite.redis, {
      workspace: ws,
      command: { type: 'ChangeAgentState', agentId: 'x', state: 'available' },
    });
    await appendCommand(suite.redis, {
      workspace: ws,
      command: { type: 'QueueContact', contactId: 'c', skills: ['A'], priority: 0 },
    }).then(async (queued) => {
      await projectPending(suite.redis, ws);
      await dispatchPending(suite.redis, ws);
      const page = await readEvents(suite.redis, ws, { limit: 10, types: new Set(['AssignmentMade']) });
      expect(page.events[0]?.meta).toMatchObject({ basedOn: queued.position });
      expect(queued.position > last.position).toBe(true);
    });
  });

  it('a burst of contacts needing the same skills is one candidate, and none is skipped', async () => {
    const ws = `rule1-${++n}-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    const k = workspaceKeys(ws);
    await send(
      ws,
      { type: 'RegisterAgent', agentId: 'a', skills: ['A'], capacity: 1 },
      ...Array.from(
        { length: 5 },
        (_, i): Command => ({
          type: 'QueueContact',
          contactId: `c${i}`,
          skills: ['A'],
          priority: 0,
        }),
      ),
    );
    expect(await suite.redis.zrange(k.candidates, 0, -1)).toEqual(['q:voice/A']);
    // No agent for the head: the queue's candidate is dropped, and the agent's pool covers them.
    expect(await dispatchPending(suite.redis, ws)).toBe(0);
    expect(await suite.redis.zcard(k.candidates)).toBe(0);
    await send(ws, { type: 'ChangeAgentState', agentId: 'a', state: 'available' });
    expect(await dispatchPending(suite.redis, ws)).toBe(1);
    for (let i = 1; i < 5; i++) {
      await send(ws, { type: 'CompleteContact', contactId: `c${i - 1}` });
      expect(await dispatchPending(suite.redis, ws)).toBe(1);
    }
    expect(await assignments(ws)).toEqual(['c0->a', 'c1->a', 'c2->a', 'c3->a', 'c4->a']);
  });

  it('a contact candidate written before queues were candidates is still served', async () => {
    const ws = `rule1-${++n}-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    const k = workspaceKeys(ws);
    await send(
      ws,
      { type: 'QueueContact', contactId: 'old', skills: ['A'], priority: 0 },
      { type: 'RegisterAgent', agentId: 'a', skills: ['A'], capacity: 1 },
    );
    // The layout of an earlier version: the contact itself is the candidate.
    await suite.redis.zrem(k.candidates, 'q:voice/A');
    await suite.redis.zadd(k.candidates, 0, 'c:old');
    await send(ws, { type: 'ChangeAgentState', agentId: 'a', state: 'available' });
    await suite.redis.zrem(k.candidates, 'p:A');
    expect(await dispatchPending(suite.redis, ws)).toBe(1);
    expect(await assignments(ws)).toEqual(['old->a']);
    expect(await suite.redis.zcard(k.candidates)).toBe(0);
  });
});
