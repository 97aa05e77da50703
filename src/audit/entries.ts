import { type Command, MAX_FORGOTTEN_PER_COMMAND } from '../domain/commands.ts';
import {
  CHANNEL_PATTERN,
  MAX_CHANNELS,
  MAX_LEVEL,
  MAX_SKILLS,
  ROUTING_SKILL_PATTERN,
} from '../domain/values.ts';

/**
 * Stream entries as the auditor reads them: commands as appended by src/adapters/redis/lua
 * (append-command: fields type, commandId, command, idempotencyKey?, attributes?, requestId?,
 * keyId?, role?)
 * and events as the projector and dispatcher append them (fields type, event: the envelope JSON).
 */
export type Entry = [position: string, fields: string[]];

export interface CommandEntry {
  readonly position: string;
  /** The command's time: its position's milliseconds (when Redis accepted it). */
  readonly at: number;
  readonly type: string;
  /** Whether the entry has a `type` field at all (one Switchboard did not write may not). */
  readonly typed: boolean;
  readonly commandId: string;
  readonly idempotencyKey?: string;
  readonly requestId?: string;
  /** The API key that sent it (its id and role); none for the clock's and the archiver's commands. */
  readonly keyId?: string;
  readonly role?: string;
  readonly command?: string;
  readonly attributes?: string;
}

export interface Envelope {
  readonly type: string;
  readonly workspace?: unknown;
  readonly at?: unknown;
  readonly data: Record<string, unknown>;
  readonly meta: Record<string, unknown>;
  /**
   * What the entry holds that no writer writes (none when absent): a field of the stream entry
   * beside `type` and `event` (`entry field <name>`), a key of the envelope beside type, workspace,
   * at, data and meta (`envelope key <name>`). The log says it and nothing re-checks it.
   */
  readonly unwritten?: readonly string[];
}

/** The keys of an envelope as every writer of the event stream has written it. */
const ENVELOPE_KEYS = new Set(['type', 'workspace', 'at', 'data', 'meta']);

export const positionMs = (position: string): number => Number(position.slice(0, position.indexOf('-')));

export function commandEntry([position, fields]: Entry): CommandEntry {
  // Built field by field, not spread: one object shape for every entry keeps the replay fast.
  const e: { -readonly [K in keyof CommandEntry]: CommandEntry[K] } = {
    position,
    at: positionMs(position),
    type: '',
    typed: false,
    commandId: '',
  };
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const v = fields[i + 1]!;
    switch (fields[i]) {
      case 'type':
        e.type = v;
        e.typed = true;
        break;
      case 'commandId':
        e.commandId = v;
        break;
      case 'command':
        e.command = v;
        break;
      case 'idempotencyKey':
        e.idempotencyKey = v;
        break;
      case 'requestId':
        e.requestId = v;
        break;
      case 'attributes':
        e.attributes = v;
        break;
      case 'keyId':
        e.keyId = v;
        break;
      case 'role':
        e.role = v;
        break;
    }
  }
  return e;
}

/** The envelope of an event entry, or a reason it cannot be read. */
export function envelope(fields: readonly string[]): Envelope | string {
  let text: string | undefined;
  let type: string | undefined;
  const unwritten: string[] = [];
  // The last of a field given twice, as the log's other readers take it (the live feed, the
  // interval statistics): the audit replays the event they count.
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i];
    if (name === 'event' || name === 'type') {
      if ((name === 'event' ? text : type) !== undefined) unwritten.push(`entry field ${name} given twice`);
      if (name === 'event') text = fields[i + 1];
      else type = fields[i + 1];
    } else unwritten.push(`entry field ${name}`);
  }
  if (text === undefined) return 'no "event" field';
  // Every writer sets it (readers filter by it: GET /events?type=, the interval statistics).
  if (type === undefined) return 'no "type" field';
  let env: unknown;
  try {
    env = JSON.parse(text);
  } catch {
    return 'its "event" field is not JSON';
  }
  const e = env as Partial<Envelope> | null;
  if (typeof e !== 'object' || e === null || typeof e.type !== 'string') return 'its envelope has no type';
  if (type !== e.type) return `its "type" field (${type}) is not its envelope's (${e.type})`;
  if (typeof e.data !== 'object' || e.data === null) return 'its envelope has no data';
  // The parsed object is the envelope (no copy: it is the replay's own, read once per event).
  // Every writer writes a meta object (a fact its command's id, a decision its basis): one missing
  // or of another kind is read as empty, and said.
  if (typeof e.meta !== 'object' || e.meta === null) {
    unwritten.push('meta' in e ? 'envelope key meta not an object' : 'no envelope key meta');
    (e as { meta: unknown }).meta = {};
  }
  for (const key in e) if (!ENVELOPE_KEYS.has(key)) unwritten.push(`envelope key ${key}`);
  if (unwritten.length > 0) (e as { unwritten?: readonly string[] }).unwritten = unwritten;
  return e as Envelope;
}

