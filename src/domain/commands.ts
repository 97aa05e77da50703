import * as t from 'io-ts';
import { strict } from './strict.ts';
import { Attributes, Capacity, Id, Name, Priority, Skills } from './values.ts';

/** Bodies as clients send them over HTTP (see API.md). */
export const RegisterAgentBody = strict(
  { id: Id, skills: Skills },
  { name: Name, capacity: Capacity },
  'RegisterAgentBody',
);
export const UpdateAgentBody = strict(
  {},
  { name: Name, skills: Skills, capacity: Capacity },
  'UpdateAgentBody',
);
export const AgentPresence = t.keyof({ available: null, away: null, offline: null }, 'AgentPresence');
export type AgentPresence = t.TypeOf<typeof AgentPresence>;
export const ChangeAgentStateBody = strict({ state: AgentPresence }, {}, 'ChangeAgentStateBody');
export const QueueContactBody = strict(
  { skills: Skills },
  { id: Id, priority: Priority, attributes: Attributes },
  'QueueContactBody',
);

/** Commands as they are appended to a workspace's command stream. */
export const RegisterAgent = t.intersection([
  t.type({ type: t.literal('RegisterAgent'), agentId: Id, skills: Skills, capacity: Capacity }),
  t.partial({ name: Name }),
]);
export const UpdateAgent = t.intersection([
  t.type({ type: t.literal('UpdateAgent'), agentId: Id }),
  t.partial({ name: Name, skills: Skills, capacity: Capacity }),
]);
export const ChangeAgentState = t.type({
  type: t.literal('ChangeAgentState'),
  agentId: Id,
  state: AgentPresence,
});
export const RemoveAgent = t.type({ type: t.literal('RemoveAgent'), agentId: Id });
export const QueueContact = t.intersection([
  t.type({ type: t.literal('QueueContact'), contactId: Id, skills: Skills, priority: Priority }),
  t.partial({ attributes: Attributes }),
]);
export const AbandonContact = t.type({ type: t.literal('AbandonContact'), contactId: Id });
export const CompleteContact = t.type({ type: t.literal('CompleteContact'), contactId: Id });

/** The most contacts one ForgetContacts command removes: it bounds the projector's step. */
export const MAX_FORGOTTEN_PER_COMMAND = 500;
const KeepMs = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n >= 0, 'KeepMs');
const ForgetMax = t.refinement(
  t.number,
  (n) => Number.isInteger(n) && n >= 1 && n <= MAX_FORGOTTEN_PER_COMMAND,
  'ForgetMax',
);
/**
 * Appended by the archiver role, never by clients: the documents of contacts that finished
 * (completed or abandoned) more than `keepMs` before the command's own time are removed, the
 * `max` oldest first (by finish time, then id). Their history stays in the log.
 */
export const ForgetContacts = t.type({ type: t.literal('ForgetContacts'), keepMs: KeepMs, max: ForgetMax });

export const Command = t.union([
  RegisterAgent,
  UpdateAgent,
  ChangeAgentState,
  RemoveAgent,
  QueueContact,
  AbandonContact,
  CompleteContact,
  ForgetContacts,
]);
export type Command = t.TypeOf<typeof Command>;
export type CommandType = Command['type'];

export const COMMAND_TYPES: readonly CommandType[] = [
  'RegisterAgent',
  'UpdateAgent',
  'ChangeAgentState',
  'RemoveAgent',
  'QueueContact',
  'AbandonContact',
  'CompleteContact',
  'ForgetContacts',
];

/** Which document a command is about: the key of its outcome's body. */
export function commandTarget(c: Command): { kind: 'agent' | 'contact' | 'workspace'; id: string } {
  if ('agentId' in c) return { kind: 'agent', id: c.agentId };
  return 'contactId' in c ? { kind: 'contact', id: c.contactId } : { kind: 'workspace', id: '' };
}
