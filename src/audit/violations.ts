/**
 * What the auditor found wrong, each at the stream position where it shows. Kinds:
 * - `command`: a command entry that cannot be replayed (id appended twice, body not decodable), or
 *   that names an API key whose role may not send it (the clock's and the archiver's name none);
 * - `missing`: a command with no fact/rejection in the event log, or a fact of it missing; entries
 *   deleted from the command or event stream by anything but the archiver (read.ts, `deletions`);
 * - `duplicate`: a command applied again (a second fact or rejection), or out of order;
 * - `fact`: a fact (or rejection) that differs from what the model decides;
 * - `outcome`: the outcome stream disagrees (none, two, another status or body, an unknown command);
 * - `unverifiable`: an AssignmentMade whose basis cannot be re-checked (no or inconsistent basedOn);
 * - `decision`: an AssignmentMade that is not rule 1's decision for the state it was based on;
 * - `assignment`: an impossible assignment (contact not queued: twice, after abandon/complete;
 *   agent unknown, not available, at capacity, or missing a skill); it is not replayed;
 * - `idempotency`: one Idempotency-Key appended twice within its lifetime;
 * - `event`: an event that cannot be read or belongs to no command;
 * - `state`, `index`: the live documents or routing index differ from the replayed state;
 * - `idle`: the dispatcher is said to be idle, yet a queued contact has an eligible agent;
 * - `interval`: the live interval projection's tallies of an interval it covers differ from those
 *   the log gives (src/audit/intervals-check.ts);
 * - `archive`: the archive's chain is broken (a segment altered, an entry removed or reordered,
 *   a segment removed or replaced), at the first position it affects (src/archive/chain.ts).
 */
export type ViolationKind =
  | 'command'
  | 'missing'
  | 'duplicate'
  | 'fact'
  | 'outcome'
  | 'unverifiable'
  | 'decision'
  | 'assignment'
  | 'idempotency'
  | 'event'
  | 'state'
  | 'index'
  | 'timer'
  | 'idle'
  | 'interval'
  | 'archive';

export interface Violation {
  readonly kind: ViolationKind;
  /** The stream the position is in (`state` for the documents and sets after the last entry). */
  readonly stream: 'commands' | 'events' | 'outcomes' | 'state';
  /** A stream position; for `state`, the last event position replayed. */
  readonly position: string;
  readonly message: string;
}

import { positionBefore } from '../domain/values.ts';

export { positionBefore };

/**
 * Counts every violation and keeps the first `keep` of them. With `after`, violations at or
 * before that position are counted apart and not reported (the replay still starts at the
 * beginning, since every check needs the state the whole history built); `state`, `index`,
 * `timer`, `idle` and `interval` are about the end of the log and always reported.
 */
export class Violations {
  count = 0;
  /** Violations at or before `after`, not reported. */
  before = 0;
  readonly byKind: Partial<Record<ViolationKind, number>> = {};
  readonly kept: Violation[] = [];
  /** The kinds of the end-of-log violations counted (stream `state`), kept or not. */
  private atEnd: ViolationKind[] = [];

  constructor(
    private readonly after: string | undefined,
    private readonly keep: number,
  ) {}

  /**
   * `through`: the last position the violation may concern, when later than the one where it shows
   * (a segment whose entries do not hash to its header shows at its first entry, yet the altered one
   * may be any of them): with `after`, it is reported when that position is after `after`.
   */
  add(v: Violation, through?: string): void {
    if (
      this.after !== undefined &&
      v.stream !== 'state' &&
      !positionBefore(this.after, v.position) &&
      (through === undefined || !positionBefore(this.after, through))
    ) {
      this.before++;
      return;
    }
    this.count++;
    this.byKind[v.kind] = (this.byKind[v.kind] ?? 0) + 1;
    if (v.stream === 'state') this.atEnd.push(v.kind);
    if (this.kept.length < this.keep) this.kept.push(v);
  }

  /**
   * Withdraws the end-of-log violations found so far: an audit run again checks the end of the log
   * anew, and reports what holds at its own end, each finding once.
   */
  withdrawEnd(): void {
    for (const kind of this.atEnd) {
      this.count--;
      const left = (this.byKind[kind] ?? 1) - 1;
      if (left > 0) this.byKind[kind] = left;
      else delete this.byKind[kind];
    }
    this.atEnd = [];
    for (let i = this.kept.length - 1; i >= 0; i--)
      if (this.kept[i]!.stream === 'state') this.kept.splice(i, 1);
  }
}
