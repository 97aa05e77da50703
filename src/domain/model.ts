import * as E from 'fp-ts/lib/Either.js';
import type { AgentPresence, Command, Step } from './commands.ts';
import { type ChannelCapacity, DEFAULT_CHANNEL } from './values.ts';
import type { AgentStateName, ContactStateName } from './views.ts';

/**
 * The pure model of a workspace: what every command means (`decide`) and what every fact
 * changes (`applyFact`, through `evolve` or the auditor's in-place state). The projector's and the
 * dispatcher's Lua steps implement the same rules against Redis; the property tests hold them
 * side by side. Times are milliseconds; a command's time is the time its stream entry was appended.
 */
export interface Settings {
  /** How long an offer waits for its agent's answer; 0: contacts are assigned directly. */
  readonly offerTimeoutMs: number;
  /** After-contact work after each completion (an agent's own `wrapUpMs` overrides it). */
  readonly wrapUpMs: number;
  /** The presence an agent is set to when it lets an offer expire. */
  readonly missedOfferPresence: AgentPresence;
  /** The longest a contact waits queued (its own `maxWaitMs` overrides it); null: no limit. */
  readonly maxWaitMs: number | null;
  /** The channels contacts may come on (byte order); channels are added, never removed. */
  readonly channels: readonly string[];
  /**
   * Priority aging: each priority point counts as this much earlier arrival (routing order is
   * arrival − priority × priorityWeightMs). Absent: strict priority, then arrival.
   */
  readonly priorityWeightMs?: number;
  /** How an agent is chosen among the eligible ones. Absent: longest-available. */
  readonly agentSelection?: AgentSelection;
}

export type AgentSelection = 'longest-available' | 'most-skilled' | 'least-occupied';

/**
 * Arrival ticks: a queued contact's arrival in 1/TICKS_PER_MS ms since TICK_EPOCH, strictly
 * increasing within a workspace (a contact arriving in the same tick as the one before, or earlier,
 * takes the next tick). Priority aging orders contacts by tick, so equal times never tie.
 */
export const TICK_EPOCH = Date.UTC(2026, 0, 1);
export const TICKS_PER_MS = 128;

/** The arrival tick of a contact queued at `at` after a contact with tick `last`. */
export function nextTick(last: number, at: number): number {
  return Math.max((at - TICK_EPOCH) * TICKS_PER_MS, last + 1);
}

/**
 * A contact's routing key under priority aging: (tick + (9 − priority) × weight in ticks) × 10 +
 * (9 − priority). Lower first; an exact tie of aged arrival goes to the higher priority. Exact
 * in a double while ticks stay under 2^46 (until 2043).
 */
export function agedKey(tick: number, priority: number, weightMs: number): number {
  return (tick + (9 - priority) * weightMs * TICKS_PER_MS) * 10 + (9 - priority);
}

export const DEFAULT_SETTINGS: Settings = {
  offerTimeoutMs: 0,
  wrapUpMs: 0,
  missedOfferPresence: 'away',
  maxWaitMs: null,
  channels: [DEFAULT_CHANNEL],
};

/** Settings as stored (fields may be missing), each missing one at its default; the optional ones stay absent. */
export function settingsWithDefaults(stored: Partial<Settings>): Settings {
  return {
    offerTimeoutMs: stored.offerTimeoutMs ?? DEFAULT_SETTINGS.offerTimeoutMs,
    wrapUpMs: stored.wrapUpMs ?? DEFAULT_SETTINGS.wrapUpMs,
    missedOfferPresence: stored.missedOfferPresence ?? DEFAULT_SETTINGS.missedOfferPresence,
    maxWaitMs: stored.maxWaitMs ?? DEFAULT_SETTINGS.maxWaitMs,
    channels: stored.channels ?? DEFAULT_SETTINGS.channels,
    ...(stored.priorityWeightMs !== undefined ? { priorityWeightMs: stored.priorityWeightMs } : {}),
    ...(stored.agentSelection !== undefined ? { agentSelection: stored.agentSelection } : {}),
  };
}

export interface WrapUp {
  /** The agent's wrap-ups so far, this one included: names its timer. */
  readonly n: number;
  readonly until: number;
}

export interface Agent {
  readonly id: string;
  readonly name?: string;
  readonly skills: readonly string[];
  /** One number: contacts at once on any channel. Per channel: each channel's own room. */
  readonly capacity: number | ChannelCapacity;
  readonly presence: AgentPresence;
  /** Contacts offered to or assigned to the agent: each takes one unit of capacity. */
  readonly activeContacts: readonly string[];
  /**
   * Score in the availability sets while the agent can take work; null otherwise. With capacity
   * per channel: the earliest of `channelSince`.
   */
  readonly availableSince: number | null;
  /** With capacity per channel: of `activeContacts`, how many are on each channel (absent: none). */
  readonly busyOn?: ChannelCapacity;
  /** With capacity per channel: each channel the agent can take work on now → its available-since. */
  readonly channelSince?: ChannelCapacity;
  readonly registeredAt: number;
  /** The agent's own wrap-up time, instead of the workspace's. */
  readonly wrapUpMs?: number;
  /** Of `activeContacts`, those offered and not accepted yet, in the order offered. */
  readonly offers?: readonly string[];
  /** The wrap-up running, if any. */
  readonly wrapUp?: WrapUp;
  /** Wrap-ups started so far. */
  readonly wrapUps?: number;
}

