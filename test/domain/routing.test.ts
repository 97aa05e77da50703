import { isLeft } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import type { Command } from '../../src/domain/commands.ts';
import { decide, emptyWorkspace, evolve, type Workspace } from '../../src/domain/model.ts';
import { contactOrder, longestAvailableAgent, route } from '../../src/domain/routing.ts';

/** Applies [command, time] pairs with no routing in between. */
function apply(cmds: readonly [Command, number][], ws: Workspace = emptyWorkspace): Workspace {
  let state = ws;
  for (const [c, at] of cmds) {
    const d = decide(state, c, at);
    if (isLeft(d)) throw new Error(`${c.type} rejected: ${d.left.detail}`);
    for (const f of d.right) state = evolve(state, f);
  }
  return state;
}

const agentAt = (id: string, skills: string[], since: number, capacity = 1): [Command, number][] => [
  [{ type: 'RegisterAgent', agentId: id, skills, capacity }, 0],
  [{ type: 'ChangeAgentState', agentId: id, state: 'available' }, since],
];
const contactAt = (id: string, skills: string[], at: number, priority = 0): [Command, number] => [
  { type: 'QueueContact', contactId: id, skills, priority },
  at,
];
const pairs = (ws: Workspace, at = 10_000) =>
  route(ws, at).assignments.map((a) => `${a.contactId}->${a.agentId}`);

