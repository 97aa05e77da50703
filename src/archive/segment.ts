import { createHash } from 'node:crypto';
import type { StreamEntry } from '../adapters/redis/event-log.ts';
import { positionBefore, positionPredecessor, positionSuccessor } from '../domain/values.ts';

/**
 * A segment: consecutive entries of one stream (commands or events) of one workspace, moved out
 * of Redis into the archive (docs/ARCHIVE.md). A text file of lines:
 *
 *   {"format":"switchboard-segment/1","workspace":…,"stream":…,"index":…,"first":…,"last":…,
 *    "count":…,"total":…,"prevHash":…,"hash":…}
 *   ["<position>",["<field>","<value>",…]]        one line per entry, in stream order
 *
 * `hash` is the sha256 (hex) of `prevHash`, a newline, and the entry lines exactly as stored
 * (each ending with a newline); `prevHash` is the previous segment's `hash` (64 zeros for the
 * first). Each segment so vouches for every entry before it: a changed byte, a removed or
 * reordered entry, a removed or replaced segment breaks the chain where it was made.
 */
export type LogStream = 'commands' | 'events';
export const LOG_STREAMS: readonly LogStream[] = ['commands', 'events'];

export const SEGMENT_FORMAT = 'switchboard-segment/1';
export const GENESIS_HASH = '0'.repeat(64);

export interface SegmentHeader {
  readonly format: string;
  readonly workspace: string;
  readonly stream: LogStream;
  /** 0 for the first segment of a stream, then one more for each. */
  readonly index: number;
  readonly first: string;
  readonly last: string;
  readonly count: number;
  /** Entries in this segment and every one before it. */
  readonly total: number;
  readonly prevHash: string;
  readonly hash: string;
}

export interface EncodedSegment {
  readonly header: SegmentHeader;
  readonly name: string;
  readonly bytes: Buffer;
}

/** The canonical line of an entry (also what is hashed). */
export const entryLine = (e: StreamEntry): string => `${JSON.stringify([e[0], e[1]])}\n`;

export function chainHash(prevHash: string, body: string | Buffer): string {
  return createHash('sha256').update(`${prevHash}\n`).update(body).digest('hex');
}

/**
 * The segment's name in the store: its index (10 digits, so names sort in chain order) and its
 * first position, so a reader finds where a position is without opening a file.
 */
export function segmentName(index: number, first: string): string {
  return `${String(index).padStart(10, '0')}-${first}.jsonl`;
}

const NAME = /^(\d{10})-(\d{1,20}-\d{1,20})\.jsonl$/;

export function parseSegmentName(name: string): { index: number; first: string } | undefined {
  const m = NAME.exec(name);
  return m ? { index: Number(m[1]), first: m[2]! } : undefined;
}

export function encodeSegment(s: {
  workspace: string;
  stream: LogStream;
  index: number;
  prevHash: string;
  /** Entries in the segments before this one. */
  before: number;
  entries: readonly StreamEntry[];
}): EncodedSegment {
  const first = s.entries[0];
  const last = s.entries.at(-1);
  if (!first || !last) throw new Error('a segment holds at least one entry');
  const body = s.entries.map(entryLine).join('');
  const header: SegmentHeader = {
    format: SEGMENT_FORMAT,
    workspace: s.workspace,
    stream: s.stream,
    index: s.index,
    first: first[0],
    last: last[0],
    count: s.entries.length,
    total: s.before + s.entries.length,
    prevHash: s.prevHash,
    hash: chainHash(s.prevHash, body),
  };
  return {
    header,
    name: segmentName(s.index, header.first),
    bytes: Buffer.from(`${JSON.stringify(header)}\n${body}`, 'utf8'),
  };
}

export interface DecodedSegment {
  /** Undefined when the first line is not a segment header. */
  readonly header: SegmentHeader | undefined;
  /** The entries that could be read, in file order. */
  readonly entries: StreamEntry[];
  /** The hash of the entry lines as stored, chained to the header's prevHash. */
  readonly computedHash: string | undefined;
  /** What is wrong inside the file, each at the position where it shows. */
  readonly problems: { readonly position: string | undefined; readonly message: string }[];
}

