import * as E from 'fp-ts/lib/Either.js';
import type { AgentPresence, Command } from './commands.ts';
import type { AgentStateName, ContactStateName } from './views.ts';

/**
 * The pure model of a workspace: what every command means (`decide`) and what every fact
 * changes (`evolve`). The projector's Lua step implements the same rules against Redis; the
 * property tests hold the two side by side. Times are milliseconds; a command's time is the
 * time its stream entry was appended.
 */
export interface Agent {
  readonly id: string;
  readonly name?: string;
  readonly skills: readonly string[];
  readonly capacity: number;
  readonly presence: AgentPresence;
  readonly activeContacts: readonly string[];
  /** Score in the availability sets while the agent can take work; null otherwise. */
  readonly availableSince: number | null;
  readonly registeredAt: number;
}

export interface Contact {
  readonly id: string;
  readonly skills: readonly string[];
  readonly priority: number;
  readonly attributes?: Readonly<Record<string, unknown>>;
  readonly state: ContactStateName;
  /** Arrival order within the workspace: FIFO within a priority. */
  readonly seq: number;
  readonly queuedAt: number;
  readonly agentId?: string;
  readonly assignedAt?: number;
  readonly completedAt?: number;
  readonly abandonedAt?: number;
}

export interface Workspace {
  readonly agents: ReadonlyMap<string, Agent>;
  readonly contacts: ReadonlyMap<string, Contact>;
  readonly seq: number;
  /**
   * Finished (completed or abandoned) contacts not yet forgotten: id → finish time, in the order
   * they finished (finish times never go down along the log).
   */
  readonly finished: ReadonlyMap<string, number>;
}

export type Fact =
  | { readonly type: 'AgentRegistered'; readonly agent: Agent }
  | { readonly type: 'AgentUpdated'; readonly agent: Agent }
  | {
      readonly type: 'AgentStateChanged';
      readonly agent: Agent;
      readonly from: AgentStateName;
      readonly to: AgentStateName;
    }
  | { readonly type: 'AgentRemoved'; readonly agentId: string }
  | { readonly type: 'ContactQueued'; readonly contact: Contact }
  | { readonly type: 'ContactAbandoned'; readonly contactId: string; readonly at: number }
  | {
      readonly type: 'ContactCompleted';
      readonly contactId: string;
      readonly agentId: string;
      readonly at: number;
    }
  | {
      readonly type: 'AssignmentMade';
      readonly contactId: string;
      readonly agentId: string;
      readonly at: number;
    }
  | {
      readonly type: 'ContactsForgotten';
      readonly contactIds: readonly string[];
      /** Contacts finished before this time could be forgotten. */
      readonly before: number;
    };

export interface Rejection {
  readonly status: 404 | 409 | 422;
  readonly title: string;
  readonly detail: string;
}

/** What a command means: the facts it makes (Right), or why it is refused (Left). */
export type Decision = E.Either<Rejection, readonly Fact[]>;

/**
 * The most distinct agent skill sets that may hold one skill in a workspace. Routing a contact
 * walks the pools (available agents grouped by skill set) of its rarest skill, so this number
 * bounds the cost of every decision; a command that would pass it is refused with 422.
 */
export const MAX_SKILL_SETS_PER_SKILL = 1024;

/** Why an agent (`agentId`) may not take `skills`, or undefined when it may. */
export function skillSetRefusal(
  ws: Workspace,
  agentId: string,
  skills: readonly string[],
): Rejection | undefined {
  const name = skills.join(',');
  const own = ws.agents.get(agentId);
  if (own && own.skills.join(',') === name) return undefined;
  const others = new Set<string>();
  for (const a of ws.agents.values()) if (a.id !== agentId) others.add(a.skills.join(','));
  if (others.has(name)) return undefined;
  for (const skill of skills) {
    let n = 0;
    for (const set of others) if (set.split(',').includes(skill)) n++;
    if (n >= MAX_SKILL_SETS_PER_SKILL)
      return {
        status: 422,
        title: 'Too many distinct skill sets',
        detail:
          `Skill "${skill}" already belongs to ${n} distinct agent skill sets in this workspace, the limit that ` +
          'keeps every routing decision fast; give this agent a skill set another agent has, or change or remove ' +
          'agents whose skill sets are rare.',
      };
  }
  return undefined;
}

