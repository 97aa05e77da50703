import { isLeft } from 'fp-ts/lib/Either.js';
import type { Command } from '../domain/commands.ts';
import { decide, type Fact } from '../domain/model.ts';
import { type CommandEntry, decodeCommand, targetOf } from './entries.ts';
import type { ReplayState } from './replay-state.ts';

/** An event the log must hold for a command. */
export interface Expected {
  readonly type: string;
  readonly data: Record<string, unknown>;
  /**
   * A malformed entry's rejection: `data` holds all but its detail (the projector's wording), and
   * it names no target.
   */
  readonly loose?: boolean;
}

/**
 * What one command entry must have produced: the model decides it (`decide`, at its position's
 * milliseconds) and `apply` applies each fact; the events and the outcome status it implies, and
 * the command decoded (none when the entry is not one this version applies).
 */
export function expectedOf(
  e: CommandEntry,
  state: ReplayState,
  apply: (f: Fact) => Expected,
): { events: Expected[]; status: number; command?: Command } {
  const d = decodeCommand(e);
  if (d.kind === 'unknown') {
    // An entry with no type field at all: the projector's Lua names it "nil" and its rejection
    // names no command.
    const detail = `Command type "${e.typed ? e.type : 'nil'}" cannot be applied by this version of Switchboard.`;
    return { events: [rejected(e, undefined, 422, 'Unknown command', detail)], status: 422 };
  }
  if (d.kind === 'malformed') {
    // What names the entry and the refusal; the detail is the projector's own wording.
    const data = {
      ...(e.commandId !== '' ? { commandId: e.commandId } : {}),
      command: e.type,
      status: 422,
      title: 'Malformed command',
    };
    return { events: [{ type: 'CommandRejected', data, loose: true }], status: 422 };
  }
  const c = d.command;
  const decision = decide(state, c, e.at);
  if (isLeft(decision)) {
    const r = decision.left;
    return { events: [rejected(e, targetOf(c), r.status, r.title, r.detail)], status: r.status, command: c };
  }
  const events = decision.right.map(apply);
  return { events, status: c.type === 'RegisterAgent' || c.type === 'QueueContact' ? 201 : 200, command: c };
}

function rejected(
  e: CommandEntry,
  target: string | undefined,
  status: number,
  title: string,
  detail: string,
): Expected {
  const data = {
    commandId: e.commandId,
    ...(e.typed ? { command: e.type } : {}),
    ...(target !== undefined ? { target } : {}),
    status,
    title,
    detail,
  };
  return { type: 'CommandRejected', data };
}