export type Decoded =
  | { readonly kind: 'command'; readonly command: Command }
  /** Not a command type this version applies: rejected with 422 unknown-command. */
  | { readonly kind: 'unknown' }
  /** Not the shape the API appends: rejected with 422 (the projector's shape check). */
  | { readonly kind: 'malformed' };

// The projector's shape check (src/projections/lua, `shapes`), which decides whether an entry is
// applied or refused as malformed; the API's codecs append only entries that pass it.
const ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Routing skills: a skill, or a skill with a level (`<skill>#<2..5>`). */
const SKILL = ROUTING_SKILL_PATTERN;
const isId = (v: unknown) => typeof v === 'string' && ID.test(v);
const isInt = (v: unknown, lo: number, hi: number) =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
const isName = (v: unknown) => v === undefined || typeof v === 'string';
function isSkills(v: unknown): boolean {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_SKILLS * MAX_LEVEL) return false;
  for (let i = 0; i < v.length; i++) {
    const s: unknown = v[i];
    if (typeof s !== 'string' || !SKILL.test(s) || (i > 0 && v[i - 1] >= s)) return false;
  }
  return true;
}
const PRESENCE = new Set(['available', 'away', 'offline']);
const SELECTIONS = new Set(['longest-available', 'most-skilled', 'least-occupied']);
const isChannel = (v: unknown) => typeof v === 'string' && CHANNEL_PATTERN.test(v);
/** One number, or 1..16 channels each with a number. */
const isCapacity = (v: unknown) =>
  isInt(v, 1, 100) ||
  (typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.keys(v).length >= 1 &&
    Object.keys(v).length <= MAX_CHANNELS &&
    Object.entries(v).every(([k, n]) => isChannel(k) && isInt(n, 1, 100)));
/** 1..8 steps {afterMs, skills, priority?}, each later than the one before. */
const isSteps = (v: unknown) =>
  v === undefined ||
  (Array.isArray(v) &&
    v.length >= 1 &&
    v.length <= 8 &&
    v.every((x: unknown, i) => {
      if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
      const st = x as Record<string, unknown>;
      return (
        isInt(st.afterMs, 1, 7 * DAY) &&
        isSkills(st.skills) &&
        (st.priority === undefined || isInt(st.priority, 0, 9)) &&
        (i === 0 || (v[i - 1] as { afterMs: number }).afterMs < (st.afterMs as number))
      );
    }));
const isChannels = (v: unknown) =>
  v === undefined ||
  (Array.isArray(v) &&
    v.length >= 1 &&
    v.length <= MAX_CHANNELS &&
    v.every((x, i) => isChannel(x) && (i === 0 || v[i - 1] < x)));
