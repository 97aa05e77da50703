import { type Agent, type Contact, channelOf, evolve, sinceOn, type Workspace } from './model.ts';
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

export function contactOrder(a: Contact, b: Contact): number {
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

export function longestAvailableAgent(
  ws: Workspace,
  skills: readonly string[],
  excluded: readonly string[] = [],
  channel: string = DEFAULT_CHANNEL,
  only?: readonly string[],
): Agent | undefined {
  let best: Agent | undefined;
  let bestSince = 0;
  for (const a of ws.agents.values()) {
    const since = sinceOn(a, channel);
    if (since === undefined || !holdsEvery(a, skills) || excluded.includes(a.id)) continue;
    if (only && !only.includes(a.id)) continue;
    if (!best || since < bestSince || (since === bestSince && a.id < best.id)) {
      best = a;
      bestSince = since;
    }
  }
  return best;
}

/**
 * Rule 1, one decision: the first queued contact in routing order (priority, then arrival) that
 * has at least one eligible agent, given to the longest available of those agents. An agent that
 * rejected a contact or let its offer expire is not eligible for it; while a contact waits for its
 * preferred agents, only they are. Undefined when
 * no queued contact has an eligible agent ("nobody idles while a contact they could serve waits").
 */
export function nextAssignment(ws: Workspace): Assignment | undefined {
  const queued = [...ws.contacts.values()].filter((c) => c.state === 'queued').sort(contactOrder);
  for (const contact of queued) {
    const agent = longestAvailableAgent(
      ws,
      contact.skills,
      contact.excluded,
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