export const emptyWorkspace: Workspace = {
  agents: new Map(),
  contacts: new Map(),
  seq: 0,
  finished: new Map(),
};

/**
 * The contacts a ForgetContacts command at `at` removes: finished before `at - keepMs`, by finish
 * time then id (the order of the projector's sorted set), at most `max`. Walks `finished` in
 * finish order and stops past the cut or once `max` are found and the finish time changes.
 */
export function contactsToForget(
  finished: ReadonlyMap<string, number>,
  before: number,
  max: number,
): string[] {
  const due: [string, number][] = [];
  for (const [id, ms] of finished) {
    if (ms >= before) break;
    if (due.length >= max && ms !== due[due.length - 1]![1]) break;
    due.push([id, ms]);
  }
  due.sort(([a, x], [b, y]) => x - y || (a < b ? -1 : a > b ? 1 : 0));
  return due.slice(0, max).map(([id]) => id);
}

/** An agent takes work while it is present as available and below its capacity. */
export function canTakeWork(a: Pick<Agent, 'presence' | 'activeContacts' | 'capacity'>): boolean {
  return a.presence === 'available' && a.activeContacts.length < a.capacity;
}

export function agentState(a: Pick<Agent, 'presence' | 'activeContacts' | 'capacity'>): AgentStateName {
  if (a.presence !== 'available') return a.presence;
  return a.activeContacts.length >= a.capacity ? 'busy' : 'available';
}

/** Keeps the LAA score while an agent stays able to take work; a new score when it becomes able; none when not. */
export function withAvailability(before: Agent | undefined, after: Agent, at: number): Agent {
  if (!canTakeWork(after)) return { ...after, availableSince: null };
  if (before && canTakeWork(before) && before.availableSince !== null)
    return { ...after, availableSince: before.availableSince };
  return { ...after, availableSince: at };
}

const ok = (...facts: Fact[]): Decision => E.right(facts);
const reject = (status: Rejection['status'], title: string, detail: string): Decision =>
  E.left({ status, title, detail });
const noAgent = (id: string) =>
  reject(404, 'Agent not found', `No agent "${id}" in this workspace; register it first.`);
const noContact = (id: string) => reject(404, 'Contact not found', `No contact "${id}" in this workspace.`);

export function decide(ws: Workspace, c: Command, at: number): Decision {
  switch (c.type) {
    case 'RegisterAgent': {
      if (ws.agents.has(c.agentId))
        return reject(
          409,
          'Agent already exists',
          `Agent "${c.agentId}" is registered; change it with PATCH.`,
        );
      const refused = skillSetRefusal(ws, c.agentId, c.skills);
      if (refused) return E.left(refused);
      const agent: Agent = {
        id: c.agentId,
        ...(c.name !== undefined ? { name: c.name } : {}),
        skills: c.skills,
        capacity: c.capacity,
        presence: 'offline',
        activeContacts: [],
        availableSince: null,
        registeredAt: at,
      };
      return ok({ type: 'AgentRegistered', agent });
    }
    case 'UpdateAgent': {
      const before = ws.agents.get(c.agentId);
      if (!before) return noAgent(c.agentId);
      const refused = c.skills && skillSetRefusal(ws, c.agentId, c.skills);
      if (refused) return E.left(refused);
      const changed: Agent = {
        ...before,
        ...(c.name !== undefined ? { name: c.name } : {}),
        ...(c.skills !== undefined ? { skills: c.skills } : {}),
        ...(c.capacity !== undefined ? { capacity: c.capacity } : {}),
      };
      return ok({ type: 'AgentUpdated', agent: withAvailability(before, changed, at) });
    }
    case 'ChangeAgentState': {
      const before = ws.agents.get(c.agentId);
      if (!before) return noAgent(c.agentId);
      if (before.presence === c.state) return ok();
      const after = withAvailability(before, { ...before, presence: c.state }, at);
      return ok({ type: 'AgentStateChanged', agent: after, from: agentState(before), to: agentState(after) });
    }
    case 'RemoveAgent': {
      const before = ws.agents.get(c.agentId);
      if (!before) return noAgent(c.agentId);
      if (before.activeContacts.length > 0)
        return reject(
          409,
          'Agent has active contacts',
          `Agent "${c.agentId}" holds ${before.activeContacts.join(', ')}; complete them before removing the agent.`,
        );
      return ok({ type: 'AgentRemoved', agentId: c.agentId });
    }
    case 'QueueContact': {
      if (ws.contacts.has(c.contactId))
        return reject(
          409,
          'Contact already exists',
          `Contact "${c.contactId}" was queued before; use a new id.`,
        );
      const contact: Contact = {
        id: c.contactId,
        skills: c.skills,
        priority: c.priority,
        ...(c.attributes !== undefined ? { attributes: c.attributes } : {}),
        state: 'queued',
        seq: ws.seq + 1,
        queuedAt: at,
      };
      return ok({ type: 'ContactQueued', contact });
    }
    case 'AbandonContact': {
      const contact = ws.contacts.get(c.contactId);
      if (!contact) return noContact(c.contactId);
      if (contact.state !== 'queued')
        return reject(
          409,
          'Contact is not queued',
          `Contact "${c.contactId}" is ${contact.state}; only a queued contact can be abandoned.`,
        );
      return ok({ type: 'ContactAbandoned', contactId: c.contactId, at });
    }
    case 'CompleteContact': {
      const contact = ws.contacts.get(c.contactId);
      if (!contact) return noContact(c.contactId);
      if (contact.state !== 'assigned' || contact.agentId === undefined)
        return reject(
          409,
          'Contact is not assigned',
          `Contact "${c.contactId}" is ${contact.state}; only an assigned contact can be completed.`,
        );
      return ok({ type: 'ContactCompleted', contactId: c.contactId, agentId: contact.agentId, at });
    }
    case 'ForgetContacts': {
      const before = at - c.keepMs;
      const contactIds = contactsToForget(ws.finished, before, c.max);
      return contactIds.length > 0 ? ok({ type: 'ContactsForgotten', contactIds, before }) : ok();
    }
  }
}

