import { isLeft, isRight } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import type { Command } from '../../src/domain/commands.ts';
import {
  type Agent,
  agentState,
  canTakeWork,
  type Decision,
  decide,
  emptyWorkspace,
  evolve,
  type Fact,
  type Workspace,
  withAvailability,
} from '../../src/domain/model.ts';
import { nextAssignment } from '../../src/domain/routing.ts';

/** Applies commands in order (time = index * 10 + 1000 unless given), failing on a rejection. */
function run(cmds: readonly (Command | [Command, number])[], ws: Workspace = emptyWorkspace): Workspace {
  let state = ws;
  cmds.forEach((entry, i) => {
    const [c, at] = Array.isArray(entry) ? entry : [entry, 1000 + i * 10];
    const d = decide(state, c, at);
    if (isLeft(d)) throw new Error(`${c.type} rejected: ${d.left.detail}`);
    for (const f of d.right) state = evolve(state, f);
  });
  return state;
}

function facts(d: Decision): readonly Fact[] {
  if (isLeft(d)) throw new Error(`rejected: ${d.left.status} ${d.left.detail}`);
  return d.right;
}

function rejection(d: Decision) {
  if (isRight(d)) throw new Error(`expected a rejection, got ${JSON.stringify(d.right)}`);
  return d.left;
}

const register = (agentId: string, skills: string[] = ['a'], capacity = 1): Command => ({
  type: 'RegisterAgent',
  agentId,
  skills,
  capacity,
});
const state = (agentId: string, s: 'available' | 'away' | 'offline'): Command => ({
  type: 'ChangeAgentState',
  agentId,
  state: s,
});
const queue = (contactId: string, skills: string[] = ['a'], priority = 0): Command => ({
  type: 'QueueContact',
  contactId,
  skills,
  priority,
});
const assign = (ws: Workspace, contactId: string, agentId: string, at: number): Workspace =>
  evolve(ws, { type: 'AssignmentMade', contactId, agentId, at });

const agent = (ws: Workspace, id: string): Agent => {
  const a = ws.agents.get(id);
  if (!a) throw new Error(`no agent ${id}`);
  return a;
};

describe('RegisterAgent', () => {
  it('registers an offline agent with no score', () => {
    const f = facts(
      decide(emptyWorkspace, { ...register('a1', ['x', 'y'], 2), name: 'Ann' } as Command, 500),
    );
    expect(f).toEqual([
      {
        type: 'AgentRegistered',
        agent: {
          id: 'a1',
          name: 'Ann',
          skills: ['x', 'y'],
          capacity: 2,
          presence: 'offline',
          activeContacts: [],
          availableSince: null,
          registeredAt: 500,
        },
      },
    ]);
  });

  it('rejects a second registration with 409', () => {
    const ws = run([register('a1')]);
    const r = rejection(decide(ws, register('a1', ['b']), 2000));
    expect(r.status).toBe(409);
    expect(r.title).toBe('Agent already exists');
  });
});

describe('ChangeAgentState', () => {
  it('available: the agent takes work from the time of the command', () => {
    const ws = run([register('a1')]);
    const f = facts(decide(ws, state('a1', 'available'), 1234));
    expect(f).toHaveLength(1);
    const fact = f[0]!;
    expect(fact.type).toBe('AgentStateChanged');
    if (fact.type !== 'AgentStateChanged') return;
    expect(fact.from).toBe('offline');
    expect(fact.to).toBe('available');
    expect(fact.agent.presence).toBe('available');
    expect(fact.agent.availableSince).toBe(1234);
  });

  it('the same presence again is accepted with no facts', () => {
    const ws = run([register('a1'), state('a1', 'available')]);
    expect(facts(decide(ws, state('a1', 'available'), 5000))).toEqual([]);
    expect(facts(decide(run([register('a2')]), state('a2', 'offline'), 5000))).toEqual([]);
  });

  it('away or offline drops the score; coming back gets a new one', () => {
    let ws = run([
      [register('a1'), 1],
      [state('a1', 'available'), 10],
      [state('a1', 'away'), 20],
    ]);
    expect(agent(ws, 'a1').availableSince).toBeNull();
    expect(agentState(agent(ws, 'a1'))).toBe('away');
    ws = run([[state('a1', 'available'), 30]], ws);
    expect(agent(ws, 'a1').availableSince).toBe(30);
  });

  it('an agent at capacity going available is busy, with no score', () => {
    let ws = run([register('a1'), state('a1', 'available'), queue('c1')]);
    ws = assign(ws, 'c1', 'a1', 2000);
    ws = run([state('a1', 'away')], ws);
    const f = facts(decide(ws, state('a1', 'available'), 3000))[0]!;
    expect(f.type === 'AgentStateChanged' && [f.from, f.to, f.agent.availableSince]).toEqual([
      'away',
      'busy',
      null,
    ]);
  });

  it('rejects an unknown agent with 404', () => {
    const r = rejection(decide(emptyWorkspace, state('ghost', 'available'), 1));
    expect(r.status).toBe(404);
    expect(r.title).toBe('Agent not found');
  });
});

