/**
 * Skills whose names are prefixes of one another ("a" and "ab", "k1" and "k10", "a" and its level
 * "a#2") are different skills everywhere the dispatch step compares them in text: the pool-head
 * members a multi-skill contact's walk reads ("<skill>|<since>|<agent> <skill set>", a skill found
 * as the set's first, an inner or its last element), and the queue names an agent's pool walks or
 * looks up ("<channel>/<skill>,..."), on one channel or several.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { readEvents } from '../../src/adapters/redis/event-log.ts';
import { defaultDispatcherOptions, dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { plainSettings } from '../support/positions.ts';
import { suiteRedis } from '../support/redis.ts';

describe('skill names that are prefixes of one another', () => {
  const suite = suiteRedis();
  let n = 0;

  async function workspace(...commands: Command[]): Promise<string> {
    const ws = `names-${++n}-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    await send(ws, ...commands);
    return ws;
  }
  async function send(ws: string, ...commands: Command[]): Promise<void> {
    for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws);
  }
  async function assignments(ws: string): Promise<string[]> {
    const page = await readEvents(suite.redis, ws, { limit: 1000, types: new Set(['AssignmentMade']) });
    return page.events.map((e) => `${e.data.contactId as string}->${e.data.agentId as string}`);
  }
  const register = (agentId: string, skills: string[]): Command[] => [
    { type: 'RegisterAgent', agentId, skills, capacity: 1 },
    { type: 'ChangeAgentState', agentId, state: 'available' },
  ];
  const queue = (contactId: string, skills: string[], priority = 0, channel?: string): Command => ({
    type: 'QueueContact',
    contactId,
    skills,
    priority,
    ...(channel ? { channel } : {}),
  });

  it("a contact's walk over the pools of its rarest skill takes whole skills only", async () => {
    // In order of availability: each of the first four holds a skill whose name starts with, or
    // is a level of, one the contacts need, in every position of its set; "whole" holds them.
    const ws = await workspace(
      ...register('ext', ['ab', 'k10']),
      ...register('first', ['a', 'k10', 'x']),
      ...register('level', ['a#2', 'k1#2', 'z']),
      ...register('last', ['a', 'k1#2']),
      ...register('whole', ['0', 'a', 'k1']),
      ...register('only', ['k1']),
    );
    await send(ws, queue('needs-a-k1', ['a', 'k1']), queue('needs-ab-k1', ['ab', 'k1']));
    expect(await dispatchPending(suite.redis, ws)).toBe(1);
    expect(await assignments(ws)).toEqual(['needs-a-k1->whole']);
    // The last element of a set, and a set of one skill.
    await send(ws, queue('needs-k1-x', ['k1', 'x']), queue('needs-k1', ['k1']));
    expect(await dispatchPending(suite.redis, ws)).toBe(1);
    expect(await assignments(ws)).toEqual(['needs-a-k1->whole', 'needs-k1->only']);
  });

  for (const enumerateMax of [0, defaultDispatcherOptions.enumerateMax])
    it(`an agent's pool finds only the queues whose whole skills it holds (${enumerateMax === 0 ? 'walking the queue heads' : 'looking its subsets up'}, two channels)`, async () => {
      const ws = await workspace(plainSettings({ channels: ['chat', 'voice'] }));
      // In routing order: the first three need a skill the agent holds only the prefix or a lower
      // level of; the fourth is the one it can serve, on the second channel.
      await send(
        ws,
        queue('ab', ['ab', 'k1'], 9),
        queue('k10', ['a', 'k10'], 8),
        queue('level', ['a#2', 'k1'], 7),
        queue('chat', ['a', 'k1'], 6, 'chat'),
        queue('voice', ['a', 'k1'], 5),
      );
      expect(await dispatchPending(suite.redis, ws)).toBe(0);
      await send(ws, ...register('agent', ['a', 'k1', 'x']));
      expect(await dispatchPending(suite.redis, ws, { ...defaultDispatcherOptions, enumerateMax })).toBe(1);
      expect(await assignments(ws)).toEqual(['chat->agent']);
    });
});
