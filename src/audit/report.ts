import type { RoutingIndex } from '../adapters/redis/routing-index.ts';
import { type AuditOptions, Auditor, type RejectedCommand } from './auditor.ts';
import type { Entry } from './entries.ts';
import type { ReplayState } from './replay-state.ts';
import { StateCheck } from './state-check.ts';
import { positionBefore, type Violation, type ViolationKind } from './violations.ts';

/** What an audit found, as the CLI prints it (`--json`: this object). */
export interface AuditSummary {
  readonly workspace: string;
  /** No violation reported. */
  readonly ok: boolean;
  /** Commands replayed: the command stream up to the projector checkpoint. */
  readonly commands: number;
  /** Commands appended after the checkpoint: not applied yet, not audited. */
  readonly pendingCommands: number;
  readonly events: number;
  readonly facts: number;
  readonly rejections: number;
  readonly assignments: number;
  /** AssignmentMade events re-checked against rule 1 at their basedOn. */
  readonly decisionsChecked: number;
  readonly decisionsUnverifiable: number;
  readonly commandsWithoutIdempotencyKey: number;
  /**
   * Who did what: the commands replayed by the API key that sent them, `"<keyId> <role>"`, and
   * `"-"` for those no key sent (timers, the archiver, AUTH=off); most first.
   */
  readonly commandsByKey: Readonly<Record<string, number>>;
  readonly checkpoint: string | null;
  readonly lastEvent: string | null;
  /**
   * The timer commands replayed (offers expired, wrap-ups ended, maximum waits, preferences, steps)
   * and how late the clock appended them after their due time, ms: a late timer is a contact that
   * waited past its limit or an offer held past its time. `latest`: the command id of the latest.
   */
  readonly timers: {
    readonly fired: number;
    readonly lagP50Ms: number | null;
    readonly lagP99Ms: number | null;
    readonly lagMaxMs: number | null;
    readonly latest: string | null;
  };
  /** Whether the documents and routing index were compared, or why not. */
  readonly state: string;
  /** Whether the live interval projection's tallies were compared with the log's, how many, or why not. */
  readonly intervals: string;
  readonly violationCount: number;
  readonly violationsByKind: Partial<Record<ViolationKind, number>>;
  /** Violations at or before `--after`, counted and not reported. */
  readonly violationsBeforeAfter: number;
  /** The first violations (up to the `keep` option), in the order found. */
  readonly violations: readonly Violation[];
  readonly seconds: number;
  readonly eventsPerS: number;
}

/** The summary, and what tests and tools in the same process may want besides. */
export interface AuditReport extends AuditSummary {
  /** The replayed state after the last entry. */
  readonly replay: ReplayState;
  readonly assignmentPositions: readonly string[];
  readonly rejected: readonly RejectedCommand[];
}

function timerFigures(a: Auditor): AuditSummary['timers'] {
  const lags = [...a.timerLags].sort((x, y) => x - y);
  const at = (q: number) =>
    lags.length === 0 ? null : lags[Math.min(lags.length - 1, Math.floor(q * lags.length))]!;
  return {
    fired: lags.length,
    lagP50Ms: at(0.5),
    lagP99Ms: at(0.99),
    lagMaxMs: a.latestTimer?.lagMs ?? null,
    latest: a.latestTimer?.commandId ?? null,
  };
}

export function buildReport(
  a: Auditor,
  extra: { pendingCommands: number; state: string; intervals?: string; seconds: number },
): AuditReport {
  const v = a.violations;
  return {
    workspace: a.workspace,
    ok: v.count === 0,
    commands: a.commands,
    pendingCommands: extra.pendingCommands,
    events: a.events,
    facts: a.facts,
    rejections: a.rejected.length,
    assignments: a.assignments,
    decisionsChecked: a.decisionsChecked,
    decisionsUnverifiable: a.decisionsUnverifiable,
    commandsWithoutIdempotencyKey: a.withoutIdempotencyKey,
    commandsByKey: Object.fromEntries([...a.byKey].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))),
    checkpoint: a.checkpoint ?? null,
    lastEvent: a.lastEvent ?? null,
    timers: timerFigures(a),
    state: extra.state,
    intervals: extra.intervals ?? 'not compared (not asked)',
    violationCount: v.count,
    violationsByKind: v.byKind,
    violationsBeforeAfter: v.before,
    violations: v.kept,
    seconds: extra.seconds,
    eventsPerS: extra.seconds > 0 ? Math.round(a.events / extra.seconds) : 0,
    replay: a.state,
    assignmentPositions: a.assignmentPositions,
    rejected: a.rejected,
  };
}

/** The report without the in-process parts, for JSON. */
export function summaryOf(r: AuditReport, most = Number.POSITIVE_INFINITY): AuditSummary {
  const { replay: _r, assignmentPositions: _p, rejected: _x, ...summary } = r;
  return { ...summary, violations: summary.violations.slice(0, most) };
}

export interface LogEntries {
  readonly commands: readonly Entry[];
  readonly events: readonly Entry[];
  /** The outcome stream (optional: without it, outcomes are not checked). */
  readonly outcomes?: readonly Entry[];
  /** The projector checkpoint; default: the last command. Commands after it are pending. */
  readonly checkpoint?: string;
  /**
   * The live state to compare with, as read after the last event: the agent and contact hashes
   * (id, JSON text as stored) and the routing index. Without it, not compared.
   */
  readonly documents?: {
    readonly agents: Iterable<readonly [string, string]>;
    readonly contacts: Iterable<readonly [string, string]>;
    readonly index: RoutingIndex;
  };
}

/** The audit of a log held in memory (the whole streams, in order): pure. */
export function auditEntries(workspace: string, log: LogEntries, opts: AuditOptions = {}): AuditReport {
  const started = performance.now();
  const a = new Auditor(workspace, opts);
  const checkpoint = log.checkpoint ?? log.commands.at(-1)?.[0];
  a.checkpoint = checkpoint;
  const applied =
    checkpoint === undefined ? [] : log.commands.filter(([p]) => !positionBefore(checkpoint, p));
  a.addOutcomes(log.outcomes ?? []);
  a.addCommands(applied);
  a.commandsEnd(true);
  for (const e of log.events) a.processEvent(e);
  a.settle();
  a.finish();
  let state = 'not compared (no documents given)';
  if (log.documents) {
    const check = new StateCheck(a);
    for (const [id, doc] of log.documents.agents) check.agent(id, doc);
    for (const [id, doc] of log.documents.contacts) check.contact(id, doc);
    check.index(log.documents.index);
    for (const v of check.violations()) a.violations.add(v);
    state = 'compared';
  }
  return buildReport(a, {
    pendingCommands: log.commands.length - applied.length,
    state,
    intervals: 'not compared (no live interval projection)',
    seconds: (performance.now() - started) / 1000,
  });
}
