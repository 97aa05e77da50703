/**
 * Priority aging's one exact tie: keys set under different weights. Two contacts in different
 * skill-set queues whose keys are equal, and one agent who can take either: rule 1 gives the agent
 * the lower contact id (docs/ROUTING.md), whichever queue it is in, and the auditor agrees. The
 * commands are written at chosen stream positions, so the arrival ticks (and so the keys) are exact.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { agedKey, TICK_EPOCH, TICKS_PER_MS } from '../../src/domain/model.ts';
import { ensureGroup } from '../../src/projections/projector.ts';
import { agingSettings, appendAt, assignedPairs } from '../support/positions.ts';
import { suiteRedis } from '../support/redis.ts';

describe('priority aging: an exact tie across queues', () => {
  const suite = suiteRedis();
  let n = 0;

  const settings = agingSettings;
  /** Appends each command at its own millisecond (`[ms, command]`), then projects them all. */
  const at = (workspace: string, entries: [number, Command][]) =>
    appendAt(
      suite.redis,
      workspace,
      entries.map(([ms, command]) => [`${ms}-0`, command] as const),
    );
  const assigned = (workspace: string) => assignedPairs(suite.redis, workspace);

  // Queue names in one order, contact ids in the other ("voice/x" < "voice/y", "a" < "b"), and
  // the agent made available after the contacts queued (its pool finds their queues) or, in the
  // same projector batch, before them (their queues are candidates too).
  const cases = [
    ['the lower id in the later-named queue', 'b', 'a', false],
    ['the lower id in the earlier-named queue', 'a', 'b', false],
    ['the lower id in the later-named queue, the agent available first', 'b', 'a', true],
    ['the lower id in the earlier-named queue, the agent available first', 'a', 'b', true],
  ] as const;
  for (const [label, inX, inY, availableFirst] of cases) {
    it(`${label}: the agent takes contact "a", and the auditor finds every decision rule 1's`, async () => {
      const ws = `aged-tie-${++n}-${Date.now().toString(36)}`;
      await ensureGroup(suite.redis, ws);
      const t0 = Date.now() - 60_000;
      const available = { type: 'ChangeAgentState', agentId: 'agent', state: 'available' } as Command;
      // Weight 2 ms when the first arrives, 1 ms when the second does, 9 ms later: at priority 0,
      // tick1 + 9 × 2 ms = tick2 + 9 × 1 ms (in ticks of 1/128 ms), so the keys are equal.
      await at(ws, [
        [t0, settings(2)],
        [t0 + 1, { type: 'RegisterAgent', agentId: 'agent', skills: ['x', 'y'], capacity: 1 } as Command],
        ...(availableFirst ? ([[t0 + 2, available]] as [number, Command][]) : []),
        [t0 + 10, { type: 'QueueContact', contactId: inX, skills: ['x'], priority: 0 } as Command],
        [t0 + 11, settings(1)],
        [t0 + 19, { type: 'QueueContact', contactId: inY, skills: ['y'], priority: 0 } as Command],
      ]);
      if (!availableFirst) {
        expect(await dispatchPending(suite.redis, ws)).toBe(0);
        await at(ws, [[t0 + 30, available]]);
      }
      const [x, y] = (await suite.redis.hmget(workspaceKeys(ws).contacts, inX, inY)).map((d) =>
        Number((JSON.parse(d!) as { _key: string | number })._key),
      );
      expect(x).toBe(agedKey((t0 + 10 - TICK_EPOCH) * TICKS_PER_MS, 0, 2));
      expect(y).toBe(x);
      expect(await dispatchPending(suite.redis, ws)).toBe(1);
      expect(await assigned(ws)).toEqual(['a->agent']);
      const audit = await auditWorkspace(suite.redis, ws, { idle: true });
      expect(audit.violations).toEqual([]);
    });
  }

  // A contact that waits for a preferred agent who is offline blocks its queue's head for others.
  const blocker = (id: string, skill: string): Command =>
    ({
      type: 'QueueContact',
      contactId: id,
      skills: [skill],
      priority: 0,
      preferredAgents: ['other'],
      preferredForMs: 3_600_000,
    }) as Command;

  it('the chosen contact behind its own blocked head still gives way to a tied lower id in another queue', async () => {
    const ws = `aged-tie-${++n}-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    const t0 = Date.now() - 60_000;
    await at(ws, [
      [t0, settings(2)],
      [t0 + 1, { type: 'RegisterAgent', agentId: 'agent', skills: ['x', 'y'], capacity: 1 } as Command],
      [t0 + 2, { type: 'RegisterAgent', agentId: 'other', skills: ['x'], capacity: 1 } as Command],
      [t0 + 3, { type: 'ChangeAgentState', agentId: 'agent', state: 'available' } as Command],
    ]);
    expect(await dispatchPending(suite.redis, ws)).toBe(0);
    // Queue x: p (blocked) then b at key K; queue y: a at key K. Only queue y's head is at K.
    await at(ws, [
      [t0 + 5, blocker('p', 'x')],
      [t0 + 10, { type: 'QueueContact', contactId: 'b', skills: ['x'], priority: 0 } as Command],
      [t0 + 11, settings(1)],
      [t0 + 19, { type: 'QueueContact', contactId: 'a', skills: ['y'], priority: 0 } as Command],
    ]);
    expect(await dispatchPending(suite.redis, ws)).toBe(1);
    expect(await assigned(ws)).toEqual(['a->agent']);
    expect((await auditWorkspace(suite.redis, ws, { idle: true })).violations).toEqual([]);
  });

  // One queue, two contacts at the same key: its head waits for its preferred agent ("other",
  // offline), the one behind it (a later id) is taken. Taking it must leave the queue's head, and
  // the queue, where they are: when "other" comes, it gets the head.
  for (const joinsWith of [undefined, 'y'] as const) {
    it(`a contact taken from behind its blocked head at the same key leaves the head queued${joinsWith ? ', with another queue waiting' : ''}`, async () => {
      const ws = `aged-tie-${++n}-${Date.now().toString(36)}`;
      await ensureGroup(suite.redis, ws);
      const t0 = Date.now() - 60_000;
      const skills = joinsWith ? ['x', joinsWith] : ['x'];
      await at(ws, [
        [t0, settings(2)],
        [t0 + 1, { type: 'RegisterAgent', agentId: 'agent', skills: ['x'], capacity: 1 } as Command],
        [t0 + 2, { type: 'RegisterAgent', agentId: 'other', skills, capacity: 1 } as Command],
        [t0 + 3, { type: 'ChangeAgentState', agentId: 'agent', state: 'available' } as Command],
        [t0 + 10, blocker('h', 'x')],
      ]);
      expect(await dispatchPending(suite.redis, ws)).toBe(0);
      // "n" is keyed as "h" is: 9 ms later, at a weight 1 ms lower per point.
      await at(ws, [
        [t0 + 11, settings(1)],
        [t0 + 19, { type: 'QueueContact', contactId: 'n', skills: ['x'], priority: 0 } as Command],
      ]);
      expect(await dispatchPending(suite.redis, ws)).toBe(1);
      expect(await assigned(ws)).toEqual(['n->agent']);
      const later: [number, Command][] = [];
      if (joinsWith)
        later.push([
          t0 + 25,
          { type: 'QueueContact', contactId: 'm', skills: [joinsWith], priority: 0 } as Command,
        ]);
      later.push([t0 + 30, { type: 'ChangeAgentState', agentId: 'other', state: 'available' } as Command]);
      await at(ws, later);
      await dispatchPending(suite.redis, ws);
      expect(await assigned(ws)).toEqual(['n->agent', 'h->other']);
      expect((await auditWorkspace(suite.redis, ws, { idle: true })).violations).toEqual([]);
    });
  }

  // Known limitation (docs/ROUTING.md): a tied contact behind another queue's blocked head is not
  // among the heads the dispatcher reads. Rule 1 gives the agent "a"; Redis gives "b", and the
  // auditor reports it. This case fails until the dispatcher finds such contacts.
  it.fails('a tied lower id behind another queue\'s blocked head (known limitation: Redis assigns "b")', async () => {
    const ws = `aged-tie-${++n}-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    const t0 = Date.now() - 60_000;
    await at(ws, [
      [t0, settings(2)],
      [t0 + 1, { type: 'RegisterAgent', agentId: 'agent', skills: ['x', 'y'], capacity: 1 } as Command],
      [t0 + 2, { type: 'RegisterAgent', agentId: 'other', skills: ['y'], capacity: 1 } as Command],
      [t0 + 5, blocker('p', 'y')],
      [t0 + 10, { type: 'QueueContact', contactId: 'b', skills: ['x'], priority: 0 } as Command],
      [t0 + 11, settings(1)],
      [t0 + 19, { type: 'QueueContact', contactId: 'a', skills: ['y'], priority: 0 } as Command],
    ]);
    expect(await dispatchPending(suite.redis, ws)).toBe(0);
    await at(ws, [[t0 + 30, { type: 'ChangeAgentState', agentId: 'agent', state: 'available' } as Command]]);
    await dispatchPending(suite.redis, ws);
    expect(await assigned(ws)).toEqual(['a->agent']);
  });
});