export interface Offer {
  readonly agentId: string;
  /** The contact's offers so far, this one included: names its timer. */
  readonly id: number;
  readonly expiresAt: number;
}

export interface Contact {
  readonly id: string;
  readonly skills: readonly string[];
  /** The channel it came on (absent in data written before channels: voice). */
  readonly channel?: string;
  readonly priority: number;
  readonly attributes?: Readonly<Record<string, unknown>>;
  readonly state: ContactStateName;
  /** Arrival order within the workspace: FIFO within a priority. */
  readonly seq: number;
  readonly queuedAt: number;
  /** Its arrival tick (`nextTick`; absent in data written before priority aging). */
  readonly tick?: number;
  /** Its routing key while queued under priority aging (`agedKey`, set when it entered the queue). */
  readonly key?: number;
  readonly agentId?: string;
  readonly assignedAt?: number;
  readonly completedAt?: number;
  readonly abandonedAt?: number;
  /** The offer outstanding (state `offered`). */
  readonly offer?: Offer;
  /** Offers made so far. */
  readonly offers?: number;
  readonly acceptedAt?: number;
  /**
   * The last MAX_EXCLUDED_AGENTS agents that rejected it, let its offer expire or had it withdrawn,
   * oldest first: it is never offered to them while they are among them.
   */
  readonly excluded?: readonly string[];
  /** Its own maximum wait, and when it leaves the queue as expired (`queuedAt` + the wait). */
  readonly maxWaitMs?: number;
  readonly deadline?: number;
  readonly expiredAt?: number;
  /** Its routing steps, and how many of them have been taken (0 until the first is due). */
  readonly steps?: readonly Step[];
  readonly step?: number;
  /** Until `until`, only these agents may take it (then anyone eligible). */
  readonly preferred?: Preferred;
}

export interface Preferred {
  readonly agents: readonly string[];
  readonly until: number;
}

/** How long a contact waits for its preferred agents when it does not say. */
export const DEFAULT_PREFERRED_FOR_MS = 30_000;

export interface Workspace {
  readonly agents: ReadonlyMap<string, Agent>;
  readonly contacts: ReadonlyMap<string, Contact>;
  readonly seq: number;
  /** The last arrival tick given (absent: none yet). */
  readonly tick?: number;
  /**
   * Finished (completed, abandoned, expired) contacts not yet forgotten: id → finish time, in the
   * order they finished (finish times never go down along the log).
   */
  readonly finished: ReadonlyMap<string, number>;
  readonly settings: Settings;
}

/** Why an offer went back: the agent said no, or changed presence, or was removed. */
export type WithdrawReason = 'rejected' | 'presence' | 'removed';

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
    }
  | { readonly type: 'SettingsChanged'; readonly settings: Settings }
  | {
      readonly type: 'AssignmentAccepted';
      readonly contactId: string;
      readonly agentId: string;
      readonly at: number;
    }
  | {
      readonly type: 'AssignmentRejected';
      readonly contactId: string;
      readonly agentId: string;
      readonly at: number;
      readonly reason: WithdrawReason;
    }
  | {
      readonly type: 'AssignmentExpired';
      readonly contactId: string;
      readonly agentId: string;
      readonly at: number;
    }
  | {
      readonly type: 'WrapUpStarted';
      readonly agentId: string;
      readonly n: number;
      readonly until: number;
      readonly at: number;
    }
  | {
      readonly type: 'WrapUpEnded';
      readonly agentId: string;
      readonly n: number;
      readonly at: number;
      readonly early: boolean;
    }
  | { readonly type: 'ContactExpired'; readonly contactId: string; readonly at: number }
  | {
      readonly type: 'PreferenceEnded';
      readonly contactId: string;
      readonly at: number;
    }
  | {
      readonly type: 'ContactStepped';
      readonly contactId: string;
      /** The step taken (1-based). */
      readonly step: number;
      readonly skills: readonly string[];
      readonly priority: number;
      readonly at: number;
    }
  | {
      readonly type: 'ContactTransferred';
      readonly contactId: string;
      /** The agent whose assignment ended. */
      readonly agentId: string;
      readonly skills: readonly string[];
      readonly priority: number;
      readonly at: number;
    };