export function evolve(ws: Workspace, f: Fact): Workspace {
  switch (f.type) {
    case 'AgentRegistered':
    case 'AgentUpdated':
    case 'AgentStateChanged':
      return { ...ws, agents: new Map(ws.agents).set(f.agent.id, f.agent) };
    case 'AgentRemoved': {
      const agents = new Map(ws.agents);
      agents.delete(f.agentId);
      return { ...ws, agents };
    }
    case 'ContactQueued':
      return { ...ws, seq: f.contact.seq, contacts: new Map(ws.contacts).set(f.contact.id, f.contact) };
    case 'ContactAbandoned':
      return finish(
        updateContact(ws, f.contactId, (c) => ({ ...c, state: 'abandoned', abandonedAt: f.at })),
        f.contactId,
        f.at,
      );
    case 'ContactCompleted': {
      const done = finish(
        updateContact(ws, f.contactId, (c) => ({ ...c, state: 'completed', completedAt: f.at })),
        f.contactId,
        f.at,
      );
      return updateAgent(done, f.agentId, f.at, (a) => ({
        ...a,
        activeContacts: a.activeContacts.filter((id) => id !== f.contactId),
      }));
    }
    case 'ContactsForgotten': {
      const contacts = new Map(ws.contacts);
      const finished = new Map(ws.finished);
      for (const id of f.contactIds) {
        contacts.delete(id);
        finished.delete(id);
      }
      return { ...ws, contacts, finished };
    }
    case 'AssignmentMade': {
      const assigned = updateContact(ws, f.contactId, (c) => ({
        ...c,
        state: 'assigned',
        agentId: f.agentId,
        assignedAt: f.at,
      }));
      return updateAgent(assigned, f.agentId, f.at, (a) => ({
        ...a,
        activeContacts: [...a.activeContacts, f.contactId],
      }));
    }
  }
}

function finish(ws: Workspace, id: string, at: number): Workspace {
  return ws.contacts.has(id) ? { ...ws, finished: new Map(ws.finished).set(id, at) } : ws;
}

function updateContact(ws: Workspace, id: string, change: (c: Contact) => Contact): Workspace {
  const c = ws.contacts.get(id);
  return c ? { ...ws, contacts: new Map(ws.contacts).set(id, change(c)) } : ws;
}

function updateAgent(ws: Workspace, id: string, at: number, change: (a: Agent) => Agent): Workspace {
  const a = ws.agents.get(id);
  return a ? { ...ws, agents: new Map(ws.agents).set(id, withAvailability(a, change(a), at)) } : ws;
}