describe('UpdateAgent', () => {
  it('changes skills, capacity and name; keeps the score while the agent stays able to work', () => {
    const ws = run([
      [register('a1', ['a'], 1), 1],
      [state('a1', 'available'), 10],
    ]);
    const f = facts(
      decide(ws, { type: 'UpdateAgent', agentId: 'a1', skills: ['a', 'b'], capacity: 3, name: 'Bo' }, 99),
    );
    expect(f).toHaveLength(1);
    const a = f[0]!.type === 'AgentUpdated' ? f[0]!.agent : undefined;
    expect(a).toMatchObject({ skills: ['a', 'b'], capacity: 3, name: 'Bo', availableSince: 10 });
  });

  it('raising capacity of a busy agent makes it able to work from that time', () => {
    let ws = run([register('a1'), state('a1', 'available'), queue('c1')]);
    ws = assign(ws, 'c1', 'a1', 2000);
    expect(agent(ws, 'a1').availableSince).toBeNull();
    ws = run([[{ type: 'UpdateAgent', agentId: 'a1', capacity: 2 }, 2500]], ws);
    expect(agent(ws, 'a1').availableSince).toBe(2500);
    expect(agentState(agent(ws, 'a1'))).toBe('available');
  });

  it('lowering capacity to the active count drops the score', () => {
    let ws = run([register('a1', ['a'], 2), state('a1', 'available'), queue('c1')]);
    ws = assign(ws, 'c1', 'a1', 2000);
    expect(agent(ws, 'a1').availableSince).toBe(1010);
    ws = run([[{ type: 'UpdateAgent', agentId: 'a1', capacity: 1 }, 2500]], ws);
    expect(agent(ws, 'a1').availableSince).toBeNull();
    expect(agentState(agent(ws, 'a1'))).toBe('busy');
  });

  it('rejects an unknown agent with 404', () => {
    expect(
      rejection(decide(emptyWorkspace, { type: 'UpdateAgent', agentId: 'x', capacity: 2 }, 1)).status,
    ).toBe(404);
  });
});

describe('RemoveAgent', () => {
  it('removes an idle agent', () => {
    const ws = run([register('a1'), state('a1', 'available')]);
    expect(facts(decide(ws, { type: 'RemoveAgent', agentId: 'a1' }, 5))).toEqual([
      { type: 'AgentRemoved', agentId: 'a1' },
    ]);
    expect(run([{ type: 'RemoveAgent', agentId: 'a1' }], ws).agents.has('a1')).toBe(false);
  });

  it('rejects 409 while the agent holds contacts, 404 when unknown', () => {
    let ws = run([register('a1'), state('a1', 'available'), queue('c1')]);
    ws = assign(ws, 'c1', 'a1', 2000);
    const r = rejection(decide(ws, { type: 'RemoveAgent', agentId: 'a1' }, 3000));
    expect(r.status).toBe(409);
    expect(r.detail).toContain('c1');
    expect(rejection(decide(ws, { type: 'RemoveAgent', agentId: 'a9' }, 3000)).status).toBe(404);
  });
});