export interface Rejection {
  readonly status: 403 | 404 | 409 | 422;
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
  settings: DEFAULT_SETTINGS,
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

type Availability = Pick<Agent, 'presence' | 'activeContacts' | 'capacity' | 'wrapUp' | 'busyOn'>;

export const channelOf = (c: Pick<Contact, 'channel'>): string => c.channel ?? DEFAULT_CHANNEL;

/** Whether an agent is present as available and not wrapping up (room aside). */
function atWork(a: Availability): boolean {
  return a.presence === 'available' && a.wrapUp === undefined;
}

/**
 * A per-channel figure of an agent (capacity, contacts held, available-since): the object's own
 * entry only. Channels are clients' names, and a plain object answers `constructor` (a channel
 * name like any other) from Object.prototype.
 */
export function onChannel<T>(by: Readonly<Record<string, T>> | undefined, channel: string): T | undefined {
  return by !== undefined && Object.hasOwn(by, channel) ? by[channel] : undefined;
}

/** Whether an agent has room for a contact on `channel` (one number: room on any channel). */
export function hasRoomOn(a: Availability, channel: string): boolean {
  if (typeof a.capacity === 'number') return a.activeContacts.length < a.capacity;
  const cap = onChannel(a.capacity, channel);
  return cap !== undefined && (onChannel(a.busyOn, channel) ?? 0) < cap;
}

function hasRoom(a: Availability): boolean {
  if (typeof a.capacity === 'number') return a.activeContacts.length < a.capacity;
  for (const ch of Object.keys(a.capacity)) if (hasRoomOn(a, ch)) return true;
  return false;
}

/**
 * An agent takes work while it is present as available, not wrapping up, and below its capacity
 * (with capacity per channel: below it on some channel).
 */
export function canTakeWork(a: Availability): boolean {
  return atWork(a) && hasRoom(a);
}

/** Whether an agent may take a contact of `channel` now. */
export function canTakeOn(a: Availability, channel: string): boolean {
  return atWork(a) && hasRoomOn(a, channel);
}

/** An agent's place in the LAA order for contacts of `channel`, or undefined when it takes none now. */
export function sinceOn(a: Agent, channel: string): number | undefined {
  if (typeof a.capacity === 'number') return canTakeWork(a) ? (a.availableSince ?? undefined) : undefined;
  return onChannel(a.channelSince, channel);
}

export function agentState(a: Availability & Pick<Agent, 'offers'>): AgentStateName {
  if (a.presence !== 'available') return a.presence;
  if (a.wrapUp !== undefined) return 'wrapup';
  if (a.offers !== undefined && a.offers.length > 0) return 'reserved';
  return hasRoom(a) ? 'available' : 'busy';
}

/** The agent without per-channel fields (capacity one number again). */
function withoutChannels(a: Agent): Agent {
  const { busyOn: _b, channelSince: _c, ...rest } = a;
  return rest;
}

/**
 * Keeps the LAA score while an agent stays able to take work; a new score when it becomes able;
 * none when not. With capacity per channel, the same holds for each channel on its own.
 */
export function withAvailability(before: Agent | undefined, after: Agent, at: number): Agent {
  if (typeof after.capacity === 'number') {
    const plain =
      after.busyOn !== undefined || after.channelSince !== undefined ? withoutChannels(after) : after;
    if (!canTakeWork(plain)) return { ...plain, availableSince: null };
    if (before && canTakeWork(before) && before.availableSince !== null)
      return { ...plain, availableSince: before.availableSince };
    return { ...plain, availableSince: at };
  }
  const { channelSince: _c, ...rest } = after;
  const since: Record<string, number> = {};
  let first: number | null = null;
  for (const ch of Object.keys(after.capacity)) {
    if (!canTakeOn(after, ch)) continue;
    const kept = before && canTakeOn(before, ch) ? sinceOn(before, ch) : undefined;
    const s = kept ?? at;
    since[ch] = s;
    if (first === null || s < first) first = s;
  }
  return first === null
    ? { ...rest, availableSince: null }
    : { ...rest, availableSince: first, channelSince: since };
}

/** Contacts per channel of `contactIds` (for an agent given capacity per channel). */
export function busyOnOf(ws: Workspace, contactIds: readonly string[]): ChannelCapacity {
  const out: Record<string, number> = {};
  for (const id of contactIds) {
    const c = ws.contacts.get(id);
    const ch = c ? channelOf(c) : DEFAULT_CHANNEL;
    out[ch] = (onChannel(out, ch) ?? 0) + 1;
  }
  return out;
}

/** An agent's per-channel count, `channel` changed by `by` (only with capacity per channel). */
function busyAfter(a: Agent, channel: string, by: number): Pick<Agent, 'busyOn'> {
  if (typeof a.capacity === 'number') return {};
  const out: Record<string, number> = { ...a.busyOn };
  const n = (onChannel(out, channel) ?? 0) + by;
  if (n > 0) out[channel] = n;
  else delete out[channel];
  return { busyOn: out };
}

/**
 * The agent without one of its contacts (offered or assigned, on `channel`), its availability
 * kept in step.
 */
export function releasing(a: Agent, contactId: string, channel: string, at: number): Agent {
  const activeContacts = a.activeContacts.filter((id) => id !== contactId);
  const busy = busyAfter(a, channel, -1);
  if (a.offers === undefined) return withAvailability(a, { ...a, activeContacts, ...busy }, at);
  return withAvailability(
    a,
    {
      ...withOffers(
        a,
        a.offers.filter((id) => id !== contactId),
        activeContacts,
      ),
      ...busy,
    },
    at,
  );
}

/**
 * The agent with these offers (none: no `offers` field). Records are built without the field
 * rather than by deleting it: the auditor builds millions of them, and an object a property was
 * deleted from is a slower one in V8.
 */
function withOffers(a: Agent, offers: readonly string[], activeContacts = a.activeContacts): Agent {
  const { offers: _, ...rest } = a;
  return offers.length > 0 ? { ...rest, activeContacts, offers } : { ...rest, activeContacts };
}

function withoutWrapUp(a: Agent): Agent {
  const { wrapUp: _, ...rest } = a;
  return rest;
}

/** The wrap-up time that applies to an agent. */
export function wrapUpOf(a: Agent, settings: Settings): number {
  return a.wrapUpMs ?? settings.wrapUpMs;
}

const ok = (...facts: Fact[]): Decision => E.right(facts);
const reject = (status: Rejection['status'], title: string, detail: string): Decision =>
  E.left({ status, title, detail });
const noAgent = (id: string) =>
  reject(404, 'Agent not found', `No agent "${id}" in this workspace; register it first.`);
const noContact = (id: string): Decision => E.left(contactNotFound(id));

/**
 * An agent's presence changed to `presence` at `at`: its outstanding offers are withdrawn first
 * (each back to the queue at its place, not offered to it again while among its last
 * MAX_EXCLUDED_AGENTS exclusions), a wrap-up running ends, and
 * the AgentStateChanged carries the agent as it is after all of it.
 */
function presenceChange(ws: Workspace, before: Agent, presence: AgentPresence, at: number): Fact[] {
  const facts: Fact[] = [];
  let a = before;
  for (const contactId of before.offers ?? []) {
    facts.push({ type: 'AssignmentRejected', contactId, agentId: a.id, at, reason: 'presence' });
    const c = ws.contacts.get(contactId);
    a = releasing(a, contactId, c ? channelOf(c) : DEFAULT_CHANNEL, at);
  }
  const changed: Agent = { ...withoutWrapUp(a), presence };
  const after = withAvailability(a, changed, at);
  facts.push({ type: 'AgentStateChanged', agent: after, from: agentState(before), to: agentState(after) });
  return facts;
}

const contactNotFound = (id: string): Rejection => ({
  status: 404,
  title: 'Contact not found',
  detail: `No contact "${id}" in this workspace.`,
});

function offeredTo(ws: Workspace, contactId: string, agentId: string, verb: string): Contact | Rejection {
  const contact = ws.contacts.get(contactId);
  if (!contact) return contactNotFound(contactId);
  if (contact.state !== 'offered' || contact.offer === undefined)
    return {
      status: 409,
      title: 'Contact is not offered',
      detail: `Contact "${contactId}" is ${contact.state}; only an offered contact can be ${verb}.`,
    };
  if (contact.offer.agentId !== agentId)
    return {
      status: 409,
      title: 'Offer made to another agent',
      detail: `Contact "${contactId}" is offered to another agent, not to "${agentId}"; only that agent can answer it.`,
    };
  return contact;
}

const isRejection = (x: Contact | Rejection): x is Rejection => 'status' in x;

/** Why an `agent` key may not act on a contact: it is not offered or assigned to the key's agent. */
export const notItsContactDetail = (contactId: string, agentId: string): string =>
  `Contact "${contactId}" is not offered or assigned to agent "${agentId}", whom this key acts for.`;

/** The contact assigned to an agent, or why a command that needs one (`verb`) is refused. */
function assignedContact(
  ws: Workspace,
  contactId: string,
  verb: string,
): (Contact & { readonly agentId: string }) | Rejection {
  const contact = ws.contacts.get(contactId);
  if (!contact) return contactNotFound(contactId);
  if (contact.state !== 'assigned' || contact.agentId === undefined)
    return {
      status: 409,
      title: 'Contact is not assigned',
      detail: `Contact "${contactId}" is ${contact.state}; only an assigned contact can be ${verb}.`,
    };
  return contact as Contact & { readonly agentId: string };
}

/** The wrap-up an agent starts when its assignment ends (completed, transferred), if any. */
function wrapUpAfter(ws: Workspace, agentId: string, at: number): Fact[] {
  const agent = ws.agents.get(agentId);
  const wrap = agent ? wrapUpOf(agent, ws.settings) : 0;
  if (!agent || wrap === 0 || agent.presence !== 'available') return [];
  const n = (agent.wrapUps ?? 0) + 1;
  return [{ type: 'WrapUpStarted', agentId: agent.id, n, until: at + wrap, at }];
}

/** Why a capacity per channel may not be given: a channel the workspace has not declared. */
function capacityRefusal(
  ws: Workspace,
  capacity: number | ChannelCapacity | undefined,
): Decision | undefined {
  if (capacity === undefined || typeof capacity === 'number') return undefined;
  const unknown = Object.keys(capacity).filter((ch) => !ws.settings.channels.includes(ch));
  if (unknown.length === 0) return undefined;
  return reject(
    422,
    'Channel not declared',
    `capacity names ${unknown.map((ch) => `"${ch}"`).join(', ')}, not among this workspace's channels ` +
      `(${ws.settings.channels.join(', ')}); add it to the settings' channels first (PUT /settings).`,
  );
}

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
      const noChannel = capacityRefusal(ws, c.capacity);
      if (noChannel) return noChannel;
      const agent: Agent = {
        id: c.agentId,
        ...(c.name !== undefined ? { name: c.name } : {}),
        skills: c.skills,
        capacity: c.capacity,
        presence: 'offline',
        activeContacts: [],
        availableSince: null,
        registeredAt: at,
        ...(c.wrapUpMs !== undefined ? { wrapUpMs: c.wrapUpMs } : {}),
      };
      return ok({ type: 'AgentRegistered', agent });
    }
    case 'UpdateAgent': {
      const before = ws.agents.get(c.agentId);
      if (!before) return noAgent(c.agentId);
      const refused = c.skills && skillSetRefusal(ws, c.agentId, c.skills);
      if (refused) return E.left(refused);
      const noChannel = capacityRefusal(ws, c.capacity);
      if (noChannel) return noChannel;
      const perChannel = c.capacity !== undefined && typeof c.capacity !== 'number';
      // wrapUpMs null removes the agent's own wrap-up time: the workspace's applies again.
      const { wrapUpMs: _own, ...kept } = before;
      const changed: Agent = {
        ...(c.wrapUpMs === null ? kept : before),
        ...(c.name !== undefined ? { name: c.name } : {}),
        ...(c.skills !== undefined ? { skills: c.skills } : {}),
        ...(c.capacity !== undefined ? { capacity: c.capacity } : {}),
        ...(perChannel ? { busyOn: busyOnOf(ws, before.activeContacts) } : {}),
        ...(typeof c.wrapUpMs === 'number' ? { wrapUpMs: c.wrapUpMs } : {}),
      };
      return ok({ type: 'AgentUpdated', agent: withAvailability(before, changed, at) });
    }
    case 'ChangeAgentState': {
      const before = ws.agents.get(c.agentId);
      if (!before) return noAgent(c.agentId);
      if (before.presence === c.state) {
        // Available again while wrapping up: the wrap-up ends early.
        if (c.state === 'available' && before.wrapUp)
          return ok({ type: 'WrapUpEnded', agentId: before.id, n: before.wrapUp.n, at, early: true });
        return ok();
      }
      return ok(...presenceChange(ws, before, c.state, at));
    }
    case 'RemoveAgent': {
      const before = ws.agents.get(c.agentId);
      if (!before) return noAgent(c.agentId);
      const offered = new Set(before.offers ?? []);
      const held = before.activeContacts.filter((id) => !offered.has(id));
      if (held.length > 0)
        return reject(
          409,
          'Agent has active contacts',
          `Agent "${c.agentId}" holds ${held.join(', ')}; complete them before removing the agent.`,
        );
      const facts: Fact[] = [...offered].map((contactId) => ({
        type: 'AssignmentRejected' as const,
        contactId,
        agentId: before.id,
        at,
        reason: 'removed' as const,
      }));
      return ok(...facts, { type: 'AgentRemoved', agentId: c.agentId });
    }
    case 'QueueContact': {
      if (ws.contacts.has(c.contactId))
        return reject(
          409,
          'Contact already exists',
          `Contact "${c.contactId}" was queued before; use a new id.`,
        );
      const channel = c.channel ?? DEFAULT_CHANNEL;
      if (!ws.settings.channels.includes(channel))
        return reject(
          422,
          'Channel not declared',
          `channel "${channel}" is not among this workspace's channels (${ws.settings.channels.join(', ')}); ` +
            "add it to the settings' channels first (PUT /settings).",
        );
      const wait = c.maxWaitMs ?? ws.settings.maxWaitMs;
      const contact: Contact = {
        id: c.contactId,
        skills: c.skills,
        channel,
        priority: c.priority,
        ...(c.attributes !== undefined ? { attributes: c.attributes } : {}),
        state: 'queued',
        seq: ws.seq + 1,
        queuedAt: at,
        tick: nextTick(ws.tick ?? 0, at),
        ...(c.maxWaitMs !== undefined ? { maxWaitMs: c.maxWaitMs } : {}),
        ...(wait !== null ? { deadline: at + wait } : {}),
        ...(c.steps !== undefined ? { steps: c.steps, step: 0 } : {}),
        ...(c.preferredAgents !== undefined
          ? {
              preferred: {
                agents: c.preferredAgents,
                until: at + (c.preferredForMs ?? DEFAULT_PREFERRED_FOR_MS),
              },
            }
          : {}),
      };
      return ok({ type: 'ContactQueued', contact: keyed(contact, ws.settings) });
    }
    case 'AbandonContact': {
      const contact = ws.contacts.get(c.contactId);
      if (!contact) return noContact(c.contactId);
      if (contact.state !== 'queued' && contact.state !== 'offered')
        return reject(
          409,
          'Contact is not queued',
          `Contact "${c.contactId}" is ${contact.state}; only a queued or offered contact can be abandoned.`,
        );
      return ok({ type: 'ContactAbandoned', contactId: c.contactId, at });
    }
    case 'CompleteContact': {
      // An agent key's completion, checked when it arrived; the contact may have left that agent
      // since (transferred and assigned to another): refused as the API's check refuses it.
      const held = ws.contacts.get(c.contactId);
      if (c.agentId !== undefined && held !== undefined && held.agentId !== c.agentId)
        return reject(403, 'Forbidden', notItsContactDetail(c.contactId, c.agentId));
      const contact = assignedContact(ws, c.contactId, 'completed');
      if (isRejection(contact)) return E.left(contact);
      const done: Fact = { type: 'ContactCompleted', contactId: c.contactId, agentId: contact.agentId, at };
      return ok(done, ...wrapUpAfter(ws, contact.agentId, at));
    }
    case 'TransferContact': {
      const contact = assignedContact(ws, c.contactId, 'transferred');
      if (isRejection(contact)) return E.left(contact);
      const moved: Fact = {
        type: 'ContactTransferred',
        contactId: c.contactId,
        agentId: contact.agentId,
        skills: c.skills,
        priority: c.priority ?? contact.priority,
        at,
      };
      return ok(moved, ...wrapUpAfter(ws, contact.agentId, at));
    }
    case 'ForgetContacts': {
      const before = at - c.keepMs;
      const contactIds = contactsToForget(ws.finished, before, c.max);
      return contactIds.length > 0 ? ok({ type: 'ContactsForgotten', contactIds, before }) : ok();
    }
    case 'ChangeSettings': {
      const { type: _, channels = ws.settings.channels, ...rest } = c;
      const dropped = ws.settings.channels.filter((ch) => !channels.includes(ch));
      if (dropped.length > 0)
        return reject(
          422,
          'Channels cannot be removed',
          `channels leaves out ${dropped.map((ch) => `"${ch}"`).join(', ')}; channels are added, never removed ` +
            '(contacts and agents may use them): send every current channel too.',
        );
      const aging = (s: Settings) => s.priorityWeightMs !== undefined;
      // The defaults are left out: the settings (and SettingsChanged) read as before these existed.
      const { agentSelection, priorityWeightMs, ...plain } = rest;
      const next: Settings = {
        ...plain,
        channels,
        ...(priorityWeightMs !== undefined ? { priorityWeightMs } : {}),
        ...(agentSelection !== undefined && agentSelection !== 'longest-available' ? { agentSelection } : {}),
      };
      if (aging(next) !== aging(ws.settings) && [...ws.contacts.values()].some((x) => x.state === 'queued'))
        return reject(
          409,
          'Contacts are queued',
          `priorityWeightMs can be ${aging(next) ? 'set' : 'removed'} only while no contact is queued (strict and ` +
            'aged routing orders do not mix); change its value instead, or try again when the queue is empty.',
        );
      const pooled = (s: Settings) => s.agentSelection === 'least-occupied';
      if (
        pooled(next) !== pooled(ws.settings) &&
        [...ws.agents.values()].some((a) => a.availableSince !== null)
      )
        return reject(
          409,
          'Agents are available',
          `agentSelection can ${pooled(next) ? 'become' : 'leave'} "least-occupied" only while no agent can take work ` +
            '(it orders the available agents differently); set the available agents away first, or try again later.',
        );
      return ok({ type: 'SettingsChanged', settings: next });
    }
    case 'AcceptOffer': {
      const contact = offeredTo(ws, c.contactId, c.agentId, 'accepted');
      if (isRejection(contact)) return E.left(contact);
      return ok({ type: 'AssignmentAccepted', contactId: c.contactId, agentId: c.agentId, at });
    }
    case 'RejectOffer': {
      const contact = offeredTo(ws, c.contactId, c.agentId, 'rejected');
      if (isRejection(contact)) return E.left(contact);
      return ok({
        type: 'AssignmentRejected',
        contactId: c.contactId,
        agentId: c.agentId,
        at,
        reason: 'rejected',
      });
    }
    case 'ExpireOffer': {
      // A timer: it changes something only while its offer is the one outstanding and due.
      const contact = ws.contacts.get(c.contactId);
      const offer = contact?.state === 'offered' ? contact.offer : undefined;
      if (!offer || offer.id !== c.offer || at < offer.expiresAt) return ok();
      const expired: Fact = { type: 'AssignmentExpired', contactId: c.contactId, agentId: offer.agentId, at };
      const agent = ws.agents.get(offer.agentId);
      if (!agent || agent.presence === ws.settings.missedOfferPresence) return ok(expired);
      return ok(
        expired,
        ...presenceChange(
          ws,
          releasing(agent, c.contactId, channelOf(contact!), at),
          ws.settings.missedOfferPresence,
          at,
        ),
      );
    }
    case 'EndWrapUp': {
      const agent = ws.agents.get(c.agentId);
      if (!agent?.wrapUp || agent.wrapUp.n !== c.wrapUp || at < agent.wrapUp.until) return ok();
      return ok({ type: 'WrapUpEnded', agentId: agent.id, n: agent.wrapUp.n, at, early: false });
    }
    case 'EndPreference': {
      // A timer: it changes something only while that arrival still waits for its preferred agents.
      const contact = ws.contacts.get(c.contactId);
      if (
        !contact?.preferred ||
        contact.seq !== c.seq ||
        (contact.state !== 'queued' && contact.state !== 'offered') ||
        at < contact.preferred.until
      )
        return ok();
      return ok({ type: 'PreferenceEnded', contactId: c.contactId, at });
    }
    case 'AdvanceStep': {
      // A timer: it changes something only while the contact (that arrival) still waits and this
      // step is its next one, and due.
      const contact = ws.contacts.get(c.contactId);
      const next = contact?.steps?.[c.step - 1];
      if (
        !contact ||
        !next ||
        contact.seq !== c.seq ||
        (contact.state !== 'queued' && contact.state !== 'offered') ||
        (contact.step ?? 0) !== c.step - 1 ||
        at < contact.queuedAt + next.afterMs
      )
        return ok();
      return ok({
        type: 'ContactStepped',
        contactId: c.contactId,
        step: c.step,
        skills: next.skills,
        priority: next.priority ?? contact.priority,
        at,
      });
    }
    case 'ExpireContact': {
      const contact = ws.contacts.get(c.contactId);
      if (
        !contact ||
        contact.seq !== c.seq ||
        (contact.state !== 'queued' && contact.state !== 'offered') ||
        contact.deadline === undefined ||
        at < contact.deadline
      )
        return ok();
      return ok({ type: 'ContactExpired', contactId: c.contactId, at });
    }
  }
}

