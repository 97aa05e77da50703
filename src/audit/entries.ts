import { COMMAND_TYPES, Command, type CommandType } from '../domain/commands.ts';

/**
 * Stream entries as the auditor reads them: commands as appended by src/adapters/redis/lua
 * (append-command: fields type, commandId, command, idempotencyKey?, attributes?, requestId?)
 * and events as the projector and dispatcher append them (fields type, event: the envelope JSON).
 */
export type Entry = [position: string, fields: string[]];

export interface CommandEntry {
  readonly position: string;
  /** The command's time: its position's milliseconds (when Redis accepted it). */
  readonly at: number;
  readonly type: string;
  readonly commandId: string;
  readonly idempotencyKey?: string;
  readonly requestId?: string;
  readonly command?: string;
  readonly attributes?: string;
}

export interface Envelope {
  readonly type: string;
  readonly workspace?: unknown;
  readonly at?: unknown;
  readonly data: Record<string, unknown>;
  readonly meta: Record<string, unknown>;
}

export const positionMs = (position: string): number => Number(position.slice(0, position.indexOf('-')));

export function commandEntry([position, fields]: Entry): CommandEntry {
  const e: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) e[fields[i]!] = fields[i + 1]!;
  return { ...e, position, at: positionMs(position), type: e.type ?? '', commandId: e.commandId ?? '' };
}

/** The envelope of an event entry, or a reason it cannot be read. */
export function envelope(fields: readonly string[]): Envelope | string {
  let text: string | undefined;
  let type: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'event') text = fields[i + 1];
    else if (fields[i] === 'type') type = fields[i + 1];
  }
  if (text === undefined) return 'no "event" field';
  let env: unknown;
  try {
    env = JSON.parse(text);
  } catch {
    return 'its "event" field is not JSON';
  }
  const e = env as Partial<Envelope> | null;
  if (typeof e !== 'object' || e === null || typeof e.type !== 'string') return 'its envelope has no type';
  if (type !== undefined && type !== e.type)
    return `its "type" field (${type}) is not its envelope's (${e.type})`;
  if (typeof e.data !== 'object' || e.data === null) return 'its envelope has no data';
  return {
    ...e,
    type: e.type,
    data: e.data,
    meta: typeof e.meta === 'object' && e.meta !== null ? e.meta : {},
  };
}

export type Decoded =
  | { readonly kind: 'command'; readonly command: Command }
  /** Not a command type this version applies: rejected with 422 unknown-command. */
  | { readonly kind: 'unknown' }
  /** Not the shape the API appends: rejected with 422 (the projector's shape check). */
  | { readonly kind: 'malformed' };

const KNOWN = new Set<string>(COMMAND_TYPES);

/** The command of an entry, checked with the same codec the API appends with. */
export function decodeCommand(e: CommandEntry): Decoded {
  if (!KNOWN.has(e.type)) return { kind: 'unknown' };
  let body: unknown;
  try {
    body = JSON.parse(e.command ?? '');
    if (e.attributes !== undefined && typeof body === 'object' && body !== null)
      (body as Record<string, unknown>).attributes = JSON.parse(e.attributes);
  } catch {
    return { kind: 'malformed' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { kind: 'malformed' };
  const c = { ...(body as Record<string, unknown>), type: e.type as CommandType };
  if (!Command.is(c)) return { kind: 'malformed' };
  // Skills are appended in canonical order (sorted, no repeats); the projector refuses others.
  const skills = 'skills' in c ? c.skills : undefined;
  if (skills?.some((s, i) => i > 0 && skills[i - 1]! >= s)) return { kind: 'malformed' };
  return { kind: 'command', command: c };
}

/** Which document a command entry is about (the `target` of its rejection). */
export function targetOf(c: Command): string {
  return 'agentId' in c ? c.agentId : c.contactId;
}

/** A command entry as violations name it. */
export function describe(e: CommandEntry): string {
  const d = decodeCommand(e);
  return `${e.type} ${d.kind === 'command' ? `${targetOf(d.command)} ` : ''}(command ${e.commandId} at ${e.position})`;
}
