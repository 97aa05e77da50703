import * as t from 'io-ts';
import { strict } from './strict.ts';
import {
  AgentSkills,
  Attributes,
  Capacity,
  CHANNEL_PATTERN,
  Channel,
  Id,
  MAX_CHANNELS,
  Name,
  OneLineName,
  Priority,
  Requirements,
  RoutingSkills,
  withMessage,
} from './values.ts';

const DAY_MS = 86_400_000;
const msBetween = (name: string, min: number, max: number) =>
  withMessage(
    t.refinement(t.number, (n) => Number.isInteger(n) && n >= min && n <= max, name),
    `an integer number of milliseconds from ${min} to ${max}`,
  );
/** How long an offer waits for the agent's answer; 0: contacts are assigned directly. */
export const OfferTimeoutMs = msBetween('OfferTimeoutMs', 0, 3_600_000);
/** After-contact work: the agent takes no new work this long after a completion. */
export const WrapUpMs = msBetween('WrapUpMs', 0, DAY_MS);
/** An agent's own wrap-up time as PATCH /agents/{id} takes it: null removes it (the workspace's applies). */
export const WrapUpMsOrNull = withMessage(
  t.union([WrapUpMs, t.null]),
  `an integer number of milliseconds from 0 to ${DAY_MS}, or null (the workspace's)`,
);
/** The longest a contact waits in the queue before it leaves as ContactExpired. */
export const MaxWaitMs = msBetween('MaxWaitMs', 1, 7 * DAY_MS);
/** Priority aging: what one priority point is worth in waiting time (at most an hour). */
export const PriorityWeightMs = msBetween('PriorityWeightMs', 1, 3_600_000);
export const AgentSelectionCodec = withMessage(
  t.keyof({ 'longest-available': null, 'most-skilled': null, 'least-occupied': null }, 'AgentSelection'),
  'one of "longest-available", "most-skilled", "least-occupied"',
);
/** The channels a workspace's contacts may come on: 1..16 distinct names, kept in byte order. */
export const Channels = withMessage(
  new t.Type<string[], string[], unknown>(
    'Channels',
    (u): u is string[] =>
      Array.isArray(u) && u.every((c) => typeof c === 'string' && CHANNEL_PATTERN.test(c)),
    (u, c) => {
      if (!Array.isArray(u) || !u.every((x) => typeof x === 'string' && CHANNEL_PATTERN.test(x)))
        return t.failure(u, c);
      const out = [...new Set(u as string[])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      return out.length >= 1 && out.length <= MAX_CHANNELS ? t.success(out) : t.failure(u, c);
    },
    (a) => a,
  ),
  `a list of 1..${MAX_CHANNELS} channel names, each 1..32 characters of [a-z0-9_-] starting with a letter`,
);

/** The most routing steps a contact carries. */
export const MAX_STEPS = 8;
/** A routing step: `afterMs` after the contact arrived, its requirements become these. */
const stepOf = (skills: t.Type<string[], string[], unknown>, name: string) =>
  strict({ afterMs: MaxWaitMs, skills }, { priority: Priority }, name);
/** A step as clients write it (skills with minimum levels) and as the stream carries it (routing skills). */
export const StepBody = stepOf(Requirements, 'StepBody');
export const Step = stepOf(RoutingSkills, 'Step');
export type Step = t.TypeOf<typeof Step>;
const stepsOf = (step: t.Type<Step, unknown, unknown>) =>
  withMessage(
    t.refinement(
      t.array(step),
      (xs) =>
        xs.length >= 1 &&
        xs.length <= MAX_STEPS &&
        xs.every((x, i) => i === 0 || xs[i - 1]!.afterMs < x.afterMs),
      'Steps',
    ),
    `a list of 1..${MAX_STEPS} steps {afterMs, skills, priority?}, each afterMs (1..604,800,000 ms after the contact arrived) later than the one before`,
  );
/** 1..8 steps, each later than the one before. */
export const StepsBody = stepsOf(StepBody);
export const Steps = stepsOf(Step);
/** The most preferred agents a contact names. */
export const MAX_PREFERRED = 10;
/** Agents a contact is offered to first (a returning customer's last agent): 1..10 distinct ids. */
export const PreferredAgents = withMessage(
  t.refinement(
    t.array(Id),
    (xs) => xs.length >= 1 && xs.length <= MAX_PREFERRED && new Set(xs).size === xs.length,
    'PreferredAgents',
  ),
  `a list of 1..${MAX_PREFERRED} distinct agent ids`,
);
/** How long a contact waits for its preferred agents before anyone eligible may take it. */
export const PreferredForMs = msBetween('PreferredForMs', 1, 7 * DAY_MS);

/** Bodies as clients send them over HTTP (see API.md). A name is one line (OneLineName). */
export const RegisterAgentBody = strict(
  { id: Id, skills: AgentSkills },
  { name: OneLineName, capacity: Capacity, wrapUpMs: WrapUpMs },
  'RegisterAgentBody',
);
export const UpdateAgentBody = strict(
  {},
  { name: OneLineName, skills: AgentSkills, capacity: Capacity, wrapUpMs: WrapUpMsOrNull },
  'UpdateAgentBody',
);
export const AgentPresence = withMessage(
  t.keyof({ available: null, away: null, offline: null }, 'AgentPresence'),
  'one of "available", "away", "offline"',
);
export type AgentPresence = t.TypeOf<typeof AgentPresence>;

/** Workspace settings (PUT /settings replaces them whole; a field left out takes its default). */
export const SettingsBody = strict(
  {},
  {
    offerTimeoutMs: OfferTimeoutMs,
    wrapUpMs: WrapUpMs,
    missedOfferPresence: AgentPresence,
    maxWaitMs: t.union([MaxWaitMs, t.null]),
    channels: Channels,
    priorityWeightMs: t.union([PriorityWeightMs, t.null]),
    agentSelection: AgentSelectionCodec,
  },
  'SettingsBody',
);
/** Where an assigned contact goes next: new skills, and a new priority if given. */
export const TransferBody = strict({ skills: Requirements }, { priority: Priority }, 'TransferBody');
/** The agent answering an offer (until keys name the agent, the body does). */
export const OfferAnswerBody = strict({ agentId: Id }, {}, 'OfferAnswerBody');
export const ChangeAgentStateBody = strict({ state: AgentPresence }, {}, 'ChangeAgentStateBody');
export const QueueContactBody = strict(
  { skills: Requirements },
  {
    id: Id,
    priority: Priority,
    attributes: Attributes,
    maxWaitMs: MaxWaitMs,
    channel: Channel,
    steps: StepsBody,
    preferredAgents: PreferredAgents,
    preferredForMs: PreferredForMs,
  },
  'QueueContactBody',
);

/** Commands as they are appended to a workspace's command stream. */
export const RegisterAgent = t.intersection([
  t.type({ type: t.literal('RegisterAgent'), agentId: Id, skills: RoutingSkills, capacity: Capacity }),
  t.partial({ name: Name, wrapUpMs: WrapUpMs }),
]);
export const UpdateAgent = t.intersection([
  t.type({ type: t.literal('UpdateAgent'), agentId: Id }),
  // wrapUpMs null: the agent's own wrap-up time is removed (the workspace's applies again).
  t.partial({ name: Name, skills: RoutingSkills, capacity: Capacity, wrapUpMs: WrapUpMsOrNull }),
]);
export const ChangeAgentState = t.type({
  type: t.literal('ChangeAgentState'),
  agentId: Id,
  state: AgentPresence,
});
export const RemoveAgent = t.type({ type: t.literal('RemoveAgent'), agentId: Id });
export const QueueContact = t.intersection([
  t.type({ type: t.literal('QueueContact'), contactId: Id, skills: RoutingSkills, priority: Priority }),
  t.partial({
    attributes: Attributes,
    maxWaitMs: MaxWaitMs,
    channel: Channel,
    steps: Steps,
    preferredAgents: PreferredAgents,
    preferredForMs: PreferredForMs,
  }),
]);
export const AbandonContact = t.type({ type: t.literal('AbandonContact'), contactId: Id });
/**
 * `agentId`: the agent the completion is for, when an `agent` key sends it: refused unless the
 * contact is that agent's when the command's turn comes (the API checked it on arrival).
 */
export const CompleteContact = t.intersection([
  t.type({ type: t.literal('CompleteContact'), contactId: Id }),
  t.partial({ agentId: Id }),
]);

export const ChangeSettings = t.intersection([
  t.type({
    type: t.literal('ChangeSettings'),
    offerTimeoutMs: OfferTimeoutMs,
    wrapUpMs: WrapUpMs,
    missedOfferPresence: AgentPresence,
    maxWaitMs: t.union([MaxWaitMs, t.null]),
  }),
  // Left out: the channels stay as they are (channels are added, never removed); no aging; the
  // longest available agent.
  t.partial({ channels: Channels, priorityWeightMs: PriorityWeightMs, agentSelection: AgentSelectionCodec }),
]);
export const TransferContact = t.intersection([
  t.type({ type: t.literal('TransferContact'), contactId: Id, skills: RoutingSkills }),
  t.partial({ priority: Priority }),
]);
export const AcceptOffer = t.type({ type: t.literal('AcceptOffer'), contactId: Id, agentId: Id });
export const RejectOffer = t.type({ type: t.literal('RejectOffer'), contactId: Id, agentId: Id });

const Count = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n >= 1, 'Count');
/**
 * Timer commands: appended by the clock (the dispatcher role) when a due time passes, never by
 * clients. Each names the timer it fires (the offer, the wrap-up, the contact's arrival), and
 * changes something only if that timer is still current when the projector applies it.
 */