/**
 * A workspace changed in place, fact by fact: `evolve` works on copies of the maps, the auditor's
 * ReplayState on its own maps (it keeps its routing groups in step as records are put).
 */
export interface WorkspaceWriter {
  readonly agents: ReadonlyMap<string, Agent>;
  readonly contacts: ReadonlyMap<string, Contact>;
  readonly settings: Settings;
  putAgent(a: Agent): void;
  deleteAgent(id: string): void;
  putContact(c: Contact): void;
  deleteContact(id: string): void;
  /** The last arrival number and tick given. */
  setSeq(seq: number, tick?: number): void;
  setSettings(s: Settings): void;
  finish(id: string, at: number): void;
}

/**
 * A contact entering (or re-entering) the queue: its routing key under priority aging, computed
 * with the weight in force now; none under strict priority.
 */
export function keyed(c: Contact, settings: Settings): Contact {
  const { key: _k, ...rest } = c;
  const w = settings.priorityWeightMs;
  return w === undefined ? rest : { ...rest, key: agedKey(c.tick ?? 0, c.priority, w) };
}

/**
 * The most agents a contact remembers as having turned it down (its last ones): a decision for it
 * reads at most one pool member more than this, and its document stays small, however many agents
 * turn it down. The Lua steps hold the same number (includes/routing.lua, EXCLUDED_KEEP).
 */