describe('QueueContact', () => {
  it('queues with the next arrival number', () => {
    const ws = run([queue('c1'), queue('c2', ['b'], 3)]);
    expect(ws.seq).toBe(2);
    expect(ws.contacts.get('c2')).toMatchObject({ state: 'queued', seq: 2, priority: 3, skills: ['b'] });
    const f = facts(decide(ws, { ...queue('c3'), attributes: { vip: true } } as Command, 777));
    expect(f).toEqual([
      {
        type: 'ContactQueued',
        contact: {
          id: 'c3',
          skills: ['a'],
          channel: 'voice',
          priority: 0,
          attributes: { vip: true },
          state: 'queued',
          seq: 3,
          queuedAt: 777,
          // Times before TICK_EPOCH: each arrival takes the next tick.
          tick: 3,
        },
      },
    ]);
  });

  it('rejects a reused id with 409, whatever state the contact is in', () => {
    let ws = run([queue('c1'), { type: 'AbandonContact', contactId: 'c1' }]);
    expect(rejection(decide(ws, queue('c1'), 1)).status).toBe(409);
    ws = run([queue('c2')], ws);
    expect(rejection(decide(ws, queue('c2', ['b']), 1)).title).toBe('Contact already exists');
    // A rejected queueing does not use up an arrival number.
    expect(ws.seq).toBe(2);
  });
});

describe('AbandonContact', () => {
  it('abandons a queued contact', () => {
    const ws = run([queue('c1')]);
    expect(facts(decide(ws, { type: 'AbandonContact', contactId: 'c1' }, 42))).toEqual([
      { type: 'ContactAbandoned', contactId: 'c1', at: 42 },
    ]);
    const after = run([[{ type: 'AbandonContact', contactId: 'c1' }, 42]], ws);
    expect(after.contacts.get('c1')).toMatchObject({ state: 'abandoned', abandonedAt: 42 });
  });

  it('rejects 404 for an unknown contact, 409 for one that is not queued', () => {
    expect(rejection(decide(emptyWorkspace, { type: 'AbandonContact', contactId: 'c' }, 1)).status).toBe(404);
    let ws = run([register('a1'), state('a1', 'available'), queue('c1')]);
    ws = assign(ws, 'c1', 'a1', 2000);
    expect(rejection(decide(ws, { type: 'AbandonContact', contactId: 'c1' }, 1)).status).toBe(409);
    ws = run([queue('c2'), { type: 'AbandonContact', contactId: 'c2' }], ws);
    expect(rejection(decide(ws, { type: 'AbandonContact', contactId: 'c2' }, 1)).status).toBe(409);
  });
});

