import { IntervalStats, loggedEventOf } from '../domain/intervals.ts';
import type { Fact } from '../domain/model.ts';
import { IDEMPOTENCY_TTL_S, POSITION_PATTERN } from '../domain/values.ts';
import { accessProblem } from './access.ts';
import { checkDecision, replayAssignment, showPair } from './assignments.ts';
import { type Expected, expectedOf } from './command-replay.ts';
import {
  type CommandEntry,
  commandEntry,
  describe,
  type Entry,
  type Envelope,
  envelope,
  positionMs,
} from './entries.ts';
import { type ContactMeta, differences, factData, iso, jsonEqual } from './expected.ts';
import { IdempotencyKeys, type KeyedCommand, Outcomes } from './ledgers.ts';
import { bodyWant, type DocumentMade } from './outcome-body.ts';
import { ReplayState } from './replay-state.ts';
import { positionBefore, type Violation, type ViolationKind, Violations } from './violations.ts';

/**
 * The replay at the heart of the audit, fed with stream entries in order (pure: no I/O; see
 * read.ts for Redis and `auditEntries` in report.ts for arrays).
 *
 * Commands are the source of truth: each is decided by the model (`decide`, at its position's
 * milliseconds) and its facts applied to an in-place state (ReplayState, the same rules as
 * `evolve`). The event log is then held to it: a command's facts (or its CommandRejected) are the
 * events carrying its `meta.commandId`, in command order, equal to the model's, each command
 * once; commands with no event are those the model gives no fact (a state set to itself). Each
 * AssignmentMade is checked against rule 1 for the state at `meta.basedOn` (every command up to
 * that position plus every earlier assignment), must be possible (contact queued, agent
 * available below capacity holding every skill) and is then applied.
 */
export interface AuditOptions {
  /** Report only violations after this position; the replay still starts at the beginning. */
  readonly after?: string;
  /** The dispatcher is idle: at the end no queued contact may have an eligible available agent. */
  readonly idle?: boolean;
  /** Violations kept with their details (all are counted). Default 1000. */
  readonly keep?: number;
  /** An Idempotency-Key appended twice within this long (ms) is a violation. Default 24 h. */
  readonly idempotencyTtlMs?: number;
  /**
   * Count the events replayed into 15-minute intervals (`intervals`, src/domain/intervals.ts),
   * decisions within this service-level threshold (ms), to compare with the live interval
   * projection (src/audit/intervals-check.ts). Absent: not counted.
   */
  readonly intervalServiceLevelMs?: number;
  /**
   * The agent each `agent` API key of the workspace is bound to (key id → agent id): a command of
   * such a key naming another agent is a violation (src/audit/access.ts). Absent: not checked.
   */
  readonly keyAgents?: ReadonlyMap<string, string>;
}

interface Pending {
  readonly entry: CommandEntry;
  readonly events: readonly Expected[];
  next: number;
}

/** A command up to a decision's basedOn whose events the log does not hold before the decision. */
interface Late extends Pending {
  /** The AssignmentMade based on it. */
  readonly decision: string;
}

export interface RejectedCommand {
  readonly position: string;
  readonly commandId: string;
  readonly command: string;
  readonly target?: string;
  readonly status: number;
  readonly title: string;
  readonly detail: string;
}

/**
 * The workspace's counters (sb:{ws}:stats, GET /stats) and the event each step counts in them:
 * one for each of these events it appends.
 */
export const COUNTED_EVENTS: Readonly<Record<string, string>> = {
  ContactQueued: 'queued',
  AssignmentMade: 'assignments',
  ContactCompleted: 'completed',
  ContactAbandoned: 'abandoned',
  ContactExpired: 'expired',
  ContactTransferred: 'transferred',
};

/** Commands held back for decisions at most (Auditor.late): memory and time stay bounded. */
const LATE_HELD = 1_000;