export const MAX_EXCLUDED_AGENTS = 100;

/**
 * The agents a contact is kept from: the last MAX_EXCLUDED_AGENTS of its list, oldest first. A
 * document or replay snapshot written before the bound may hold more (every agent that ever turned
 * the contact down, until its next rejection); the dispatcher reads such a list by its last ones
 * (includes/routing.lua), and so do the model, the audit, the snapshots and the public view.
 */
export function lastExcluded<T extends readonly string[] | undefined>(excluded: T): T {
  return (
    excluded !== undefined && excluded.length > MAX_EXCLUDED_AGENTS
      ? excluded.slice(-MAX_EXCLUDED_AGENTS)
      : excluded
  ) as T;
}

/**
 * The contact back in the queue at its place: the offer withdrawn, its agent not offered it again
 * while among the last MAX_EXCLUDED_AGENTS who turned it down.
 */
function requeued(c: Contact, agentId: string, settings: Settings): Contact {
  const { offer: _o, agentId: _a, assignedAt: _t, ...rest } = c;
  const excluded = [...(c.excluded ?? []), agentId].slice(-MAX_EXCLUDED_AGENTS);
  return keyed({ ...rest, state: 'queued', excluded }, settings);
}

/** What a fact changes. The one statement of each fact's effect: evolve and the auditor both use it. */
function release(w: WorkspaceWriter, agentId: string, contactId: string, at: number): void {
  const a = w.agents.get(agentId);
  const c = w.contacts.get(contactId);
  if (a) w.putAgent(releasing(a, contactId, c ? channelOf(c) : DEFAULT_CHANNEL, at));
}