describe('AssignmentMade and CompleteContact', () => {
  it('assignment: contact assigned, agent holds it; a full agent loses its score', () => {
    let ws = run([register('a1'), state('a1', 'available'), queue('c1')]);
    ws = assign(ws, 'c1', 'a1', 2000);
    expect(ws.contacts.get('c1')).toMatchObject({ state: 'assigned', agentId: 'a1', assignedAt: 2000 });
    expect(agent(ws, 'a1')).toMatchObject({ activeContacts: ['c1'], availableSince: null });
    expect(agentState(agent(ws, 'a1'))).toBe('busy');
  });

  it('an agent with spare capacity keeps its score after an assignment', () => {
    let ws = run([
      [register('a1', ['a'], 2), 1],
      [state('a1', 'available'), 10],
      [queue('c1'), 20],
    ]);
    ws = assign(ws, 'c1', 'a1', 30);
    expect(agent(ws, 'a1')).toMatchObject({ activeContacts: ['c1'], availableSince: 10 });
    expect(canTakeWork(agent(ws, 'a1'))).toBe(true);
  });

  it('completing frees the agent: a full agent gets a new score, a partly busy one keeps its own', () => {
    let ws = run([
      [register('a1', ['a'], 1), 1],
      [register('a2', ['a'], 2), 2],
      [state('a1', 'available'), 10],
      [state('a2', 'available'), 11],
      [queue('c1'), 20],
      [queue('c2'), 21],
    ]);
    ws = assign(ws, 'c1', 'a1', 25);
    ws = assign(ws, 'c2', 'a2', 25);
    const f = facts(decide(ws, { type: 'CompleteContact', contactId: 'c1' }, 50));
    expect(f).toEqual([{ type: 'ContactCompleted', contactId: 'c1', agentId: 'a1', at: 50 }]);
    ws = run(
      [
        [{ type: 'CompleteContact', contactId: 'c1' }, 50],
        [{ type: 'CompleteContact', contactId: 'c2' }, 60],
      ],
      ws,
    );
    expect(ws.contacts.get('c1')).toMatchObject({ state: 'completed', completedAt: 50, agentId: 'a1' });
    expect(agent(ws, 'a1')).toMatchObject({ activeContacts: [], availableSince: 50 });
    expect(agent(ws, 'a2')).toMatchObject({ activeContacts: [], availableSince: 11 });
  });

  it('completing while away frees the capacity but the agent stays away', () => {
    let ws = run([register('a1'), state('a1', 'available'), queue('c1')]);
    ws = assign(ws, 'c1', 'a1', 2000);
    ws = run([state('a1', 'away'), { type: 'CompleteContact', contactId: 'c1' }], ws);
    expect(agent(ws, 'a1')).toMatchObject({ presence: 'away', activeContacts: [], availableSince: null });
  });

  it('rejects 404 for an unknown contact, 409 for one that is not assigned', () => {
    expect(rejection(decide(emptyWorkspace, { type: 'CompleteContact', contactId: 'c' }, 1)).status).toBe(
      404,
    );
    let ws = run([queue('c1')]);
    const r = rejection(decide(ws, { type: 'CompleteContact', contactId: 'c1' }, 1));
    expect([r.status, r.title]).toEqual([409, 'Contact is not assigned']);
    ws = run([register('a1'), state('a1', 'available')], ws);
    ws = assign(ws, 'c1', 'a1', 2000);
    ws = run([{ type: 'CompleteContact', contactId: 'c1' }], ws);
    expect(rejection(decide(ws, { type: 'CompleteContact', contactId: 'c1' }, 1)).status).toBe(409);
  });
});

describe('withAvailability', () => {
  const base: Agent = {
    id: 'a',
    skills: ['a'],
    capacity: 1,
    presence: 'available',
    activeContacts: [],
    availableSince: 5,
    registeredAt: 0,
  };
  it('keeps, sets or clears the score', () => {
    expect(withAvailability(base, { ...base, name: 'x' }, 9).availableSince).toBe(5);
    expect(withAvailability(undefined, { ...base, availableSince: null }, 9).availableSince).toBe(9);
    expect(withAvailability(base, { ...base, presence: 'away' }, 9).availableSince).toBeNull();
    expect(
      withAvailability({ ...base, presence: 'away', availableSince: null }, base, 9).availableSince,
    ).toBe(9);
  });
});

