import { type CommandEntry, describe, type Entry, positionMs } from './entries.ts';
import { type BodyWant, bodyDifference } from './outcome-body.ts';
import { positionBefore, type Violation, type ViolationKind } from './violations.ts';

type Flag = (kind: ViolationKind, stream: Violation['stream'], position: string, message: string) => void;

interface Outcome {
  readonly at: string;
  readonly position: string;
  readonly commandId: string;
  /** The outcome as recorded (`{status, body}`), parsed only when its command is met. */
  readonly text: string;
}

/**
 * The outcome stream held to the replay: the projector records one outcome (status and body)
 * per command it applies, in the same Lua step, so outcomes come in command order. The stream is
 * trimmed from the front, so what is read is a suffix: from its first command on, every command
 * has exactly one outcome, and its status is the model's (201 for a registration or a queued
 * contact, 200 otherwise, the rejection's status for a rejected command) and its body the answer
 * the replay gives (src/audit/outcome-body.ts).
 */
export class Outcomes {
  /** Outcomes read and not yet met by their command, in order, from `head`. */
  private queue: Outcome[] = [];
  private head = 0;
  private first: string | undefined;
  private lastMet: string | undefined;

  constructor(private readonly flag: Flag) {}

  add(entries: readonly Entry[]): void {
    for (const [at, fields] of entries) {
      let position = '';
      let commandId = '';
      let text = '';
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const v = fields[i + 1]!;
        if (fields[i] === 'position') position = v;
        else if (fields[i] === 'commandId') commandId = v;
        else if (fields[i] === 'outcome') text = v;
      }
      this.first ??= position;
      this.queue.push({ at, position, commandId, text });
    }
  }

  /**
   * Outcomes were trimmed after those added: commands before the next one added have none, as
   * commands before the stream's first entry have none.
   */
  trimmed(): void {
    this.first = undefined;
  }

  /**
   * The command was replayed with this status; `want` gives the body its outcome must have.
   * Returns its outcome as recorded (`{status, body}` text) when it was there and right.
   */
  check(e: CommandEntry, status: number, want: () => BodyWant): string | undefined {
    // Outcomes before this command belong to no command replayed (or repeat one).
    let o = this.queue[this.head];
    while (o && positionBefore(o.position, e.position)) {
      this.stray(o);
      o = this.next();
    }
    if (o && o.position === e.position) {
      this.next();
      this.lastMet = o.position;
      if (o.commandId !== e.commandId)
        this.flag(
          'outcome',
          'outcomes',
          o.at,
          `outcome of ${e.position} names command ${o.commandId}, not ${e.commandId}`,
        );
      else {
        const got = parseOutcome(o.text);
        const wrong =
          got === undefined
            ? 'is not {status, body}'
            : got.status !== status
              ? `${String(got.status)}, the model ${status}`
              : bodyDifference(got.body, want());
        if (wrong !== undefined) this.flag('outcome', 'outcomes', o.at, `${describe(e)}: outcome ${wrong}`);
        else return o.text;
      }
    } else if (this.first !== undefined && !positionBefore(e.position, this.first)) {
      this.flag('outcome', 'commands', e.position, `${describe(e)}: no outcome recorded`);
    }
    return undefined;
  }

  /** After the last command: outcomes of commands that are not in the command stream. */
  finish(): void {
    for (let o = this.queue[this.head]; o; o = this.next()) this.stray(o);
  }

  private next(): Outcome | undefined {
    this.head++;
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return this.queue[this.head];
  }

  private stray(o: Outcome): void {
    this.flag(
      'outcome',
      'outcomes',
      o.at,
      o.position === this.lastMet
        ? `a second outcome for the command at ${o.position}`
        : `outcome for command ${o.commandId} at ${o.position}, not in the command stream`,
    );
  }
}

function parseOutcome(text: string): { status: unknown; body: unknown } | undefined {
  try {
    const o = JSON.parse(text) as unknown;
    return typeof o === 'object' && o !== null ? (o as { status: unknown; body: unknown }) : undefined;
  } catch {
    return undefined;
  }
}

/** The last command replayed with an Idempotency-Key: what the key's record must name. */
export interface KeyedCommand {
  readonly position: string;
  readonly commandId: string;
  /** The model's status for it. */
  status: number;
  /** Its outcome as the outcome stream recorded it (and held right), when the stream had it. */
  outcome: string | undefined;
}

/**
 * One Idempotency-Key is appended once within its lifetime (the append step answers repeats).
 * The last command with each key is kept: a repeat is answered from the key's record (that
 * command's position, id and outcome), which the end of the audit holds to it (state-check.ts).
 */
export class IdempotencyKeys {
  private readonly lastWith = new Map<string, KeyedCommand>();
  withoutKey = 0;

  constructor(
    private readonly flag: Flag,
    private readonly ttlMs: number,
  ) {}

  check(e: CommandEntry): void {
    const key = e.idempotencyKey;
    if (key === undefined) {
      this.withoutKey++;
      return;
    }
    const first = this.lastWith.get(key)?.position;
    if (first !== undefined && e.at - positionMs(first) < this.ttlMs)
      this.flag(
        'idempotency',
        'commands',
        e.position,
        `Idempotency-Key "${key}" appended again (first at ${first})`,
      );
    this.lastWith.set(key, { position: e.position, commandId: e.commandId, status: 0, outcome: undefined });
  }

  /** The command (checked before) was replayed with this status, and this outcome recorded right. */
  answered(e: CommandEntry, status: number, outcome: string | undefined): void {
    const last = e.idempotencyKey === undefined ? undefined : this.lastWith.get(e.idempotencyKey);
    if (last?.position !== e.position) return;
    last.status = status;
    last.outcome = outcome;
  }

  /** The last command replayed with the key. */
  last(key: string): KeyedCommand | undefined {
    return this.lastWith.get(key);
  }
}
