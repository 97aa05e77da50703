import {
  type Agent,
  type AgentSelection,
  type Contact,
  channelOf,
  evolve,
  lastExcluded,
  sinceOn,
  type Workspace,
} from './model.ts';
import { DEFAULT_CHANNEL } from './values.ts';

/**
 * The routing oracle: the plain statement of what Switchboard must assign.
 *
 * Contacts are served highest priority first, FIFO (arrival order) within a priority. Each
 * contact in turn takes the Longest Available Agent among those that hold every skill it
 * needs and have room on its channel (lowest available-since, on that channel for an agent
 * with capacity per channel; ties by id in byte order, as Redis orders equal scores). A
 * contact that no available agent can serve is passed over and does not hold back the
 * contacts behind it. One pass is enough: agents are only ever taken, so a contact passed over
 * early cannot become servable later in the same pass.
 */
export interface Assignment {
  readonly contactId: string;
  readonly agentId: string;
}

/**
 * Routing order: under priority aging (both contacts keyed) by routing key, else priority
 * descending then arrival. A workspace's queue never holds both kinds (the settings refuse to
 * switch while contacts are queued).
 */
export function contactOrder(a: Contact, b: Contact): number {
  // Routing keys tie when the weight changed between two arrivals: the lower contact id first
  // (the order of the queue's members in Redis, "<skill set>|A|<key>|<contact>").
  if (a.key !== undefined && b.key !== undefined)
    return a.key - b.key || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return b.priority - a.priority || a.seq - b.seq;
}

export function agentOrder(a: Agent, b: Agent): number {
  const byScore = (a.availableSince ?? 0) - (b.availableSince ?? 0);
  if (byScore !== 0) return byScore;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function holdsEvery(agent: Agent, skills: readonly string[]): boolean {
  return skills.every((s) => agent.skills.includes(s));
}

/** A routing skill's name without its level ("Billing#3" → "Billing"). */
const baseOf = (skill: string): string => {
  const hash = skill.lastIndexOf('#');
  return hash > 0 && /^\d+$/.test(skill.slice(hash + 1)) ? skill.slice(0, hash) : skill;
};
const levelOf = (skill: string): number =>
  baseOf(skill) === skill ? 1 : Number(skill.slice(skill.lastIndexOf('#') + 1));

/**
 * Most-skilled: the sum of an agent's levels (its highest on each name; a plain skill is level 1)
 * over the skill names a contact needs.
 */
export function skillScore(agentSkills: readonly string[], needs: readonly string[]): number {
  const levels = new Map<string, number>();
  for (const s of agentSkills) {
    const base = baseOf(s);
    levels.set(base, Math.max(levels.get(base) ?? 0, levelOf(s)));
  }
  return needs.reduce((sum, s) => sum + (levels.get(baseOf(s)) ?? 0), 0);
}

/**
 * Least-occupied: an agent's share of capacity in use (contacts in hand over its capacity, every
 * channel together), in units of 10^-7 rounded down. Capacities are at most 100 per channel and
 * 16 channels, so two different shares never round to the same number.
 */
export function occupancy(a: Agent): number {
  const total =
    typeof a.capacity === 'number' ? a.capacity : Object.values(a.capacity).reduce((x, y) => x + y, 0);
  return Math.floor((a.activeContacts.length * 10_000_000) / total);
}

/**
 * The agent a contact gets among the eligible ones (available on its channel, holding every skill,
 * not excluded, one of `only` when given), by the workspace's selection:
 * - longest-available: the lowest available-since (on the channel), ties by id in byte order;
 * - most-skilled: the highest `skillScore` on the contact's skills, then as longest-available;
 * - least-occupied: the lowest `occupancy`, then as longest-available.
 */
export function longestAvailableAgent(
  ws: Workspace,
  skills: readonly string[],
  excluded: readonly string[] = [],
  channel: string = DEFAULT_CHANNEL,
  only?: readonly string[],
): Agent | undefined {
  const selection: AgentSelection = ws.settings.agentSelection ?? 'longest-available';
  let best: Agent | undefined;
  let bestKey: readonly number[] = [];
  for (const a of ws.agents.values()) {
    const since = sinceOn(a, channel);
    if (since === undefined || !holdsEvery(a, skills) || excluded.includes(a.id)) continue;
    if (only && !only.includes(a.id)) continue;
    const key =
      selection === 'most-skilled'
        ? [-skillScore(a.skills, skills), since]
        : selection === 'least-occupied'
          ? [occupancy(a), since]
          : [since];
    const cmp = compareKeys(key, bestKey);
    if (!best || cmp < 0 || (cmp === 0 && a.id < best.id)) {
      best = a;
      bestKey = key;
    }
  }
  return best;
}

function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * Rule 1, one decision: the first queued contact in routing order (priority, then arrival) that
 * has at least one eligible agent, given to the longest available of those agents. An agent that
 * rejected a contact, let its offer expire or had it withdrawn is not eligible for it (while among its
 * last MAX_EXCLUDED_AGENTS such agents: `excluded`); while a
 * contact waits for its preferred agents, only they are. Undefined when
 * no queued contact has an eligible agent ("nobody idles while a contact they could serve waits").
 */
export function nextAssignment(ws: Workspace): Assignment | undefined {
  const queued = [...ws.contacts.values()].filter((c) => c.state === 'queued').sort(contactOrder);
  for (const contact of queued) {
    const agent = longestAvailableAgent(
      ws,
      contact.skills,
      lastExcluded(contact.excluded),
      channelOf(contact),
      contact.preferred?.agents,
    );
    if (agent) return { contactId: contact.id, agentId: agent.id };
  }
  return undefined;
}

/** Every assignment due in this state (rule 1 until no pair remains), in order, and the state after them. */
export function route(ws: Workspace, at: number): { workspace: Workspace; assignments: Assignment[] } {
  const assignments: Assignment[] = [];
  let state = ws;
  for (;;) {
    const next = nextAssignment(state);
    if (!next) return { workspace: state, assignments };
    assignments.push(next);
    state = evolve(state, { type: 'AssignmentMade', ...next, at });
  }
}