/** The meta keys of a fact: its command's, as the projector has always written them. */
const FACT_META = new Set(['commandId', 'idempotencyKey', 'requestId', 'keyId', 'role']);

export class Auditor {
  readonly state = new ReplayState();
  readonly agentPositions = new Map<string, string>();
  readonly contactMeta = new Map<string, ContactMeta>();
  readonly violations: Violations;
  /** Positions of the AssignmentMade events replayed, in order. */
  readonly assignmentPositions: string[] = [];
  readonly rejected: RejectedCommand[] = [];
  commands = 0;
  events = 0;
  facts = 0;
  assignments = 0;
  decisionsChecked = 0;
  decisionsUnverifiable = 0;
  lastEvent: string | undefined;
  /** Who did what: commands replayed by the API key and role that sent them (`-`: none, the clock's). */
  readonly byKey = new Map<string, number>();
  /** The last command replayed because its events were met (not merely passed over). */
  lastCommandMet: string | undefined;
  /** The projector checkpoint the command stream was read up to. */
  checkpoint: string | undefined;
  /** The last command replayed (decided and its facts applied), met or passed over. */
  lastCommandReplayed: string | undefined;
  /** The events replayed, counted in intervals (with `intervalServiceLevelMs`). */
  readonly intervals: IntervalStats | undefined;
  /** The counters of /stats (sb:{ws}:stats) as the events replayed give them (`COUNTED_EVENTS`). */
  readonly counters = new Map<string, number>();
  /**
   * How late each timer command replayed was appended: its position's time less the due time its
   * id names (`timer:<member>:<due>`), ms; and the latest of them.
   */
  readonly timerLags: number[] = [];
  latestTimer: { readonly commandId: string; readonly lagMs: number } | undefined;

  // Commands read and not yet replayed: `buffer[i - base]` is the command at index i.
  private buffer: CommandEntry[] = [];
  private base = 0;
  private cursor = 0;
  /** Command ids to indexes, built only when a fact is not for one of the next few commands. */
  private index: Map<string, number> | undefined;
  private indexed = 0;
  private readonly replayed = new Map<string, string>();
  private commandsComplete = false;
  private pending: Pending | undefined;
  /**
   * Commands replayed to reach a decision's basedOn whose events had not come yet (command id →
   * them): the projector appends a command's events before its checkpoint passes it, so a decision
   * based on it follows them. Met further on, they are held to the command; never met, missing.
   */
  private readonly late = new Map<string, Late>();
  /** The first command held back for the decision being replayed (kept while it waits for more commands). */
  private heldFor: Late | undefined;
  /** Events whose fields no writer writes were said with their other differences. */
  private readonly unwrittenSaid = new WeakSet<Envelope>();
  private readonly outcomes = new Outcomes((...v) => this.flag(...v));
  private readonly keys: IdempotencyKeys;
  private parsed: { position: string; env: Envelope } | undefined;
  /** The document the last fact's data was (outcome-body.ts, `BodyState`). */
  lastDocument: DocumentMade | undefined;

  get withoutIdempotencyKey(): number {
    return this.keys.withoutKey;
  }

  /** The last command replayed with this Idempotency-Key. */
  keyedCommand(key: string): KeyedCommand | undefined {
    return this.keys.last(key);
  }

  constructor(
    readonly workspace: string,
    private readonly opts: AuditOptions = {},
  ) {
    this.violations = new Violations(opts.after, opts.keep ?? 1000);
    this.keys = new IdempotencyKeys(
      (...v) => this.flag(...v),
      opts.idempotencyTtlMs ?? IDEMPOTENCY_TTL_S.default * 1000,
    );
    this.intervals =
      opts.intervalServiceLevelMs === undefined ? undefined : new IntervalStats(opts.intervalServiceLevelMs);
  }

  addCommands(entries: readonly Entry[]): void {
    for (const raw of entries) {
      this.buffer.push(commandEntry(raw));
    }
  }

