import type { EventEnvelope } from '../../domain/events.ts';
import { workspaceKeys } from './keys.ts';
import type { RedisClient } from './scripts.ts';

export type StreamEntry = [id: string, fields: string[]];

/**
 * The most entries one read of a stream asks Redis for. Redis runs one command at a time, and a
 * read costs it about 1 - 2.5 µs an entry: a read of 10,000 held every other client of the server
 * back for 17 - 25 ms, one of 1,000 does for 0.5 - 2.5 ms (docs/BENCHMARKS.md, "Background work
 * that held Redis and the API"). Readers wanting more read several times.
 */
export const READ_PAGE = 1000;

/**
 * The entries of stream `key` from `from` to `to` (XRANGE bounds, `(` for exclusive), at most
 * `count`, in reads of at most READ_PAGE: fewer than `count` means the range ran out.
 */
export async function readRange(
  redis: RedisClient,
  key: string,
  from: string,
  to: string,
  count: number,
): Promise<StreamEntry[]> {
  const out: StreamEntry[] = [];
  let after = from;
  while (out.length < count) {
    const want = Math.min(READ_PAGE, count - out.length);
    const page = (await redis.xrange(key, after, to, 'COUNT', want)) as StreamEntry[];
    out.push(...page);
    if (page.length < want) break;
    after = `(${page[page.length - 1]![0]}`;
  }
  return out;
}

