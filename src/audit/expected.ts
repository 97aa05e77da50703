import { type Agent, agentState, type Contact, type Fact } from '../domain/model.ts';

/**
 * What the log and the documents must say, worked out from the model: the data of each fact as
 * the projector's Lua step writes it (src/projections/lua), and the public view of each document
 * (API.md, "Documents"). The auditor compares these with what Redis holds, field by field.
 */
export const iso = (ms: number): string => new Date(ms).toISOString();

/** Command-stream bookkeeping the model does not keep: where each document was last written. */
export interface ContactMeta {
  /** Command-stream position of the last command applied to the contact. */
  position: string;
  /** Command id of the QueueContact (AssignmentMade.meta.causationId). */
  queuedBy: string;
  /** Event position of its AssignmentMade, once assigned. */
  assignedIn?: string;
}

export function agentDocument(a: Agent, position: string): Record<string, unknown> {
  return {
    id: a.id,
    ...(a.name !== undefined ? { name: a.name } : {}),
    skills: a.skills,
    capacity: a.capacity,
    presence: a.presence,
    state: agentState(a),
    activeContacts: a.activeContacts,
    availableSince: a.availableSince === null ? null : iso(a.availableSince),
    registeredAt: iso(a.registeredAt),
    position,
  };
}

export function contactDocument(c: Contact, position: string): Record<string, unknown> {
  const waitedUntil = c.abandonedAt ?? c.assignedAt;
  return {
    id: c.id,
    skills: c.skills,
    priority: c.priority,
    ...(c.attributes !== undefined ? { attributes: c.attributes } : {}),
    state: c.state,
    queuedAt: iso(c.queuedAt),
    position,
    ...(c.agentId !== undefined ? { agentId: c.agentId } : {}),
    ...(c.assignedAt !== undefined ? { assignedAt: iso(c.assignedAt) } : {}),
    ...(waitedUntil !== undefined ? { waitedMs: waitedUntil - c.queuedAt } : {}),
    ...(c.completedAt !== undefined ? { completedAt: iso(c.completedAt) } : {}),
    ...(c.abandonedAt !== undefined ? { abandonedAt: iso(c.abandonedAt) } : {}),
  };
}

/**
 * The `data` of the event a command's fact becomes. `contacts` is the state before the fact (a
 * completion reports how long the contact was held).
 */
export function factData(
  f: Fact,
  position: string,
  contacts: ReadonlyMap<string, Contact>,
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
      return { contactId: f.contactId, abandonedAt: iso(f.at), waitedMs: f.at - (c?.queuedAt ?? f.at) };
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
    case 'AssignmentMade': {
      const c = contacts.get(f.contactId);
      return {
        contactId: f.contactId,
        agentId: f.agentId,
        skills: c?.skills,
        priority: c?.priority,
        queuedAt: c ? iso(c.queuedAt) : undefined,
        assignedAt: iso(f.at),
        waitedMs: f.at - (c?.queuedAt ?? f.at),
      };
    }
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