const DAY = 86_400_000;
const isCount = (v: unknown) => isInt(v, 1, Number.MAX_SAFE_INTEGER);
const isWrap = (v: unknown) => v === undefined || isInt(v, 0, DAY);
const isWait = (v: unknown) => v === undefined || isInt(v, 1, 7 * DAY);
const SHAPES: Record<string, (c: Record<string, unknown>) => boolean> = {
  RegisterAgent: (c) =>
    isId(c.agentId) && isSkills(c.skills) && isCapacity(c.capacity) && isName(c.name) && isWrap(c.wrapUpMs),
  UpdateAgent: (c) =>
    isId(c.agentId) &&
    (c.skills === undefined || isSkills(c.skills)) &&
    (c.capacity === undefined || isCapacity(c.capacity)) &&
    isName(c.name) &&
    (c.wrapUpMs === null || isWrap(c.wrapUpMs)),
  ChangeAgentState: (c) => isId(c.agentId) && PRESENCE.has(c.state as string),
  RemoveAgent: (c) => isId(c.agentId),
  QueueContact: (c) =>
    isId(c.contactId) &&
    isSkills(c.skills) &&
    isInt(c.priority, 0, 9) &&
    isWait(c.maxWaitMs) &&
    (c.channel === undefined || isChannel(c.channel)) &&
    isSteps(c.steps) &&
    (c.preferredAgents === undefined ||
      (Array.isArray(c.preferredAgents) &&
        c.preferredAgents.length >= 1 &&
        c.preferredAgents.length <= 10 &&
        c.preferredAgents.every(isId) &&
        new Set(c.preferredAgents).size === c.preferredAgents.length)) &&
    (c.preferredForMs === undefined ||
      (c.preferredAgents !== undefined && isInt(c.preferredForMs, 1, 7 * DAY))),
  AbandonContact: (c) => isId(c.contactId),
  CompleteContact: (c) => isId(c.contactId),
  ForgetContacts: (c) =>
    typeof c.keepMs === 'number' &&
    Number.isSafeInteger(c.keepMs) &&
    c.keepMs >= 0 &&
    isInt(c.max, 1, MAX_FORGOTTEN_PER_COMMAND),
  ChangeSettings: (c) =>
    isInt(c.offerTimeoutMs, 0, 3_600_000) &&
    isInt(c.wrapUpMs, 0, DAY) &&
    PRESENCE.has(c.missedOfferPresence as string) &&
    (c.maxWaitMs === null || isInt(c.maxWaitMs, 1, 7 * DAY)) &&
    isChannels(c.channels) &&
    (c.priorityWeightMs === undefined || isInt(c.priorityWeightMs, 1, 3_600_000)) &&
    (c.agentSelection === undefined || SELECTIONS.has(c.agentSelection as string)),
  TransferContact: (c) =>
    isId(c.contactId) && isSkills(c.skills) && (c.priority === undefined || isInt(c.priority, 0, 9)),
  AcceptOffer: (c) => isId(c.contactId) && isId(c.agentId),
  RejectOffer: (c) => isId(c.contactId) && isId(c.agentId),
  ExpireOffer: (c) => isId(c.contactId) && isCount(c.offer),
  EndWrapUp: (c) => isId(c.agentId) && isCount(c.wrapUp),
  ExpireContact: (c) => isId(c.contactId) && isCount(c.seq),
  EndPreference: (c) => isId(c.contactId) && isCount(c.seq),
  AdvanceStep: (c) => isId(c.contactId) && isCount(c.seq) && isInt(c.step, 1, 8),
};

/** The command of an entry, or why the projector does not apply it. */
export function decodeCommand(e: CommandEntry): Decoded {
  const shape = SHAPES[e.type];
  if (!shape) return { kind: 'unknown' };
  let body: unknown;
  try {
    body = JSON.parse(e.command ?? '');
  } catch {
    return { kind: 'malformed' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { kind: 'malformed' };
  const c = body as Record<string, unknown>;
  if (!shape(c)) return { kind: 'malformed' };
  c.type = e.type;
  if (e.attributes !== undefined) {
    try {
      c.attributes = JSON.parse(e.attributes);
    } catch {
      return { kind: 'malformed' };
    }
  }
  return { kind: 'command', command: c as unknown as Command };
}

/** Which document a command entry is about (the `target` of its rejection). */
export function targetOf(c: Command): string | undefined {
  return 'contactId' in c ? c.contactId : 'agentId' in c ? c.agentId : undefined;
}

/** A command entry as violations name it. */
export function describe(e: CommandEntry): string {
  const d = decodeCommand(e);
  return `${e.type} ${d.kind === 'command' && targetOf(d.command) !== undefined ? `${targetOf(d.command)} ` : ''}(command ${e.commandId} at ${e.position})`;
}