function field(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/** An event stream entry as the public envelope: the entry id is its position. */
export function toEnvelope(entry: StreamEntry): EventEnvelope {
  const [position, fields] = entry;
  const body = JSON.parse(field(fields, 'event') ?? '{}') as Omit<EventEnvelope, 'position'>;
  return { position, ...body, meta: body.meta ?? {} };
}

/**
 * An event stream entry as the public envelope, or an Error saying why it is none: its `event`
 * field must be JSON of an object with a string `type` and an object `data` (what every reader of
 * an event, the live feed's filters first, takes for granted).
 */
export function decodeEnvelope(entry: StreamEntry): EventEnvelope | Error {
  let env: EventEnvelope;
  try {
    env = toEnvelope(entry);
  } catch (err) {
    return new Error(`its "event" field is not JSON (${(err as Error).message})`);
  }
  const { type, data, meta } = env as { type?: unknown; data?: unknown; meta?: unknown };
  const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (typeof type !== 'string') return new Error('its "event" field has no string "type"');
  if (!isObject(data)) return new Error('its "event" field has no object "data"');
  if (!isObject(meta)) return new Error('its "event" field has a "meta" that is not an object');
  return env;
}

export function entryType(entry: StreamEntry): string | undefined {
  return field(entry[1], 'type');
}

/**
 * An event as the live feed hands it to subscribers. The tail makes one per event it reads and
 * hands that same one to every subscriber, so the event is parsed and serialized at most once per
 * instance, however many subscribers send it (and not at all when none wants it: the type filter
 * reads only the entry's `type` field).
 */
export class LiveEvent {
  readonly position: string;
  readonly type: string | undefined;
  private parsed: EventEnvelope | undefined;
  /** Why the entry is no event, once `decodable` found it so. */
  private malformed: Error | undefined;
  private serialized: string | undefined;
  /** The live feed's WebSocket frame of `text`, made on first use (src/adapters/http/frames.ts). */
  frame: Buffer | undefined = undefined;

  /** `onMalformed`: told once, when `decodable` first finds the entry is no event. */
  constructor(
    private readonly entry: StreamEntry,
    private readonly onMalformed?: (position: string, why: Error) => void,
  ) {
    this.position = entry[0];
    this.type = entryType(entry);
  }

  /**
   * Whether the entry decodes as an event (parsed on first use). One that does not is sent to no
   * subscriber, and its position is passed over like that of an event a filter leaves out.
   */
  get decodable(): boolean {
    if (this.parsed !== undefined) return true;
    if (this.malformed !== undefined) return false;
    const env = decodeEnvelope(this.entry);
    if (env instanceof Error) {
      this.malformed = env;
      this.onMalformed?.(this.position, env);
      return false;
    }
    this.parsed = env;
    return true;
  }

  /** The public envelope, parsed on first use; ask `decodable` first (this throws for an entry that is none). */
  get envelope(): EventEnvelope {
    if (!this.decodable)
      throw new Error(`event stream entry ${this.position} is not an event: ${this.malformed!.message}`);
    return this.parsed!;
  }

  /** The envelope as the JSON text every subscriber is sent, made on first use. */
  get text(): string {
    if (this.serialized === undefined) this.serialized = JSON.stringify(this.envelope);
    return this.serialized;
  }
}

/**
 * A workspace's event history after a position, in order: at most `limit` entries. The streams
 * in Redis by default; the composition root passes one that reads the archived part first, so
 * a position older than the stream's first entry still replays with no gap.
 */
export type EventHistory = (workspace: string, after: string, limit: number) => Promise<StreamEntry[]>;

/** The event stream in Redis only. */
export function streamHistory(redis: RedisClient): EventHistory {
  return (workspace, after, limit) =>
    readRange(redis, workspaceKeys(workspace).events, `(${after}`, '+', limit);
}

/**
 * The position of a workspace's last event, or undefined when it has none. The stream keeps its
 * newest entry whatever the retention (the archiver moves all but it: src/archive/archiver.ts), so
 * Redis alone tells: what the readers that refuse a position past the log's end compare with.
 */
export async function lastEventPosition(redis: RedisClient, workspace: string): Promise<string | undefined> {
  return (await redis.xrevrange(workspaceKeys(workspace).events, '+', '-', 'COUNT', 1))[0]?.[0];
}

export interface EventPage {
  readonly events: EventEnvelope[];
  readonly next: string | null;
}

/**
 * The most events of the log one filtered page reads: a type found rarely (or not at all) would
 * otherwise have one request read the whole history, archive included.
 */
export const EVENTS_SCAN_BUDGET = 10_000;

/**
 * One page of the audit log after `after` (exclusive), filtered by type. `next` is the
 * position to ask from for the following page, or null at the end of the log so far. A filtered
 * page reads at most `scanBudget` events of the log: past it, the page holds what it found (perhaps
 * nothing) and `next` is where it stopped. An entry that is no event (`decodeEnvelope`) is passed
 * over as one the filter leaves out, and told to `onMalformed` with its position (the live feed's
 * rule: docs/API.md).
 */
export async function readEvents(
  redis: RedisClient,
  workspace: string,
  opts: {
    after?: string;
    limit: number;
    types?: ReadonlySet<string>;
    history?: EventHistory;
    scanBudget?: number;
    onMalformed?: (position: string, why: Error) => void;
  },
): Promise<EventPage> {
  const history = opts.history ?? streamHistory(redis);
  const events: EventEnvelope[] = [];
  let cursor = opts.after ?? '0-0';
  // With a type filter, scan forward in chunks until the page is full, the budget spent or the log ends.
  let budget = opts.types ? (opts.scanBudget ?? EVENTS_SCAN_BUDGET) : Number.POSITIVE_INFINITY;
  for (;;) {
    const chunk = opts.types ? Math.max(1, Math.min(Math.max(opts.limit * 4, 256), budget)) : opts.limit;
    const entries = await history(workspace, cursor, chunk);
    for (const e of entries) {
      cursor = e[0];
      const type = entryType(e);
      if (opts.types && (!type || !opts.types.has(type))) continue;
      const env = decodeEnvelope(e);
      if (env instanceof Error) {
        opts.onMalformed?.(e[0], env);
        continue;
      }
      events.push(env);
      if (events.length === opts.limit) break;
    }
    budget -= entries.length;
    if (entries.length < chunk && events.length < opts.limit) return { events, next: null };
    if (events.length === opts.limit || budget <= 0) {
      const more = await history(workspace, cursor, 1);
      return { events, next: more.length > 0 ? cursor : null };
    }
  }
}

export function parseFields(fields: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
  return out;
}
