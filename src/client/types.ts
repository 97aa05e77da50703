/**
 * The documents and bodies of docs/API.md as the client sends and receives them. The bodies and
 * documents are the server's own types (src/domain), imported as types only: the client carries
 * no runtime code of the server (no Redis, no fastify, no io-ts).
 */
import type * as t from 'io-ts';
import type {
  ChangeAgentStateBody,
  QueueContactBody,
  RegisterAgentBody,
  SettingsBody,
  TransferBody,
  UpdateAgentBody,
} from '../domain/commands.ts';
import type { EventType } from '../domain/events.ts';
import type { Interval, IntervalFigures } from '../domain/intervals.ts';
import type { QueueStats, WindowStats, WorkspaceStats } from '../domain/stats.ts';
import type { AgentDocument, AgentStateName, ContactDocument } from '../domain/views.ts';

export type {
  AgentDocument,
  AgentStateName,
  ContactDocument,
  EventType,
  Interval,
  IntervalFigures,
  QueueStats,
  WindowStats,
};
/** An agent's skill as clients write it: a name (level 1), or a name with a proficiency 1..5. */
export type AgentSkill = string | { readonly name: string; readonly level: number };
/** A contact's requirement as clients write it: a name (any level), or a name with a minimum level. */
export type Requirement = string | { readonly name: string; readonly minLevel: number };
/** The server's body types decode skills to routing strings; clients send them as written. */
type WithSkills<B, S> = Omit<B, 'skills'> & { skills: readonly S[] };
export type RegisterAgent = WithSkills<t.TypeOf<typeof RegisterAgentBody>, AgentSkill>;
export type UpdateAgent = Omit<t.TypeOf<typeof UpdateAgentBody>, 'skills'> & {
  skills?: readonly AgentSkill[];
};
export type AgentPresence = t.TypeOf<typeof ChangeAgentStateBody>['state'];
export interface Step {
  readonly afterMs: number;
  readonly skills: readonly Requirement[];
  readonly priority?: number;
}
export type QueueContact = Omit<WithSkills<t.TypeOf<typeof QueueContactBody>, Requirement>, 'steps'> & {
  steps?: readonly Step[];
};
export type Transfer = WithSkills<t.TypeOf<typeof TransferBody>, Requirement>;
export type SettingsChange = t.TypeOf<typeof SettingsBody>;

/** A stream position, `<ms>-<seq>` (docs/API.md "Words"). */
export type Position = string;

/** A queued contact's document also says where it stands (docs/API.md "Queue position and estimated wait"). */
export type ContactView = ContactDocument & { queuePosition?: number; estimatedWaitMs?: number | null };

export interface Settings {
  readonly offerTimeoutMs: number;
  readonly wrapUpMs: number;
  readonly missedOfferPresence: AgentPresence;
  readonly maxWaitMs: number | null;
  readonly channels: readonly string[];
  /** Priority aging: what one priority point is worth in waiting time (only when set). */
  readonly priorityWeightMs?: number | null;
  /** How an agent is chosen among those who can take a contact (only when set). */
  readonly agentSelection?: SettingsChange['agentSelection'];
}

/** GET /stats. */
export type Stats = WorkspaceStats;

/** GET /stats/intervals: the log's figures in 15-minute intervals (docs/API.md "Historical intervals"). */
export interface StatsIntervals {
  /** The start of the first interval (at or before the `from` asked for). */
  readonly from: string;
  readonly to: string;
  /** In time order; each with the same figures per queue (`"<channel> <skills as JSON>"`). */
  readonly intervals: readonly Interval[];
  /** live: the live interval projection (current to `position`); log: read from the log for this request. */
  readonly source: 'live' | 'log';
  /** With `live`: the last event its figures include. */
  readonly position?: Position;
}

/** The OpenAPI 3.1 document (GET /openapi.json). */
export interface OpenApiDocument {
  readonly openapi: string;
  readonly info: { readonly title: string; readonly version: string; readonly [more: string]: unknown };
  readonly paths: Record<string, Record<string, unknown>>;
  readonly [more: string]: unknown;
}

/** The event envelope, the same on GET /events and the live feed. */
export interface EventEnvelope<D = Record<string, unknown>> {
  readonly position: Position;
  readonly type: EventType;
  readonly workspace: string;
  readonly at: string;
  readonly data: D;
  readonly meta: {
    readonly commandId?: string;
    readonly idempotencyKey?: string;
    readonly causationId?: string;
    readonly requestId?: string;
    readonly basedOn?: string;
    readonly keyId?: string;
    readonly role?: string;
  };
}

export interface EventPage {
  readonly events: EventEnvelope[];
  /** Null at the end of the log so far. */
  readonly next: Position | null;
}

export interface StateAt {
  readonly workspace: string;
  readonly at: Position;
  readonly position: Position | null;
  readonly checkpoint: Position | null;
  readonly agents: AgentDocument[];
  readonly contacts: ContactDocument[];
  readonly queue: { contactId: string; skills: string[]; priority: number; queuedAt: string }[];
  readonly snapshot: Position | null;
  readonly replayed: { readonly events: number; readonly commands: number };
}

export type Role = 'admin' | 'integration' | 'supervisor' | 'auditor' | 'agent';

export interface ApiKeyInfo {
  readonly keyId: string;
  readonly workspace: string;
  readonly role: Role;
  readonly agentId?: string;
  readonly name?: string;
  readonly createdAt: string;
  readonly revokedAt?: string;
}

export interface WsTicket {
  readonly ticket: string;
  readonly expiresAt: string;
}

export interface Status {
  readonly version: string;
  readonly state: 'running' | 'paused' | 'stopping';
  readonly reason?: string;
  readonly roles: string[];
  readonly workspaces: string[];
  readonly auth: 'on' | 'off';
  readonly uptimeS: number;
  readonly [more: string]: unknown;
}

/**
 * A command's answer: `applied` with the resulting document (`value`, which carries the command's
 * `position`), or `pending` (202: durable, its outcome not known in time; read with
 * `minPosition: position` to see it). A rejection (404/409/422) is thrown as a SwitchboardError.
 */
export type CommandResult<T> =
  | {
      readonly applied: true;
      readonly status: 200 | 201;
      /** The command's command-stream position: the `minPosition` that reads its own write. */
      readonly position: Position;
      readonly value: T & { readonly position: Position };
      /** The server answered a repeat of the same Idempotency-Key with the first outcome. */
      readonly replayed: boolean;
      readonly idempotencyKey: string;
    }
  | {
      readonly applied: false;
      readonly status: 202;
      readonly position: Position;
      readonly commandId: string;
      /** The agent or contact the command is about (`queueContact` without an id: the one the server made). */
      readonly id?: string;
      readonly idempotencyKey: string;
    };

export interface CommandOptions {
  /** The Idempotency-Key (default: a random UUID per call, kept across its retries). */
  readonly idempotencyKey?: string;
  readonly signal?: AbortSignal;
}

export interface QueryOptions {
  /** Wait (bounded) until the projections applied this command position: read your own writes. */
  readonly minPosition?: Position;
  readonly signal?: AbortSignal;
}