describe('routing oracle', () => {
  it('gives a contact the longest available agent', () => {
    const ws = apply([...agentAt('a1', ['x'], 30), ...agentAt('a2', ['x'], 10), ...agentAt('a3', ['x'], 20)]);
    expect(longestAvailableAgent(ws, ['x'])?.id).toBe('a2');
    expect(pairs(apply([contactAt('c1', ['x'], 40)], ws))).toEqual(['c1->a2']);
  });

  it('breaks ties in available-since by agent id in byte order', () => {
    const ws = apply([...agentAt('b', ['x'], 10), ...agentAt('B', ['x'], 10), ...agentAt('a', ['x'], 10)]);
    // 'B' (0x42) < 'a' (0x61) < 'b' (0x62)
    expect(
      pairs(apply([contactAt('c1', ['x'], 20), contactAt('c2', ['x'], 21), contactAt('c3', ['x'], 22)], ws)),
    ).toEqual(['c1->B', 'c2->a', 'c3->b']);
    // Byte order, not locale order: 'a10' < 'a9'.
    const ws2 = apply([...agentAt('a9', ['x'], 10), ...agentAt('a10', ['x'], 10)]);
    expect(longestAvailableAgent(ws2, ['x'])?.id).toBe('a10');
  });

  it('only agents holding every skill of the contact qualify', () => {
    const ws = apply([
      ...agentAt('a1', ['English'], 1),
      ...agentAt('a2', ['Billing', 'Spanish'], 2),
      ...agentAt('a3', ['Billing', 'English'], 3),
      contactAt('c1', ['Billing', 'English'], 10),
    ]);
    expect(pairs(ws)).toEqual(['c1->a3']);
  });

  it('serves priority first, then arrival order', () => {
    const ws = apply([
      contactAt('low1', ['x'], 1, 0),
      contactAt('high1', ['x'], 2, 5),
      contactAt('low2', ['x'], 3, 0),
      contactAt('high2', ['x'], 4, 5),
      contactAt('mid', ['x'], 5, 2),
      ...agentAt('a1', ['x'], 10),
      ...agentAt('a2', ['x'], 11),
      ...agentAt('a3', ['x'], 12),
      ...agentAt('a4', ['x'], 13),
    ]);
    expect(pairs(ws)).toEqual(['high1->a1', 'high2->a2', 'mid->a3', 'low1->a4']);
    const queued = [...ws.contacts.values()].sort(contactOrder).map((c) => c.id);
    expect(queued).toEqual(['high1', 'high2', 'mid', 'low1', 'low2']);
  });

  it('a contact nobody can serve does not hold back the contacts behind it', () => {
    const ws = apply([
      contactAt('needs-y', ['y'], 1, 9),
      contactAt('needs-xy', ['x', 'y'], 2, 0),
      contactAt('needs-x', ['x'], 3, 0),
      ...agentAt('a1', ['x'], 10),
    ]);
    const r = route(ws, 100);
    expect(r.assignments).toEqual([{ contactId: 'needs-x', agentId: 'a1' }]);
    expect(r.workspace.contacts.get('needs-y')?.state).toBe('queued');
    expect(r.workspace.contacts.get('needs-xy')?.state).toBe('queued');
    expect(r.workspace.contacts.get('needs-x')).toMatchObject({
      state: 'assigned',
      agentId: 'a1',
      assignedAt: 100,
    });
  });

  it('an agent with capacity > 1 keeps its score and stays first in line', () => {
    const ws = apply([
      ...agentAt('a1', ['x'], 10, 2),
      ...agentAt('a2', ['x'], 20, 1),
      contactAt('c1', ['x'], 30),
      contactAt('c2', ['x'], 31),
      contactAt('c3', ['x'], 32),
    ]);
    const r = route(ws, 100);
    expect(r.assignments.map((a) => `${a.contactId}->${a.agentId}`)).toEqual(['c1->a1', 'c2->a1', 'c3->a2']);
    expect(r.workspace.agents.get('a1')).toMatchObject({
      activeContacts: ['c1', 'c2'],
      availableSince: null,
    });
    expect(r.workspace.agents.get('a2')).toMatchObject({ activeContacts: ['c3'], availableSince: null });
  });

  it('after one assignment a capacity-2 agent keeps its original available-since', () => {
    const ws = apply([
      ...agentAt('a1', ['x'], 10, 2),
      ...agentAt('a2', ['x'], 20, 1),
      contactAt('c1', ['x'], 30),
    ]);
    const r = route(ws, 100);
    expect(r.assignments).toEqual([{ contactId: 'c1', agentId: 'a1' }]);
    expect(r.workspace.agents.get('a1')?.availableSince).toBe(10);
    // The next contact still goes to a1, longest available, ahead of a2.
    expect(pairs(apply([contactAt('c2', ['x'], 200)], r.workspace))).toEqual(['c2->a1']);
  });

  it('ignores agents that are away, offline or full, and contacts not queued', () => {
    let ws = apply([
      ...agentAt('away', ['x'], 1),
      [{ type: 'ChangeAgentState', agentId: 'away', state: 'away' }, 2],
      [{ type: 'RegisterAgent', agentId: 'offline', skills: ['x'], capacity: 1 }, 3],
      ...agentAt('ok', ['x'], 50),
      contactAt('gone', ['x'], 4),
      [{ type: 'AbandonContact', contactId: 'gone' }, 5],
      contactAt('c1', ['x'], 60),
      contactAt('c2', ['x'], 61),
    ]);
    expect(pairs(ws)).toEqual(['c1->ok']);
    ws = route(ws, 100).workspace;
    expect(route(ws, 200).assignments).toEqual([]);
  });

  it('is quiet when nothing can be assigned', () => {
    expect(route(emptyWorkspace, 1).assignments).toEqual([]);
    const ws = apply([...agentAt('a1', ['x'], 1), contactAt('c1', ['y'], 2)]);
    const r = route(ws, 3);
    expect(r.assignments).toEqual([]);
    expect(r.workspace).toBe(ws);
  });
});

describe('routing order under priority aging', () => {
  it('breaks an exact tie of routing keys (weights changed between arrivals) by contact id, as Redis orders a queue', () => {
    // c4 arrived first under weight 20, c10 171 ms later under weight 1: (9 × 20 − 9 × 1) × 128 =
    // 171 × 128 ticks, so both keys are the same. Redis lists "<set>|A|<key>|c10" before "...|c4".
    const tick = 1_000_000;
    const c4 = { id: 'c4', priority: 0, seq: 4, key: (tick + 9 * 20 * 128) * 10 + 9 } as never;
    const c10 = { id: 'c10', priority: 0, seq: 10, key: (tick + 171 * 128 + 9 * 1 * 128) * 10 + 9 } as never;
    expect((c4 as { key: number }).key).toBe((c10 as { key: number }).key);
    expect([c4, c10].sort(contactOrder).map((c: { id: string }) => c.id)).toEqual(['c10', 'c4']);
    expect(['sb|A|1|c4', 'sb|A|1|c10'].sort()).toEqual(['sb|A|1|c10', 'sb|A|1|c4']);
  });
});
