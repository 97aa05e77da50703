import { type Agent, channelOf, hasRoomOn, onChannel } from '../domain/model.ts';
import { type Assignment, holdsEvery } from '../domain/routing.ts';
import type { Auditor } from './auditor.ts';
import type { Envelope } from './entries.ts';
import { positionMs } from './entries.ts';
import { differences, factData, jsonEqual } from './expected.ts';
import { positionBefore } from './violations.ts';

/**
 * The checks of one AssignmentMade, on the auditor's state (src/audit/auditor.ts has brought it
 * to the decision's basis first): it is rule 1's decision, it is possible, its data is the
 * contact's. A possible assignment is then replayed, even when it is not rule 1's: Redis made
 * it, and later checks need the state Redis has. An impossible one is not replayed.
 */
export const showPair = (a: Assignment | undefined): string => (a ? `${a.contactId}->${a.agentId}` : 'none');

/** Why an agent has no room for a contact of `channel`. */
function noRoom(agent: Agent, channel: string): string {
  if (typeof agent.capacity === 'number')
    return `the agent is at capacity (${agent.activeContacts.length} of ${agent.capacity})`;
  const cap = onChannel(agent.capacity, channel);
  if (cap === undefined)
    return `the agent takes no ${channel} contacts (its capacity is for ${Object.keys(agent.capacity).join(', ')})`;
  return `the agent is at capacity on ${channel} (${onChannel(agent.busyOn, channel) ?? 0} of ${cap})`;
}

/** Rule 1 for the state reached: every command up to `basedOn` and every earlier assignment. */
export function checkDecision(a: Auditor, position: string, pair: string, basedOn: string): void {
  const unverifiable = (why: string): void => {
    a.decisionsUnverifiable++;
    a.flag('unverifiable', 'events', position, `AssignmentMade ${pair} cannot be re-checked: ${why}`);
  };
  // The state already holds a later command's facts: it is not the state the decision read.
  const ahead = a.lastCommandMet;
  if (ahead !== undefined && positionBefore(basedOn, ahead)) {
    unverifiable(`based on ${basedOn}, yet the events of the command at ${ahead} precede it`);
    return;
  }
  if (a.checkpoint !== undefined && positionBefore(a.checkpoint, basedOn)) {
    unverifiable(`based on ${basedOn}, past the projector checkpoint ${a.checkpoint}`);
    return;
  }
  a.decisionsChecked++;
  const want = showPair(a.state.routing.next());
  if (want !== pair)
    a.flag(
      'decision',
      'events',
      position,
      `AssignmentMade ${pair} based on ${basedOn}: rule 1 gives ${want}`,
    );
}

/**
 * How far a step's clock may read behind the milliseconds of the command positions it decides on:
 * after a failover the new primary's clock may be behind the old one's, which made those positions.
 */
export const CLOCK_SKEW_MS = 5_000;

/**
 * The decision's time (`assignedAt`) against the log: a dispatch step reads Redis's clock, then
 * appends the event at that millisecond in the same step (`<ms>-*`; after the stream's last entry
 * when that is later), so the event's position is at or after it on every Redis version (an
 * automatic id takes the step's start time from Redis 7.2 on, which can be a millisecond before
 * the step's TIME: test/routing/step-time-ids.test.ts); and it decides on the commands up to
 * `basedOn`, appended before it.
 */
function timeProblems(at: number, position: string, basedOn: unknown): string[] {
  const problems: string[] = [];
  if (at > positionMs(position))
    problems.push(`assignedAt ${new Date(at).toISOString()} is after the event was appended (${position})`);
  if (typeof basedOn === 'string' && at < positionMs(basedOn) - CLOCK_SKEW_MS)
    problems.push(
      `assignedAt ${new Date(at).toISOString()} is before the command it is based on (${basedOn})`,
    );
  return problems;
}

/** Whether the assignment can happen at all; if so its data is checked and it is replayed. */
export function replayAssignment(
  a: Auditor,
  position: string,
  env: Envelope,
  contactId: string,
  agentId: string,
): void {
  const contact = a.state.contacts.get(contactId);
  const agent = a.state.agents.get(agentId);
  const meta = a.contactMeta.get(contactId);
  const problems: string[] = [];
  if (!contact) problems.push('the contact is unknown');
  else if (contact.state === 'assigned' || contact.state === 'offered')
    problems.push(
      `the contact is ${contact.state} already (to ${contact.agentId} at ${meta?.assignedIn ?? '?'})`,
    );
  else if (contact.state !== 'queued') problems.push(`the contact was ${contact.state}`);
  if (!agent) problems.push('the agent is unknown');
  else {
    if (agent.presence !== 'available') problems.push(`the agent is ${agent.presence}`);
    else if (agent.wrapUp) problems.push('the agent is wrapping up');
    else if (contact && !hasRoomOn(agent, channelOf(contact)))
      problems.push(noRoom(agent, channelOf(contact)));
    if (contact?.preferred && !contact.preferred.agents.includes(agentId))
      problems.push(`the contact waits for its preferred agents (${contact.preferred.agents.join(', ')})`);
    if (contact?.excluded?.includes(agentId))
      problems.push(
        'the agent turned this contact down before (rejected it, let its offer expire, or had it withdrawn)',
      );
    if (contact && !holdsEvery(agent, contact.skills))
      problems.push(`the agent lacks ${contact.skills.filter((s) => !agent.skills.includes(s)).join(', ')}`);
  }
  if (problems.length > 0) {
    a.flag(
      'assignment',
      'events',
      position,
      `AssignmentMade ${contactId}->${agentId}: ${problems.join('; ')}`,
    );
    return;
  }
  const raw = env.data.assignedAt;
  const parsed = typeof raw === 'string' ? Date.parse(raw) : Number.NaN;
  const at = Number.isFinite(parsed) ? parsed : positionMs(position);
  const fact = { type: 'AssignmentMade', contactId, agentId, at } as const;
  const expected = factData(fact, position, a.state.contacts, a.state.settings);
  const wrong: string[] = [];
  if (!jsonEqual(env.data, expected)) wrong.push(differences(env.data, expected));
  if (env.at !== raw) wrong.push(`at: ${String(env.at)}, not its assignedAt`);
  if (env.workspace !== a.workspace) wrong.push(`workspace: ${String(env.workspace)}`);
  if (env.meta.causationId !== meta?.queuedBy)
    wrong.push('meta.causationId: not the command that queued the contact');
  wrong.push(...timeProblems(at, position, env.meta.basedOn));
  const extra = Object.keys(env.meta).filter((k) => k !== 'causationId' && k !== 'basedOn');
  if (extra.length > 0)
    wrong.push(`meta: ${extra.join(', ')} (a decision carries causationId and basedOn only)`);
  wrong.push(...a.unwrittenOf(env));
  if (wrong.length > 0)
    a.flag(
      'fact',
      'events',
      position,
      `AssignmentMade ${contactId}->${agentId} differs: ${wrong.join('; ')}`,
    );
  a.state.apply(fact);
  if (meta) meta.assignedIn = position;
  a.assignments++;
  a.assignmentPositions.push(position);
}