const HEX64 = /^[0-9a-f]{64}$/;

function headerOf(line: string): SegmentHeader | undefined {
  let h: unknown;
  try {
    h = JSON.parse(line);
  } catch {
    return undefined;
  }
  const o = h as Partial<SegmentHeader> | null;
  if (
    typeof o !== 'object' ||
    o === null ||
    o.format !== SEGMENT_FORMAT ||
    typeof o.workspace !== 'string' ||
    (o.stream !== 'commands' && o.stream !== 'events') ||
    !Number.isInteger(o.index) ||
    typeof o.first !== 'string' ||
    typeof o.last !== 'string' ||
    !Number.isInteger(o.count) ||
    !Number.isInteger(o.total) ||
    typeof o.prevHash !== 'string' ||
    !HEX64.test(o.prevHash) ||
    typeof o.hash !== 'string' ||
    !HEX64.test(o.hash)
  )
    return undefined;
  return o as SegmentHeader;
}

function entryOf(line: string): StreamEntry | undefined {
  let e: unknown;
  try {
    e = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || !Array.isArray(e[1]))
    return undefined;
  if (!(e[1] as unknown[]).every((f) => typeof f === 'string')) return undefined;
  return e as StreamEntry;
}

/** Whether position `a` comes before `b` (the domain's order of stream positions). */
export const before = positionBefore;

/** The position right before `p` (the domain's: `<ms-1>-<max>` before `<ms>-0`). */
export const predecessor = positionPredecessor;

/** The position right after `p` (the domain's: `<ms+1>-0` after the largest sequence; null after the largest position). */
export const successor = positionSuccessor;

/**
 * Reads a segment back and checks what it says of itself: header, entries in increasing
 * positions, first/last/count as the header has them, and the hash of the entry lines. The chain
 * (prevHash against the previous segment) is the reader's to check (chain.ts).
 */
export function decodeSegment(bytes: Buffer): DecodedSegment {
  const text = bytes.toString('utf8');
  const nl = text.indexOf('\n');
  const header = headerOf(nl < 0 ? text : text.slice(0, nl));
  const problems: DecodedSegment['problems'][number][] = [];
  const entries: StreamEntry[] = [];
  if (!header) {
    problems.push({
      position: undefined,
      message:
        bytes.length === 0
          ? 'the file is empty (0 bytes): cut short, or never written whole'
          : 'its first line is not a segment header',
    });
    return { header, entries, computedHash: undefined, problems };
  }
  const body = nl < 0 ? '' : text.slice(nl + 1);
  const computedHash = chainHash(header.prevHash, body);
  let at = 0;
  let previous: string | undefined;
  while (at < body.length) {
    let end = body.indexOf('\n', at);
    if (end < 0) end = body.length;
    const line = body.slice(at, end);
    at = end + 1;
    const e = entryOf(line);
    if (!e) {
      problems.push({
        position: previous,
        message: `an entry line after ${previous ?? 'the header'} is not [position, fields]`,
      });
      continue;
    }
    if (previous !== undefined && !before(previous, e[0]))
      problems.push({ position: e[0], message: `entry ${e[0]} comes after ${previous}: out of order` });
    previous = e[0];
    entries.push(e);
  }
  const f = entries[0]?.[0];
  const l = entries.at(-1)?.[0];
  if (entries.length !== header.count)
    problems.push({
      position: f ?? header.first,
      message: `the header counts ${header.count} entries, the file holds ${entries.length}`,
    });
  if (f !== header.first)
    problems.push({
      position: f ?? header.first,
      message: `the header's first entry is ${header.first}, the file's ${f ?? '(none)'}`,
    });
  if (l !== header.last)
    problems.push({
      position: l ?? header.last,
      message: `the header's last entry is ${header.last}, the file's ${l ?? '(none)'}`,
    });
  if (computedHash !== header.hash)
    problems.push({
      position: header.first,
      message: `its entries do not hash to the header's hash (altered, removed or reordered entries)`,
    });
  return { header, entries, computedHash, problems };
}