  /** Whether every command up to the checkpoint has been added (`false` reopens for more). */
  commandsEnd(complete: boolean): void {
    this.commandsComplete = complete;
  }

  /**
   * The id of the command whose events are being met and that still owes some (its facts are
   * all applied already): a replay stopped here would be half-way through one command's events.
   */
  get owing(): string | undefined {
    const p = this.pending;
    return p && p.next < p.events.length ? p.entry.commandId : undefined;
  }

  /** Commands added and not yet replayed. */
  get commandsAhead(): number {
    return this.base + this.buffer.length - this.cursor;
  }

  /** Entries of the outcome stream (a suffix of it: it is trimmed from the front). */
  addOutcomes(entries: readonly Entry[]): void {
    this.outcomes.add(entries);
  }

  /** The outcome stream was trimmed past what was read: the next outcome added starts it anew. */
  outcomesTrimmed(): void {
    this.outcomes.trimmed();
  }

  /** Replays one event. False: more commands are needed first (add them and call again). */
  processEvent([position, fields]: Entry): boolean {
    let env = this.parsed?.position === position ? this.parsed.env : undefined;
    if (!env) {
      const e = envelope(fields);
      if (typeof e === 'string') {
        this.flag('event', 'events', position, `unreadable event: ${e}`);
        this.tally(position, fields, undefined);
        this.counted(position);
        return true;
      }
      env = e;
      this.parsed = { position, env };
    }
    const done =
      env.type === 'AssignmentMade' ? this.onAssignment(position, env) : this.onFact(position, env);
    if (done) {
      // What no writer writes, said on whatever path the event took (a fact that differs says it
      // with its other differences).
      if (env.unwritten && !this.unwrittenSaid.has(env))
        this.flag(
          'fact',
          'events',
          position,
          `${env.type} holds what no writer writes: ${env.unwritten.join(', ')}`,
        );
      this.tally(position, fields, env);
      const counter = COUNTED_EVENTS[env.type];
      if (counter) this.counters.set(counter, (this.counters.get(counter) ?? 0) + 1);
      this.counted(position);
    }
    return done;
  }