export const ExpireOffer = t.type({ type: t.literal('ExpireOffer'), contactId: Id, offer: Count });
export const EndWrapUp = t.type({ type: t.literal('EndWrapUp'), agentId: Id, wrapUp: Count });
export const ExpireContact = t.type({ type: t.literal('ExpireContact'), contactId: Id, seq: Count });
/** The time a contact (of arrival `seq`) waits for its preferred agents is over: anyone eligible may take it. */
export const EndPreference = t.type({ type: t.literal('EndPreference'), contactId: Id, seq: Count });
/** A contact's routing step `step` (1-based) is due: the contact of arrival `seq` takes its requirements. */
export const AdvanceStep = t.type({ type: t.literal('AdvanceStep'), contactId: Id, seq: Count, step: Count });

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
 * (completed, abandoned or expired) more than `keepMs` before the command's own time are removed, the
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
  ChangeSettings,
  TransferContact,
  AcceptOffer,
  RejectOffer,
  ExpireOffer,
  EndWrapUp,
  ExpireContact,
  AdvanceStep,
  EndPreference,
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
  'ChangeSettings',
  'TransferContact',
  'AcceptOffer',
  'RejectOffer',
  'ExpireOffer',
  'EndWrapUp',
  'ExpireContact',
  'AdvanceStep',
  'EndPreference',
];

/** Which document a command is about: the key of its outcome's body. */
export function commandTarget(c: Command): { kind: 'agent' | 'contact' | 'workspace'; id: string } {
  if ('contactId' in c) return { kind: 'contact', id: c.contactId };
  return 'agentId' in c ? { kind: 'agent', id: c.agentId } : { kind: 'workspace', id: '' };
}