/** A queued or offered contact leaves for good (abandoned, expired): an offer it had frees its agent. */
function leaves(
  w: WorkspaceWriter,
  c: Contact,
  at: number,
  last: Pick<Contact, 'state'> & Partial<Contact>,
): void {
  if (c.state === 'offered' && c.offer) release(w, c.offer.agentId, c.id, at);
  const { offer: _o, agentId: _a, assignedAt: _t, ...rest } = c;
  w.putContact({ ...rest, ...last });
  w.finish(c.id, at);
}

export function applyFact(w: WorkspaceWriter, f: Fact): void {
  const contacts = w.contacts;
  switch (f.type) {
    case 'AgentRegistered':
    case 'AgentUpdated':
    case 'AgentStateChanged':
      w.putAgent(f.agent);
      return;
    case 'AgentRemoved':
      w.deleteAgent(f.agentId);
      return;
    case 'ContactQueued':
      w.setSeq(f.contact.seq, f.contact.tick);
      w.putContact(f.contact);
      return;
    case 'ContactAbandoned': {
      const c = contacts.get(f.contactId);
      if (c) leaves(w, c, f.at, { state: 'abandoned', abandonedAt: f.at });
      return;
    }
    case 'ContactCompleted': {
      const c = contacts.get(f.contactId);
      if (!c) return;
      w.putContact({ ...c, state: 'completed', completedAt: f.at });
      w.finish(f.contactId, f.at);
      release(w, f.agentId, f.contactId, f.at);
      return;
    }
    case 'ContactsForgotten':
      for (const id of f.contactIds) w.deleteContact(id);
      return;
    case 'AssignmentMade': {
      const c = contacts.get(f.contactId);
      const a = w.agents.get(f.agentId);
      const timeout = w.settings.offerTimeoutMs;
      if (c) {
        const n = (c.offers ?? 0) + 1;
        w.putContact(
          timeout > 0
            ? {
                ...c,
                state: 'offered',
                agentId: f.agentId,
                assignedAt: f.at,
                offers: n,
                offer: { agentId: f.agentId, id: n, expiresAt: f.at + timeout },
              }
            : { ...c, state: 'assigned', agentId: f.agentId, assignedAt: f.at },
        );
      }
      if (a) {
        const taken: Agent = {
          ...a,
          activeContacts: [...a.activeContacts, f.contactId],
          ...busyAfter(a, c ? channelOf(c) : DEFAULT_CHANNEL, 1),
          ...(timeout > 0 ? { offers: [...(a.offers ?? []), f.contactId] } : {}),
        };
        w.putAgent(withAvailability(a, taken, f.at));
      }
      return;
    }
    case 'SettingsChanged':
      w.setSettings(f.settings);
      return;
    case 'AssignmentAccepted': {
      const c = contacts.get(f.contactId);
      if (c) {
        const { offer: _o, ...rest } = c;
        w.putContact({ ...rest, state: 'assigned', acceptedAt: f.at });
      }
      const a = w.agents.get(f.agentId);
      if (a) {
        const offers = (a.offers ?? []).filter((id) => id !== f.contactId);
        w.putAgent(withOffers(a, offers));
      }
      return;
    }
    case 'AssignmentRejected':
    case 'AssignmentExpired': {
      const c = contacts.get(f.contactId);
      if (c) w.putContact(requeued(c, f.agentId, w.settings));
      release(w, f.agentId, f.contactId, f.at);
      return;
    }
    case 'WrapUpStarted': {
      const a = w.agents.get(f.agentId);
      if (a)
        w.putAgent(withAvailability(a, { ...a, wrapUp: { n: f.n, until: f.until }, wrapUps: f.n }, f.at));
      return;
    }
    case 'WrapUpEnded': {
      const a = w.agents.get(f.agentId);
      if (a) w.putAgent(withAvailability(a, withoutWrapUp(a), f.at));
      return;
    }
    case 'PreferenceEnded': {
      const c = contacts.get(f.contactId);
      if (c) {
        const { preferred: _p, ...rest } = c;
        w.putContact(rest.state === 'queued' ? keyed(rest, w.settings) : rest);
      }
      return;
    }
    case 'ContactStepped': {
      const c = contacts.get(f.contactId);
      if (c) {
        const stepped = { ...c, skills: f.skills, priority: f.priority, step: f.step };
        w.putContact(stepped.state === 'queued' ? keyed(stepped, w.settings) : stepped);
      }
      return;
    }
    case 'ContactTransferred': {
      const c = contacts.get(f.contactId);
      if (c) {
        // Its routing steps end with it: it needs what the transfer says.
        const {
          agentId: _a,
          assignedAt: _t,
          acceptedAt: _c,
          deadline: _d,
          steps: _s,
          step: _n,
          preferred: _p,
          ...rest
        } = c;
        w.putContact(keyed({ ...rest, state: 'queued', skills: f.skills, priority: f.priority }, w.settings));
      }
      release(w, f.agentId, f.contactId, f.at);
      return;
    }
    case 'ContactExpired': {
      const c = contacts.get(f.contactId);
      if (c) leaves(w, c, f.at, { state: 'expired', expiredAt: f.at });
      return;
    }
  }
}

/** The workspace after a fact (copies the maps: the oracle's pace, not the auditor's). */
export function evolve(ws: Workspace, f: Fact): Workspace {
  const agents = new Map(ws.agents);
  const contacts = new Map(ws.contacts);
  const finished = new Map(ws.finished);
  let seq = ws.seq;
  let tick = ws.tick;
  let settings = ws.settings;
  applyFact(
    {
      agents,
      contacts,
      get settings() {
        return settings;
      },
      putAgent: (a) => agents.set(a.id, a),
      deleteAgent: (id) => agents.delete(id),
      putContact: (c) => contacts.set(c.id, c),
      deleteContact: (id) => {
        contacts.delete(id);
        finished.delete(id);
      },
      setSeq: (n, t) => {
        seq = n;
        if (t !== undefined) tick = t;
      },
      setSettings: (s) => {
        settings = s;
      },
      finish: (id, at) => finished.set(id, at),
    },
    f,
  );
  return { agents, contacts, finished, seq, ...(tick !== undefined ? { tick } : {}), settings };
}
