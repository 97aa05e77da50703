import { before, type DecodedSegment, GENESIS_HASH, type LogStream, parseSegmentName } from './segment.ts';

/**
 * The archive's mark in Redis, one per stream (field `commands` or `events` of the workspace's
 * `archive` hash): the last segment whose entries were trimmed from the stream. It is written in
 * the same Lua step as the trim (lua/trim-mark-2.lua, which first checks the stream's entry at the
 * segment's last position against it), so "trimmed up to `last`" and the mark never disagree. The archiver
 * derives what is archived from the segments; the mark is what lets it (and the auditor) see a
 * segment that went missing or was replaced after its entries left Redis.
 */
export interface Anchor {
  readonly index: number;
  readonly last: string;
  readonly hash: string;
  /** Entries in segments 0..index. */
  readonly total: number;
}

export function parseAnchor(text: string | null | undefined): Anchor | undefined {
  if (!text) return undefined;
  try {
    const a = JSON.parse(text) as Partial<Anchor>;
    if (
      Number.isInteger(a.index) &&
      typeof a.last === 'string' &&
      typeof a.hash === 'string' &&
      Number.isInteger(a.total)
    )
      return a as Anchor;
  } catch {
    /* not an anchor */
  }
  return undefined;
}

/**
 * The `through` of a break whose extent is unknown (a segment whose header cannot be read, with no
 * segment after it to bound it): the last position there can be, so it concerns every position.
 */
export const UNKNOWN_EXTENT = '18446744073709551615-18446744073709551615';

export interface ChainBreak {
  readonly stream: LogStream;
  /** Where it shows: the first entry affected, or the segment's first position. */
  readonly position: string;
  readonly message: string;
  /**
   * The last position it may concern, when later than `position`: a segment's last entry when the
   * segment itself is damaged (any of its entries may be the altered one); for a segment whose
   * header cannot be read, the next segment's first position, or UNKNOWN_EXTENT when none follows.
   */
  readonly through?: string;
  /**
   * The hole in the history, as a reader of it is told (the 503 archive-unreadable's members):
   * `lostAfter`, the last position before it that reads (the previous segment's last; null: the
   * hole begins at the start of the history, or where it begins is not known); `resumeAt`, the
   * first position after it that reads (the next segment's first, or the stream's oldest entry;
   * null: not known). Absent when the break does not bound it; `resumeAt` alone absent (with
   * `lostAfter` there) when it is the reader's to say: the stream's first entry after the archive.
   */
  readonly lostAfter?: string | null;
  readonly resumeAt?: string | null;
}

/**
 * Checks segments read in order against each other: each is the next index, chained to the hash
 * of the one before it, with entries after the previous segment's; and, at the end of the
 * archive, against the mark in Redis. Each segment contributes at most its first break, so one
 * altered segment is one report, at its position.
 */
export class ChainCheck {
  private index = 0;
  private prevHash: string | undefined = GENESIS_HASH;
  private last: string | undefined;
  /** The last position before the previous segment's (the one two back): where a hole that takes the previous segment in begins. */
  private lastTwoBack: string | undefined;
  private readonly hashes = new Map<number, string>();
  /** The first and last positions of each segment read whose header could be read, by index. */
  private readonly spans = new Map<number, { first: string; last: string }>();
  private anchorChecked = false;
  total = 0;
  /**
   * Whether `total` counts every segment read: not after one whose header cannot be read (how
   * many entries it held is unknown, so the next segment's count up to its end cannot be held to it).
   */
  private totalKnown = true;

  /** Fed from the first segment on. */
  constructor(
    private readonly workspace: string,
    private readonly stream: LogStream,
  ) {}

  get segments(): number {
    return this.index;
  }

