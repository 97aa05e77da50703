import * as t from 'io-ts';

export const EVENT_TYPES = [
  'AgentRegistered',
  'AgentUpdated',
  'AgentStateChanged',
  'AgentRemoved',
  'ContactQueued',
  'ContactAbandoned',
  'AssignmentMade',
  'ContactCompleted',
  'ContactsForgotten',
  'SettingsChanged',
  'AssignmentAccepted',
  'AssignmentRejected',
  'AssignmentExpired',
  'WrapUpStarted',
  'WrapUpEnded',
  'ContactExpired',
  'ContactTransferred',
  'ContactStepped',
  'PreferenceEnded',
  'CommandRejected',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];
export const EventTypeCodec = t.keyof(
  Object.fromEntries(EVENT_TYPES.map((k) => [k, null])) as Record<EventType, null>,
  'EventType',
);

export const EventMeta = t.partial({
  commandId: t.string,
  idempotencyKey: t.string,
  causationId: t.string,
  requestId: t.string,
  /** On AssignmentMade: the command-stream position (projector checkpoint) the decision was based on. */
  basedOn: t.string,
  /** The API key that sent the command (its id, never the secret) and that key's role. */
  keyId: t.string,
  role: t.string,
});

/** The envelope of API.md, the same on the audit route, the WebSocket and in the stream. */
export const EventEnvelope = t.type({
  position: t.string,
  type: EventTypeCodec,
  workspace: t.string,
  at: t.string,
  data: t.UnknownRecord,
  meta: EventMeta,
});
export type EventEnvelope = t.TypeOf<typeof EventEnvelope>;

export const AssignmentMadeData = t.type({
  contactId: t.string,
  agentId: t.string,
  skills: t.array(t.string),
  priority: t.number,
  queuedAt: t.string,
  assignedAt: t.string,
  waitedMs: t.number,
});
export type AssignmentMadeData = t.TypeOf<typeof AssignmentMadeData>;

export const CommandRejectedData = t.intersection([
  t.type({ commandId: t.string, command: t.string, status: t.number, title: t.string, detail: t.string }),
  t.partial({ target: t.string }),
]);
export type CommandRejectedData = t.TypeOf<typeof CommandRejectedData>;