describe('channels', () => {
  const declare = (channels: string[]): Command => ({
    type: 'ChangeSettings',
    offerTimeoutMs: 0,
    wrapUpMs: 0,
    missedOfferPresence: 'away',
    maxWaitMs: null,
    channels,
  });
  const onChannel = (contactId: string, channel: string, skills = ['a']): Command => ({
    type: 'QueueContact',
    contactId,
    skills,
    priority: 0,
    channel,
  });
  const perChannel = (agentId: string, capacity: Record<string, number>): Command => ({
    type: 'RegisterAgent',
    agentId,
    skills: ['a'],
    capacity,
  });

  it('a contact comes on voice unless it names a declared channel; others are refused with 422', () => {
    let ws = run([queue('c1')]);
    expect(ws.contacts.get('c1')?.channel).toBe('voice');
    const r = rejection(decide(ws, onChannel('c2', 'chat'), 1));
    expect([r.status, r.title]).toEqual([422, 'Channel not declared']);
    expect(r.detail).toContain('"chat"');
    expect(rejection(decide(ws, perChannel('a1', { chat: 1 }), 1)).status).toBe(422);
    ws = run([declare(['chat', 'voice']), onChannel('c2', 'chat')], ws);
    expect(ws.contacts.get('c2')?.channel).toBe('chat');
    expect(ws.settings.channels).toEqual(['chat', 'voice']);
  });

  it('channels are added, never removed; settings without channels keep them', () => {
    let ws = run([declare(['chat', 'voice'])]);
    const r = rejection(decide(ws, declare(['voice']), 1));
    expect([r.status, r.title]).toEqual([422, 'Channels cannot be removed']);
    const { channels: _, ...rest } = declare([]) as Extract<Command, { type: 'ChangeSettings' }>;
    ws = run([{ ...rest, wrapUpMs: 5 }], ws);
    expect(ws.settings).toMatchObject({ wrapUpMs: 5, channels: ['chat', 'voice'] });
  });

  it('capacity per channel: each channel has its own room and its own available-since', () => {
    let ws = run([
      declare(['chat', 'voice']),
      perChannel('a1', { voice: 1, chat: 2 }),
      [state('a1', 'available'), 100],
    ]);
    expect(agent(ws, 'a1')).toMatchObject({ availableSince: 100, channelSince: { voice: 100, chat: 100 } });
    ws = run([[onChannel('c1', 'chat'), 200]], ws);
    ws = assign(ws, 'c1', 'a1', 210);
    // Chat has room left: its since stays; voice is untouched.
    expect(agent(ws, 'a1')).toMatchObject({ busyOn: { chat: 1 }, channelSince: { voice: 100, chat: 100 } });
    ws = run([[onChannel('c2', 'chat'), 300]], ws);
    ws = assign(ws, 'c2', 'a1', 310);
    expect(agent(ws, 'a1').channelSince).toEqual({ voice: 100 });
    expect(agentState(agent(ws, 'a1'))).toBe('available');
    expect(canTakeWork(agent(ws, 'a1'))).toBe(true);
    ws = run([[queue('c3'), 400]], ws);
    ws = assign(ws, 'c3', 'a1', 410);
    expect(agent(ws, 'a1')).toMatchObject({ availableSince: null, busyOn: { chat: 2, voice: 1 } });
    expect(agent(ws, 'a1').channelSince).toBeUndefined();
    expect(agentState(agent(ws, 'a1'))).toBe('busy');
    // A chat completes: chat has room again, from then on.
    ws = run([[{ type: 'CompleteContact', contactId: 'c1' }, 500]], ws);
    expect(agent(ws, 'a1')).toMatchObject({
      availableSince: 500,
      channelSince: { chat: 500 },
      busyOn: { chat: 1, voice: 1 },
    });
  });

  it('the longest available across agents of any channel and agents with room on the channel', () => {
    let ws = run([
      declare(['chat', 'voice']),
      register('any', ['a'], 1),
      perChannel('chatter', { chat: 1 }),
      [state('chatter', 'available'), 100],
      [state('any', 'available'), 200],
    ]);
    expect(nextAssignment(run([onChannel('c1', 'chat')], ws))).toEqual({
      contactId: 'c1',
      agentId: 'chatter',
    });
    // The agent of chat only never gets voice.
    expect(nextAssignment(run([queue('c2')], ws))).toEqual({ contactId: 'c2', agentId: 'any' });
    ws = run([state('any', 'offline'), queue('c3')], ws);
    expect(nextAssignment(ws)).toBeUndefined();
  });

  it('changing capacity to per channel counts the contacts held on their channels', () => {
    let ws = run([declare(['chat', 'voice']), register('a1', ['a'], 3), [state('a1', 'available'), 100]]);
    ws = run([onChannel('c1', 'chat'), queue('c2')], ws);
    ws = assign(assign(ws, 'c1', 'a1', 200), 'c2', 'a1', 210);
    expect(agent(ws, 'a1').availableSince).toBe(100);
    ws = run([[{ type: 'UpdateAgent', agentId: 'a1', capacity: { chat: 2, voice: 1 } }, 300]], ws);
    // Voice is full; chat keeps the since the agent had.
    expect(agent(ws, 'a1')).toMatchObject({ busyOn: { chat: 1, voice: 1 }, channelSince: { chat: 100 } });
    ws = run([[{ type: 'UpdateAgent', agentId: 'a1', capacity: 2 }, 400]], ws);
    expect(agent(ws, 'a1').busyOn).toBeUndefined();
    expect(agent(ws, 'a1')).toMatchObject({ availableSince: null });
  });
});
