import {
  type Agent,
  agentState,
  type Contact,
  channelOf,
  DEFAULT_SETTINGS,
  type Fact,
  type Settings,
} from '../domain/model.ts';
import { publicSkills } from '../domain/values.ts';

/**
 * What the log and the documents must say, worked out from the model: the data of each fact as
 * the projector's Lua step writes it (src/projections/lua), and the public view of each document
 * (API.md, "Documents"). The auditor compares these with what Redis holds, field by field.
 */

const P2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const P3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const DAY = 86_400_000;
let isoDay = Number.NaN;
let isoPrefix = '';

/**
 * Milliseconds as ISO-8601 UTC, as the Lua steps write them (`toISOString`'s text). The date
 * part is worked out once per day and the time from digit tables: several times faster than
 * `toISOString`, and a replay formats a few times per event.
 */
export function iso(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms >= 253_402_300_800_000) return new Date(ms).toISOString();
  // The same times come back within a few commands (a command's time in its events, its outcome
  // and the next command's checks; a contact's queuedAt): the last texts, by their low bits.
  const slot = ms & (ISO_SLOTS - 1);
  if (isoMs[slot] === ms) return isoText[slot]!;
  const text = isoOf(ms);
  isoMs[slot] = ms;
  isoText[slot] = text;
  return text;
}

const ISO_SLOTS = 256;
const isoMs = new Float64Array(ISO_SLOTS).fill(-1);
const isoText: string[] = new Array<string>(ISO_SLOTS).fill('');

function isoOf(ms: number): string {
  const day = Math.floor(ms / DAY);
  if (day !== isoDay) {
    isoDay = day;
    isoPrefix = new Date(day * DAY).toISOString().slice(0, 11);
  }
  let rest = ms - day * DAY;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const sec = Math.floor(rest / 1000);
  return `${isoPrefix}${P2[h]}:${P2[m]}:${P2[sec]}.${P3[rest - sec * 1000]}Z`;
}

/** Command-stream bookkeeping the model does not keep: where each document was last written. */
export interface ContactMeta {
  /** Command-stream position of the last command applied to the contact. */
  position: string;
  /** Command id of the QueueContact (AssignmentMade.meta.causationId). */
  queuedBy: string;
  /** Event position of its AssignmentMade, once assigned. */
  assignedIn: string | undefined;
  /** The documents check that last saw its document (src/audit/state-check.ts). */
  checked: number;
}

// Built by assignment rather than spreads: these run for every fact of a long replay.
export function agentDocument(a: Agent, position: string): Record<string, unknown> {
  const d: Record<string, unknown> = { id: a.id };
  if (a.name !== undefined) d.name = a.name;
  d.skills = publicSkills(a.skills, 'agent');
  d.capacity = a.capacity;
  d.presence = a.presence;
  d.state = agentState(a);
  d.activeContacts = a.activeContacts;
  d.availableSince = a.availableSince === null ? null : iso(a.availableSince);
  if (a.channelSince !== undefined) {
    const by: Record<string, string> = {};
    for (const ch in a.channelSince) by[ch] = iso(a.channelSince[ch]!);
    d.availableSinceByChannel = by;
  }
  d.registeredAt = iso(a.registeredAt);
  d.position = position;
  if (a.wrapUpMs !== undefined) d.wrapUpMs = a.wrapUpMs;
  if (a.wrapUp !== undefined) d.wrapUpUntil = iso(a.wrapUp.until);
  return d;
}

export function contactDocument(c: Contact, position: string): Record<string, unknown> {
  const d: Record<string, unknown> = {
    id: c.id,
    skills: publicSkills(c.skills, 'contact'),
    channel: channelOf(c),
    priority: c.priority,
  };
  if (c.attributes !== undefined) d.attributes = c.attributes;
  d.state = c.state;
  d.queuedAt = iso(c.queuedAt);
  d.position = position;
  if (c.agentId !== undefined) d.agentId = c.agentId;
  if (c.assignedAt !== undefined) d.assignedAt = iso(c.assignedAt);
  const waitedUntil = c.abandonedAt ?? c.expiredAt ?? c.assignedAt;
  if (waitedUntil !== undefined) d.waitedMs = waitedUntil - c.queuedAt;
  if (c.completedAt !== undefined) d.completedAt = iso(c.completedAt);
  if (c.abandonedAt !== undefined) d.abandonedAt = iso(c.abandonedAt);
  if (c.offer !== undefined) d.offerExpiresAt = iso(c.offer.expiresAt);
  if (c.acceptedAt !== undefined) d.acceptedAt = iso(c.acceptedAt);
  if (c.excluded !== undefined && c.excluded.length > 0) d.excludedAgents = c.excluded;
  if (c.maxWaitMs !== undefined) d.maxWaitMs = c.maxWaitMs;
  if (c.deadline !== undefined) d.expiresAt = iso(c.deadline);
  if (c.expiredAt !== undefined) d.expiredAt = iso(c.expiredAt);
  if (c.preferred !== undefined) {
    d.preferredAgents = c.preferred.agents;
    d.preferredUntil = iso(c.preferred.until);
  }
  if (c.steps !== undefined) {
    d.steps = c.steps.map((st) => ({ ...st, skills: publicSkills(st.skills, 'contact') }));
    d.step = c.step ?? 0;
  }
  return d;
}