  /**
   * `nextFirst`: the first position of the segment listed after this one, when there is one (from
   * its name): how far a segment whose header cannot be read may reach. Without it, its extent is
   * unknown: the break may concern any position after its first (`through` UNKNOWN_EXTENT).
   */
  segment(name: string, d: DecodedSegment, nextFirst?: string): ChainBreak | undefined {
    const h = d.header;
    const named = parseSegmentName(name);
    const where = `segment ${name}`;
    const at = h?.first ?? named?.first ?? this.last ?? '0-0';
    const problem = (message: string): ChainBreak => ({ stream: this.stream, position: at, message });
    const expected = this.index;
    if (!h) {
      // Its index from its name (its header is not there to say it): segments missing before it
      // are named as such, and the next segment is held to the one after it.
      const index = named !== undefined && named.index > expected ? named.index : expected;
      this.index = index + 1;
      this.prevHash = undefined;
      this.totalKnown = false;
      this.lastTwoBack = this.last;
      const missing =
        index > expected
          ? `segment${index - expected > 1 ? `s ${expected}..${index - 1}` : ` ${expected}`} of the ${this.stream} archive ${index - expected > 1 ? 'are' : 'is'} missing before it, and `
          : '';
      return {
        ...problem(`${where}: ${missing}${d.problems[0]?.message ?? 'unreadable'}`),
        through: nextFirst ?? UNKNOWN_EXTENT,
        // After the last segment read (segments missing before this one are lost with it).
        lostAfter: this.last ?? null,
        resumeAt: nextFirst ?? null,
      };
    }
    this.index = h.index + 1;
    const prev = this.prevHash;
    this.prevHash = h.hash;
    this.hashes.set(h.index, h.hash);
    this.spans.set(h.index, { first: h.first, last: h.last });
    const lastBefore = this.last;
    const twoBack = this.lastTwoBack;
    this.lastTwoBack = lastBefore;
    this.last = h.last;
    const counted = this.totalKnown ? this.total + d.entries.length : undefined;
    this.total = h.total;
    this.totalKnown = true;
    if (h.index > expected)
      return {
        ...problem(
          `${where}: segment${h.index - expected > 1 ? `s ${expected}..${h.index - 1}` : ` ${expected}`} of the ${this.stream} archive ${h.index - expected > 1 ? 'are' : 'is'} missing before it`,
        ),
        lostAfter: lastBefore ?? null,
        resumeAt: h.first,
      };
    // The segment's own entries, up to the later of its header's last and the file's.
    const fileLast = d.entries.at(-1)?.[0];
    const through = fileLast !== undefined && before(h.last, fileLast) ? fileLast : h.last;
    // The segment itself is in doubt: the hole is from the previous one's last to the next one's first.
    const hole = { lostAfter: lastBefore ?? null, resumeAt: nextFirst ?? null };
    // The link between the previous segment and this one is broken (its prevHash, or entries of the
    // two out of order): either may be the one replaced or altered, so the hole takes both in, from
    // the last of the one before them (null: from the start, or where it begins is not known when
    // this one starts before that) to the next one's first (null when that is not after both).
    const both = {
      lostAfter: twoBack !== undefined && before(twoBack, h.first) ? twoBack : null,
      resumeAt:
        nextFirst !== undefined &&
        before(through, nextFirst) &&
        (lastBefore === undefined || before(lastBefore, nextFirst))
          ? nextFirst
          : null,
    };
    if (h.index < expected)
      return { ...problem(`${where}: index ${h.index} again, after segment ${expected - 1}`), ...both };
    if (!named || named.index !== h.index || named.first !== h.first)
      return {
        ...problem(`${where}: its name does not match its header (index ${h.index}, first ${h.first})`),
        through,
        ...hole,
      };
    if (h.workspace !== this.workspace || h.stream !== this.stream)
      return {
        ...problem(
          `${where}: its header is of ${h.workspace}/${h.stream}, not ${this.workspace}/${this.stream}`,
        ),
        through,
        ...hole,
      };
    if (prev !== undefined && h.prevHash !== prev)
      return {
        ...problem(
          `${where}: its prevHash is not the hash of segment ${h.index - 1} (a segment before it was removed or replaced)`,
        ),
        ...both,
      };
    const inside = d.problems[0];
    if (inside)
      return {
        stream: this.stream,
        position: inside.position ?? at,
        message: `${where}: ${inside.message}`,
        through,
        ...hole,
      };
    if (counted !== undefined && h.total !== counted)
      return {
        ...problem(
          `${where}: its header counts ${h.total} entries up to its end, the segments hold ${counted}`,
        ),
        // Its entries hash to its header, and the segments before it add up: its header is the damaged one.
        // The last segment (none listed after it): its entries, whole, end at its last, and where the
        // history reads again is the reader's to say (the stream's first entry after it).
        ...(nextFirst === undefined ? { lostAfter: hole.lostAfter } : hole),
      };
    if (lastBefore !== undefined && !before(lastBefore, h.first))
      return {
        ...problem(
          `${where}: its first entry ${h.first} is not after the previous segment's last ${lastBefore}`,
        ),
        ...both,
      };
    return undefined;
  }

  /**
   * The end of the archive against the mark in Redis (once): every segment up to the mark must
   * be there, the marked one with the hash it had when the stream was trimmed.
   */
  anchor(a: Anchor | undefined): ChainBreak | undefined {
    if (this.anchorChecked || !a) return undefined;
    this.anchorChecked = true;
    if (a.index >= this.index)
      return {
        stream: this.stream,
        position: a.last,
        message: `the ${this.stream} stream was trimmed up to ${a.last} after segment ${a.index} was archived, but the archive ends ${this.index === 0 ? 'before its first segment' : `at segment ${this.index - 1}`} (segments removed, or the wrong archive directory)`,
        // Lost up to the trim: the reader knows where the stream reads again.
        lostAfter: this.last ?? null,
      };
    const h = this.hashes.get(a.index);
    return h === undefined
      ? undefined
      : markedReplaced(this.stream, a, h, {
          // From the previous one's last (null: it is the first, or its header could not be read)
          // to the next one's first (the archive's, when segments follow it; else the reader's:
          // the stream's oldest entry).
          lostAfter: a.index === 0 ? null : (this.spans.get(a.index - 1)?.last ?? null),
          ...(this.spans.has(a.index + 1) ? { resumeAt: this.spans.get(a.index + 1)!.first } : {}),
        });
  }
}

/**
 * The marked segment (`a.index`, read with hash `hash`) against the mark: not the one archived when
 * the stream was trimmed (replaced, even by one chained to the segment before it: only the mark
 * holds its hash). That segment is lost: the hole is the reader's to say (`lostAfter`, `resumeAt`).
 * What a reader from the start checks at the archive's end, and a reader after a position when it
 * reads the marked segment.
 */
export function markedReplaced(
  stream: LogStream,
  a: Anchor,
  hash: string,
  hole: Pick<ChainBreak, 'lostAfter' | 'resumeAt'>,
): ChainBreak | undefined {
  if (hash === a.hash) return undefined;
  return {
    stream,
    position: a.last,
    message: `segment ${a.index} of the ${stream} archive is not the one archived when the stream was trimmed up to ${a.last} (replaced)`,
    ...hole,
  };
}
