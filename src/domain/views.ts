/**
 * The views: agents and contacts as queries return them (GET /agents, /contacts). The projector's
 * Lua writes them (src/adapters/redis/lua/includes/documents.lua) and
 * src/adapters/redis/projection-reads.ts reads them back; the auditor compares them with the
 * replayed state.
 */
import * as t from 'io-ts';
import { AgentPresence } from './commands.ts';
import { withMessage } from './values.ts';

export const AgentStateName = withMessage(
  t.keyof(
    { offline: null, available: null, away: null, busy: null, wrapup: null, reserved: null },
    'AgentState',
  ),
  'one of "offline", "available", "away", "busy", "wrapup", "reserved"',
);
export type AgentStateName = t.TypeOf<typeof AgentStateName>;
export const ContactStateName = withMessage(
  t.keyof(
    { queued: null, offered: null, assigned: null, completed: null, abandoned: null, expired: null },
    'ContactState',
  ),
  'one of "queued", "offered", "assigned", "completed", "abandoned", "expired"',
);
export type ContactStateName = t.TypeOf<typeof ContactStateName>;

const NullableString = t.union([t.string, t.null]);
/** A skill as documents show it: a name, or with an agent's level or a contact's minimum level. */
const PublicSkill = t.union([
  t.string,
  t.type({ name: t.string, level: t.number }),
  t.type({ name: t.string, minLevel: t.number }),
]);

/** An agent as queries return it. `state` is derived: an available agent at capacity is `busy`. */
export const AgentDocument = t.intersection([
  t.type({
    id: t.string,
    skills: t.array(PublicSkill),
    capacity: t.union([t.number, t.record(t.string, t.number)]),
    presence: AgentPresence,
    state: AgentStateName,
    activeContacts: t.array(t.string),
    availableSince: NullableString,
    registeredAt: t.string,
    position: t.string,
  }),
  t.partial({
    name: t.string,
    wrapUpMs: t.number,
    wrapUpUntil: t.string,
    /** With capacity per channel: each channel the agent has room on → since when. */
    availableSinceByChannel: t.record(t.string, t.string),
  }),
]);
export type AgentDocument = t.TypeOf<typeof AgentDocument>;

export const ContactDocument = t.intersection([
  t.type({
    id: t.string,
    skills: t.array(PublicSkill),
    priority: t.number,
    state: ContactStateName,
    queuedAt: t.string,
    position: t.string,
  }),
  t.partial({
    /** Absent only in documents written before channels (voice). */
    channel: t.string,
    attributes: t.UnknownRecord,
    agentId: t.string,
    assignedAt: t.string,
    waitedMs: t.number,
    completedAt: t.string,
    abandonedAt: t.string,
    offerExpiresAt: t.string,
    acceptedAt: t.string,
    excludedAgents: t.array(t.string),
    maxWaitMs: t.number,
    expiresAt: t.string,
    expiredAt: t.string,
    /** Its routing steps, as given, and how many were taken (docs/API.md "Routing steps"). */
    steps: t.array(
      t.intersection([
        t.type({ afterMs: t.number, skills: t.array(PublicSkill) }),
        t.partial({ priority: t.number }),
      ]),
    ),
    step: t.number,
    /** Its preferred agents and when the preference ends (docs/API.md "Preferred agents"). */
    preferredAgents: t.array(t.string),
    preferredUntil: t.string,
  }),
]);
export type ContactDocument = t.TypeOf<typeof ContactDocument>;