/** The agent a contact that leaves while offered was offered to (its offer is withdrawn). */
function offeredTo(c: Contact | undefined): { agentId?: string } {
  return c?.state === 'offered' && c.agentId !== undefined ? { agentId: c.agentId } : {};
}

/**
 * The `data` of the event a command's fact becomes. `contacts` is the state before the fact (a
 * completion reports how long the contact was held).
 */
export function factData(
  f: Fact,
  position: string,
  contacts: ReadonlyMap<string, Contact>,
  settings: Settings = DEFAULT_SETTINGS,
): Record<string, unknown> {
  switch (f.type) {
    case 'AgentRegistered':
    case 'AgentUpdated':
      return agentDocument(f.agent, position);
    case 'AgentStateChanged':
      return {
        agentId: f.agent.id,
        from: f.from,
        to: f.to,
        presence: f.agent.presence,
        availableSince: f.agent.availableSince === null ? null : iso(f.agent.availableSince),
      };
    case 'AgentRemoved':
      return { agentId: f.agentId };
    case 'ContactQueued': {
      // The event is the new document, without the fields only later commands set.
      return contactDocument(f.contact, position);
    }
    case 'ContactAbandoned': {
      const c = contacts.get(f.contactId);
      return {
        contactId: f.contactId,
        abandonedAt: iso(f.at),
        waitedMs: f.at - (c?.queuedAt ?? f.at),
        ...offeredTo(c),
      };
    }
    case 'ContactCompleted': {
      const c = contacts.get(f.contactId);
      return {
        contactId: f.contactId,
        agentId: f.agentId,
        completedAt: iso(f.at),
        handledMs: f.at - (c?.assignedAt ?? f.at),
      };
    }
    case 'ContactsForgotten':
      return { contactIds: f.contactIds, before: iso(f.before) };
    case 'AssignmentMade': {
      const c = contacts.get(f.contactId);
      const d: Record<string, unknown> = {
        contactId: f.contactId,
        agentId: f.agentId,
        skills: c ? publicSkills(c.skills, 'contact') : undefined,
        channel: c ? channelOf(c) : undefined,
        priority: c?.priority,
        queuedAt: c ? iso(c.queuedAt) : undefined,
        assignedAt: iso(f.at),
        waitedMs: f.at - (c?.queuedAt ?? f.at),
      };
      if (settings.offerTimeoutMs > 0)
        d.offer = { id: (c?.offers ?? 0) + 1, expiresAt: iso(f.at + settings.offerTimeoutMs) };
      return d;
    }
    case 'SettingsChanged':
      return { ...f.settings };
    case 'AssignmentAccepted':
      return { contactId: f.contactId, agentId: f.agentId, acceptedAt: iso(f.at) };
    case 'AssignmentRejected':
      return { contactId: f.contactId, agentId: f.agentId, rejectedAt: iso(f.at), reason: f.reason };
    case 'AssignmentExpired':
      return { contactId: f.contactId, agentId: f.agentId, expiredAt: iso(f.at) };
    case 'WrapUpStarted':
      return { agentId: f.agentId, wrapUp: f.n, until: iso(f.until) };
    case 'WrapUpEnded':
      return { agentId: f.agentId, wrapUp: f.n, early: f.early, endedAt: iso(f.at) };
    case 'ContactTransferred':
      return {
        contactId: f.contactId,
        fromAgentId: f.agentId,
        skills: publicSkills(f.skills, 'contact'),
        priority: f.priority,
        transferredAt: iso(f.at),
      };
    case 'ContactExpired': {
      const c = contacts.get(f.contactId);
      return {
        contactId: f.contactId,
        expiredAt: iso(f.at),
        waitedMs: f.at - (c?.queuedAt ?? f.at),
        ...offeredTo(c),
      };
    }
    case 'PreferenceEnded':
      return { contactId: f.contactId, endedAt: iso(f.at) };
    case 'ContactStepped':
      return {
        contactId: f.contactId,
        step: f.step,
        skills: publicSkills(f.skills, 'contact'),
        priority: f.priority,
        steppedAt: iso(f.at),
      };
  }
}

/** Deep equality of JSON values (key order aside). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  let n = 0;
  for (const k in ra) {
    if (ra[k] === undefined) continue;
    n++;
    if (!jsonEqual(ra[k], rb[k])) return false;
  }
  for (const k in rb) if (rb[k] !== undefined) n--;
  return n === 0;
}

const show = (v: unknown): string => {
  const s = v === undefined ? 'absent' : JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

/** The fields that differ, as "field: log X, model Y" (the first few). */
export function differences(actual: unknown, expected: unknown, most = 4): string {
  if (typeof actual !== 'object' || typeof expected !== 'object' || actual === null || expected === null)
    return `log ${show(actual)}, model ${show(expected)}`;
  const a = actual as Record<string, unknown>;
  const e = expected as Record<string, unknown>;
  const out: string[] = [];
  for (const k of new Set([...Object.keys(e), ...Object.keys(a)])) {
    if (!jsonEqual(a[k], e[k])) out.push(`${k}: log ${show(a[k])}, model ${show(e[k])}`);
  }
  return out.length > most
    ? `${out.slice(0, most).join('; ')}; and ${out.length - most} more`
    : out.join('; ');
}