  /**
   * Counts an event into the intervals as the live projection reads it (`loggedEventOf`: the
   * entry's `type` field and its envelope's data), without parsing a readable envelope again.
   */
  private tally(position: string, fields: readonly string[], env: Envelope | undefined): void {
    const stats = this.intervals;
    if (!stats) return;
    let type: string | undefined;
    let text: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'type') type = fields[i + 1];
      else if (fields[i] === 'event') text = fields[i + 1];
    }
    // A readable envelope's type is its `type` field's, when the entry has one.
    if (env) {
      if (type) stats.add({ ms: positionMs(position), type, data: env.data });
      return;
    }
    const e = loggedEventOf(position, type, text);
    if (e) stats.add(e);
  }

  /** What `env` holds that no writer writes, to say among its differences (said once). */
  unwrittenOf(env: Envelope): readonly string[] {
    if (!env.unwritten) return [];
    this.unwrittenSaid.add(env);
    return env.unwritten;
  }

  /**
   * After the last event: commands up to the checkpoint that no event mentioned must be ones the
   * model gives no fact. False: more commands are needed first.
   */
  settle(): boolean {
    this.close();
    for (const l of this.late.values()) this.owes(l.entry, l.events.slice(l.next));
    this.late.clear();
    while (this.cursor < this.end) this.passOver(this.at(this.cursor));
    return this.commandsComplete;
  }

  /** The checks of the end of the log: outcomes of no command, and the idle dispatcher. */
  finish(): void {
    this.outcomes.finish();
    if (this.opts.idle) {
      const due = this.state.routing.next();
      if (due)
        this.flag(
          'idle',
          'state',
          this.lastEvent ?? '0-0',
          `the dispatcher is idle, yet contact ${due.contactId} waits while agent ${due.agentId} could take it`,
        );
    }
  }

  /** `through`: the last position the violation may concern, when later than `position` (Violations.add). */
  flag(
    kind: ViolationKind,
    stream: Violation['stream'],
    position: string,
    message: string,
    through?: string,
  ): void {
    this.violations.add({ kind, stream, position, message }, through);
  }

  private get end(): number {
    return this.base + this.buffer.length;
  }

  private at(i: number): CommandEntry {
    return this.buffer[i - this.base]!;
  }

  private counted(position: string): void {
    this.events++;
    this.lastEvent = position;
    this.parsed = undefined;
  }

  private onFact(position: string, env: Envelope): boolean {
    const id = env.meta.commandId;
    if (typeof id !== 'string') {
      this.flag('event', 'events', position, `${env.type} without meta.commandId: it belongs to no command`);
      return true;
    }
    if (this.pending?.entry.commandId === id) {
      this.match(this.pending, position, env);
      return true;
    }
    this.close();
    const index = this.find(id);
    if (index === undefined) {
      const late = this.late.get(id);
      if (late !== undefined) {
        this.late.delete(id);
        this.pending = late;
        this.match(late, position, env);
        return true;
      }
      const first = this.replayed.get(id);
      if (first !== undefined) {
        this.flag(
          'duplicate',
          'events',
          position,
          `${env.type} of command ${id} (at ${first}), already applied`,
        );
        return true;
      }
      if (!this.commandsComplete) return false;
      this.flag(
        'event',
        'events',
        position,
        `${env.type} of command ${id}, which is not in the command stream up to the checkpoint ${this.checkpoint ?? ''}`,
      );
      return true;
    }
    while (this.cursor < index) this.passOver(this.at(this.cursor), position);
    const entry = this.at(index);
    this.pending = { entry, events: this.replay(entry), next: 0 };
    this.lastCommandMet = entry.position;
    this.match(this.pending, position, env);
    return true;
  }

  /** Where a command not replayed yet is among those added; undefined when it is not there. */
  private find(id: string): number | undefined {
    // Nearly always the next command, or one a few event-less commands on.
    const near = Math.min(this.end, this.cursor + 64);
    for (let i = this.cursor; i < near; i++) if (this.at(i).commandId === id) return i;
    this.index ??= new Map();
    for (this.indexed = Math.max(this.indexed, this.base); this.indexed < this.end; this.indexed++) {
      const cid = this.at(this.indexed).commandId;
      if (!this.index.has(cid)) this.index.set(cid, this.indexed);
    }
    const i = this.index.get(id);
    return i !== undefined && i >= this.cursor && this.at(i).commandId === id ? i : undefined;
  }

  /** A command no event mentions (before `until`): right only if the model gives it no event. */
  private passOver(entry: CommandEntry, until?: string): void {
    const events = this.replay(entry);
    if (events.length > 0) this.owes(entry, events, until);
  }

  /** `entry`'s `events` are missing from the event log (before `until`, a decision, when given). */
  private owes(entry: CommandEntry, events: readonly { type: string }[], until?: string): void {
    this.flag(
      'missing',
      'commands',
      entry.position,
      `${describe(entry)}: no ${events.map((e) => e.type).join(', ')} in the event log${until ? ` before ${until}` : ''}`,
    );
  }

  /** Closes the command whose events were being met: any it still owes are missing. */
  private close(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    if (p.next < p.events.length) this.owes(p.entry, p.events.slice(p.next));
  }

  private match(p: Pending, position: string, env: Envelope): void {
    const exp = p.events[p.next];
    if (!exp) {
      // A command the model gives no fact for changes nothing at its time: the event is no second
      // application of it, it is a fact the model does not decide.
      if (p.events.length === 0)
        this.flag(
          'fact',
          'events',
          position,
          `${env.type} of ${describe(p.entry)}, which the model gives no fact for (the command changes nothing at its time)`,
        );
      else
        this.flag(
          'duplicate',
          'events',
          position,
          `a further ${env.type} of ${describe(p.entry)}: applied twice`,
        );
      return;
    }
    p.next++;
    if (env.type === 'CommandRejected') this.rejected.push(rejection(position, env.data));
    else this.facts++;
    const e = p.entry;
    if (env.type !== exp.type) {
      const model =
        exp.type === 'CommandRejected' ? `${exp.type} ${exp.data.status} ${exp.data.title}` : exp.type;
      this.flag('fact', 'events', position, `${describe(e)}: the log has ${env.type}, the model ${model}`);
      return;
    }
    const problems: string[] = [];
    if (exp.loose ? !looseEqual(env.data, exp.data) : !jsonEqual(env.data, exp.data))
      problems.push(differences(env.data, exp.data));
    if (env.at !== iso(e.at)) problems.push(`at: log ${String(env.at)}, model ${iso(e.at)}`);
    if (env.workspace !== this.workspace) problems.push(`workspace: log ${String(env.workspace)}`);
    const m = env.meta;
    if (m.idempotencyKey !== e.idempotencyKey || m.requestId !== e.requestId)
      problems.push('meta: not the idempotency key and request id of its command');
    if (m.keyId !== e.keyId || m.role !== e.role)
      problems.push('meta: not the API key id and role of its command');
    const extra = Object.keys(m).filter((k) => !FACT_META.has(k));
    if (extra.length > 0)
      problems.push(
        `meta: ${extra.join(', ')} (a fact carries its command's id, Idempotency-Key, request id and API key only)`,
      );
    problems.push(...this.unwrittenOf(env));
    if (problems.length > 0)
      this.flag('fact', 'events', position, `${env.type} of ${describe(e)} differs: ${problems.join('; ')}`);
  }

  /** Decides a command, applies its facts, checks its outcome; returns the events it must have. */
  private replay(e: CommandEntry): Expected[] {
    this.cursor++;
    this.lastCommandReplayed = e.position;
    const first = this.replayed.get(e.commandId);
    if (first === undefined) this.replayed.set(e.commandId, e.position);
    else
      this.flag(
        'command',
        'commands',
        e.position,
        `command id ${e.commandId} appended again (first at ${first})`,
      );
    this.commands++;
    const who = e.keyId === undefined ? '-' : `${e.keyId} ${e.role ?? '-'}`;
    this.byKey.set(who, (this.byKey.get(who) ?? 0) + 1);
    const refused = accessProblem(e, this.opts.keyAgents);
    if (refused) this.flag('command', 'commands', e.position, refused);
    if (this.cursor - this.base > 65_536) {
      this.buffer = this.buffer.slice(this.cursor - this.base);
      this.base = this.cursor;
    }
    this.keys.check(e);
    if (e.commandId.startsWith('timer:')) this.timerFired(e);
    const { events, status, command } = expectedOf(e, this.state, (f) => this.apply(f, e));
    const recorded = this.outcomes.check(e, status, () =>
      bodyWant(this, e.position, command, events, status),
    );
    if (e.idempotencyKey !== undefined) this.keys.answered(e, status, recorded);
    return events;
  }

  private timerFired(e: CommandEntry): void {
    const due = Number(e.commandId.slice(e.commandId.lastIndexOf(':') + 1));
    if (!Number.isSafeInteger(due)) return;
    const lagMs = e.at - due;
    this.timerLags.push(lagMs);
    if (!this.latestTimer || lagMs > this.latestTimer.lagMs)
      this.latestTimer = { commandId: e.commandId, lagMs };
  }

  private apply(f: Fact, e: CommandEntry): Expected {
    const data = factData(f, e.position, this.state.contacts, this.state.settings);
    this.lastDocument =
      f.type === 'ContactQueued'
        ? { of: f.contact, position: e.position, doc: data }
        : f.type === 'AgentRegistered' || f.type === 'AgentUpdated'
          ? { of: f.agent, position: e.position, doc: data }
          : undefined;
    this.state.apply(f);
    if (f.type === 'AgentRemoved') this.agentPositions.delete(f.agentId);
    else if (f.type === 'ContactQueued')
      this.contactMeta.set(f.contact.id, {
        position: e.position,
        queuedBy: e.commandId,
        assignedIn: undefined,
        checked: 0,
      });
    else if ('agent' in f) this.agentPositions.set(f.agent.id, e.position);
    else if (f.type === 'ContactsForgotten') for (const id of f.contactIds) this.contactMeta.delete(id);
    else if ('contactId' in f) {
      // A fact about a contact (and perhaps its agent) moves the contact document's position only.
      const meta = this.contactMeta.get(f.contactId);
      if (meta) meta.position = e.position;
    } else if ('agentId' in f) this.agentPositions.set(f.agentId, e.position);
    return { type: f.type, data };
  }

  private onAssignment(position: string, env: Envelope): boolean {
    this.close();
    const { contactId, agentId } = env.data;
    if (typeof contactId !== 'string' || typeof agentId !== 'string') {
      this.flag('event', 'events', position, 'AssignmentMade without contactId and agentId');
      return true;
    }
    const pair = `${contactId}->${agentId}`;
    const basedOn = env.meta.basedOn;
    if (typeof basedOn !== 'string' || !POSITION_PATTERN.test(basedOn)) {
      this.decisionsUnverifiable++;
      // Where the decision sits in the log is a hint only: the dispatcher may have read older state.
      const here = showPair(this.state.routing.next());
      const why =
        basedOn === undefined ? 'no meta.basedOn' : `meta.basedOn ${JSON.stringify(basedOn)} is no position`;
      this.flag(
        'unverifiable',
        'events',
        position,
        `AssignmentMade ${pair} cannot be re-checked: ${why} (rule 1 at this place in the log: ${here})`,
      );
    } else {
      // The state at basedOn: every command up to it (those no event mentioned have no facts).
      while (this.cursor < this.end && !positionBefore(basedOn, this.at(this.cursor).position)) {
        const entry = this.at(this.cursor);
        const events = this.replay(entry);
        if (events.length === 0) continue;
        const held: Late = { entry, events, next: 0, decision: position };
        // Held to meet its facts further on, up to a bound (a hole in the log would hold every
        // command in it): past it, missing here, as before a decision.
        if (this.late.size < LATE_HELD) this.late.set(entry.commandId, held);
        else this.owes(entry, events, position);
        if (this.heldFor?.decision !== position) this.heldFor = held;
      }
      if (this.cursor === this.end && !this.commandsComplete) return false;
      const late = this.heldFor?.decision === position ? this.heldFor : undefined;
      this.heldFor = undefined;
      if (late) {
        this.decisionsUnverifiable++;
        this.flag(
          'unverifiable',
          'events',
          position,
          `AssignmentMade ${pair} cannot be re-checked: based on ${basedOn}, yet the events of the command at ${late.entry.position} are not before it`,
        );
      } else checkDecision(this, position, pair, basedOn);
    }
    replayAssignment(this, position, env, contactId, agentId);
    return true;
  }
}

function rejection(position: string, d: Record<string, unknown>): RejectedCommand {
  return {
    position,
    commandId: String(d.commandId ?? ''),
    command: String(d.command ?? ''),
    ...(typeof d.target === 'string' ? { target: d.target } : {}),
    status: Number(d.status),
    title: String(d.title ?? ''),
    detail: String(d.detail ?? ''),
  };
}

/** A malformed entry's rejection: the fields the model knows, its `commandId` only if the entry has one, no target. */
function looseEqual(data: Record<string, unknown>, want: Record<string, unknown>): boolean {
  if (data.target !== undefined || (data.commandId !== undefined && want.commandId === undefined))
    return false;
  return Object.entries(want).every(([k, v]) => data[k] === v);
}
