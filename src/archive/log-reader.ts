import { HistoryUnreadableError } from '../adapters/http/problem.ts';
import { READ_PAGE, type StreamEntry } from '../adapters/redis/event-log.ts';
import { workspaceKeys } from '../adapters/redis/keys.ts';
import type { RedisClient } from '../adapters/redis/scripts.ts';
import { type Anchor, type ChainBreak, ChainCheck, markedReplaced, parseAnchor } from './chain.ts';
import {
  before,
  type DecodedSegment,
  decodeSegment,
  entryLine,
  type LogStream,
  parseSegmentName,
  predecessor,
  type SegmentHeader,
} from './segment.ts';
import type { ArchiveStore } from './store.ts';

/** Bytes of segment files whose decoded entries are kept for the next reader (about 7 segments of 10,000 events; about 42 MB of heap decoded). */
export const SEGMENT_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * Decoded segments, the most recently read last, up to SEGMENT_CACHE_BYTES of their files. A reader
 * after a position (GET /events, a live feed's replay) is made for one page and starts inside a
 * segment: without it, each page would read and decode the whole file again (20 – 50 ms of the
 * process's CPU for 10,000 entries). A segment is never replaced under its name (stores refuse it),
 * so what is kept stays what the file holds; a file larger than the whole budget is not kept, nor
 * is a damaged one (it is mended under its name: the next reader reads the file again). A segment
 * moved aside and written again under its name (Redis lost entries the archive held: the
 * archiver writes those positions again from what Redis holds) is another file: a store that
 * tells files apart (`version`) has each kept segment checked against the file under its name,
 * and one that is not it any more read again.
 */
class SegmentCache {
  private readonly kept = new Map<
    string,
    { segment: DecodedSegment; bytes: number; version: string | undefined }
  >();
  /** Segments being read and decoded: readers asking for one meanwhile wait for that read. */
  private readonly loading = new Map<string, Promise<DecodedSegment>>();
  private bytes = 0;

  async read(
    store: ArchiveStore,
    workspace: string,
    stream: LogStream,
    name: string,
  ): Promise<DecodedSegment> {
    const key = `${store.where}\u0000${workspace}\u0000${stream}\u0000${name}`;
    const hit = this.kept.get(key);
    const same =
      hit !== undefined &&
      (hit.version === undefined || hit.version === (await store.version?.(workspace, stream, name)));
    // Kept meanwhile by another reader, or let go: as this one found it, or read anew.
    if (hit !== undefined && this.kept.get(key) === hit) {
      this.kept.delete(key);
      if (same) this.kept.set(key, hit);
      else this.bytes -= hit.bytes;
    }
    if (hit !== undefined && same) return hit.segment;
    // Readers resuming together (live feeds reconnecting after a restart) ask for the same segment
    // at once: one read and one decoded copy for all of them, not one each.
    const pending = this.loading.get(key);
    if (pending) return pending;
    const loaded = this.load(store, workspace, stream, name, key).finally(() => this.loading.delete(key));
    this.loading.set(key, loaded);
    return loaded;
  }

  private async load(
    store: ArchiveStore,
    workspace: string,
    stream: LogStream,
    name: string,
    key: string,
  ): Promise<DecodedSegment> {
    // Looked at before the read: a file put under the name in between is read again next time.
    const version = await store.version?.(workspace, stream, name);
    const file = await store.read(workspace, stream, name);
    const segment = decodeSegment(file);
    // Only a segment that reads back whole is kept: a damaged one is mended under its own name
    // (restored from a copy, or moved aside and written again by the archiver), and the next
    // reader must see the file as it is then, not the damage met before.
    if (file.length <= SEGMENT_CACHE_BYTES && segment.problems.length === 0) {
      const earlier = this.kept.get(key);
      if (earlier) {
        this.kept.delete(key);
        this.bytes -= earlier.bytes;
      }
      this.kept.set(key, { segment, bytes: file.length, version });
      this.bytes += file.length;
      for (const [k, v] of this.kept) {
        if (this.bytes <= SEGMENT_CACHE_BYTES) break;
        this.kept.delete(k);
        this.bytes -= v.bytes;
      }
    }
    return segment;
  }
}

const segments = new SegmentCache();

export interface LogReaderOptions {
  /** Entries per page (default 5000). */
  readonly pageSize?: number;
  /** Start after this position (default: the beginning of the log, with the whole chain checked). */
  readonly after?: string;
  /**
   * Called with each break of the archive's chain, once (the entries read are still handed on).
   * Without it, a break stops the reader (refuseBreaks: an ArchiveBreakError): a reader not told
   * what to do with a hole in the history never hands the history on with the hole in it. A
   * reader that reports breaks itself (the auditor, the rebuild) passes its own.
   */
  readonly onBreak?: (b: ChainBreak) => void;
}

/**
 * A stream's entries in order across the archive and Redis: the segments first, then the stream
 * after the last archived position, with no gap and no duplicate at the boundary, while an
 * archiver may be moving entries out of the stream meanwhile.
 *
 * Each stream page is read in one MULTI with the stream's oldest entry: when that is after what
 * was handed on, entries between may have been trimmed since the archive was listed, so the page
 * is dropped and the archive listed again (an archiver makes a segment durable before it trims).
 * Entries still in the stream that the archive already holds (an archiver stopped between its
 * segment and its trim) are skipped by position. The archive's mark in Redis (chain.ts), read in
 * the same MULTI, tells a trimmed prefix that no segment holds (a segment removed).
 */
export class LogReader {
  /** The last position handed on. */
  private cursor: string | undefined;
  private names: string[] = [];
  private listed = false;
  private nextName = 0;
  private held: StreamEntry[] = [];
  private heldAt = 0;
  /** The index the next segment read must have (a reader after a position: none read yet). */
  private nextIndex: number | undefined;
  /** The segment this reader (after a position) read last. */
  private lastRead: DecodedSegment | undefined;
  /** The position handed on last when `lastRead` was read (its entries up to it were not handed on). */
  private lastReadAfter: string | undefined;
  private readonly chain: ChainCheck;
  private anchor: Anchor | undefined;
  /** The stream's oldest entry, read with the mark (`anchor`). */
  private oldest: string | undefined;
  /**
   * The last segment read (whole), while what follows it is still to be held to the stream: its
   * index and last position, and whether the reader's position was at or before that last (its
   * history goes on from this segment's).
   */
  private tipRead: { index: number; last: string; line: string; goesOn: boolean } | undefined;
  private readonly key: string;
  private readonly anchorKey: string;
  readonly size: number;
  /** Read from the first segment: the whole chain is checked. */
  private readonly fromStart: boolean;
  /** Entries handed on from the stream (not the archive). */
  fromStream = 0;
  fromArchive = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly store: ArchiveStore | undefined,
    private readonly workspace: string,
    private readonly stream: LogStream,
    private readonly opts: LogReaderOptions = {},
  ) {
    const k = workspaceKeys(workspace);
    this.key = k[stream];
    this.anchorKey = k.archive;
    this.size = opts.pageSize ?? 5000;
    this.fromStart = opts.after === undefined || opts.after === '0-0';
    this.cursor = this.fromStart ? undefined : opts.after;
    // After a position the stream is asked first: the archive is listed only if the stream no
    // longer reaches back to that position (a reader of recent events opens no segment).
    this.listed = !this.fromStart;
    this.chain = new ChainCheck(workspace, stream);
  }

  /** The next entries after those handed on, up to `upTo` (a position, or '+'): a short page is the end. */
  async next(upTo = '+'): Promise<StreamEntry[]> {
    const out: StreamEntry[] = [];
    const within = (p: string) => upTo === '+' || !before(upTo, p);
    for (let relisted = false; out.length < this.size; ) {
      if (this.heldAt >= this.held.length && (await this.loadSegment())) relisted = false;
      if (this.heldAt < this.held.length) {
        for (; this.heldAt < this.held.length && out.length < this.size; this.heldAt++) {
          const e = this.held[this.heldAt]!;
          if (this.cursor !== undefined && !before(this.cursor, e[0])) continue;
          if (!within(e[0])) return out;
          out.push(e);
          this.cursor = e[0];
          this.fromArchive++;
        }
        continue;
      }
      const from = this.cursor === undefined ? '-' : `(${this.cursor}`;
      // A page larger than READ_PAGE is read in parts, each in a MULTI of its own.
      const want = Math.min(READ_PAGE, this.size - out.length);
      // With the last segment read still to be held to the stream: whether its last entry is there.
      const tipLast = this.tipRead?.goesOn ? this.tipRead.last : undefined;
      const read = this.redis
        .multi()
        .hget(this.anchorKey, this.stream)
        .xrange(this.key, '-', '+', 'COUNT', 1)
        .xrange(this.key, from, upTo, 'COUNT', want);
      if (tipLast !== undefined) read.xrange(this.key, tipLast, tipLast, 'COUNT', 1);
      const r = await read.exec();
      if (!r) throw new Error(`the read of ${this.key} was aborted`);
      for (const [err] of r) if (err) throw err;
      this.anchor = parseAnchor(r[0]![1] as string | null);
      const oldest = (r[1]![1] as StreamEntry[])[0]?.[0];
      this.oldest = oldest;
      const page = r[2]![1] as StreamEntry[];
      // The stream starts after what was handed on: entries between may have been trimmed since
      // the archive was listed, and then they are in segments listed now (durable before the trim).
      if (!relisted && (this.cursor === undefined || oldest === undefined || before(this.cursor, oldest))) {
        relisted = true;
        if (await this.list()) continue;
      }
      // The entry itself, not only its position: a Redis whose clock is behind the lost entries'
      // makes new ones at their positions, and one at that last is another history all the same.
      const atTipLast = tipLast === undefined ? undefined : (r[3]![1] as StreamEntry[])[0];
      await this.checkStreamGoesOn(
        oldest,
        atTipLast !== undefined && entryLine(atTipLast) === this.tipRead?.line,
      );
      if (this.anchor && (this.cursor === undefined || before(this.cursor, this.anchor.last))) {
        // Trimmed past what was handed on, and no segment holds it.
        // The stream reads again at its oldest entry (after the trim).
        const resumeAt = oldest ?? null;
        const b = this.fromStart ? this.chain.anchor(this.anchor) : undefined;
        this.report(
          this.fromStart
            ? b && { ...b, ...(b.lostAfter !== undefined && b.resumeAt === undefined ? { resumeAt } : {}) }
            : {
                stream: this.stream,
                position: this.anchor.last,
                message: `the ${this.stream} stream was trimmed up to ${this.anchor.last}, and the archive holds no segment after ${this.cursor ?? 'its start'}`,
                lostAfter: this.cursor ?? null,
                resumeAt,
              },
        );
      } else if (this.fromStart && (!this.anchor || this.anchor.index < this.chain.segments)) {
        // Everything up to the mark was handed on. The marked segment's hash is checked when this
        // reader read it; when it read those entries from the stream before an archiver moved
        // them (a trim under the reader), there is no segment of its own to hold against the mark.
        // The marked segment replaced, and the last one: the history reads again at the stream's
        // first entry after it.
        const b = this.chain.anchor(this.anchor);
        this.report(
          b && b.lostAfter !== undefined && b.resumeAt === undefined
            ? { ...b, resumeAt: page[0]?.[0] ?? null }
            : b,
        );
      }
      for (const e of page) out.push(e);
      this.fromStream += page.length;
      if (page.length > 0) this.cursor = page[page.length - 1]![0];
      // A short read is the end of the stream (up to `upTo`); after a full one the next part is read
      // as a page of its own (an archiver may have trimmed meanwhile: the archive is listed again).
      if (page.length < want) return out;
      relisted = false;
    }
    return out;
  }

  /**
   * The stream must go on from the last segment read when the stream was never trimmed for it (no
   * mark in Redis, or one of an earlier segment): its entries are then still in the stream (an
   * archiver stopped between its segment and its trim), its last one too (`tipInStream`, read with
   * the mark). A stream without it lost entries the archive holds: Redis back without its data,
   * or from an older copy, with the archive kept. What it holds now is another history than the
   * archive's, and handing it on after the segment would make one log of two (the archiver refuses
   * to chain onto it, by the same test). Checked once, for a reader whose position is at or before
   * that segment's last; one after it reads what Redis holds only.
   */
  private async checkStreamGoesOn(oldest: string | undefined, tipInStream: boolean): Promise<void> {
    const t = this.tipRead;
    if (!t) return;
    this.tipRead = undefined;
    if (!t.goesOn || (this.anchor && this.anchor.index >= t.index) || tipInStream) return;
    this.report({
      stream: this.stream,
      position: t.last,
      message: `the archive ends at segment ${t.index} (last ${t.last}), which Redis was never marked as trimmed for, and that entry is not in the ${this.stream} stream (${oldest === undefined ? 'empty' : `its oldest ${oldest}`}; or another entry is at its position): Redis lost entries the archive holds (restarted without its data, or from an older copy), or this is another workspace's archive; what Redis holds now does not go on from the archive (Redis lost them: the archiver's log names the segments to rename to <name>.lost, after which it writes those positions again from Redis; docs/ARCHIVE.md)`,
      lostAfter: t.last,
      // Where what Redis holds reads on past the archive (an older copy may hold some of its entries).
      resumeAt: await this.streamFirstAfter(t.last),
    });
  }

  /** Segments read, and entries in them. */
  get archived(): { segments: number; entries: number } {
    return { segments: this.chain.segments, entries: this.chain.total };
  }

  private report(b: ChainBreak | undefined): void {
    if (b) (this.opts.onBreak ?? refuseBreaks(this.store, this.workspace))(b);
  }

  /** Lists the archive again; whether segments not read yet are there. */
  private async list(): Promise<boolean> {
    this.listed = true;
    if (!this.store) return false;
    // Only segments: a file of another name beside them (a note, a copy) is none of the log.
    const names = (await this.store.list(this.workspace, this.stream)).filter(
      (n) => parseSegmentName(n) !== undefined,
    );
    // Only names after those already read: the archive only grows at its end.
    const seen = this.names.slice(0, this.nextName);
    this.names = [...seen, ...names.filter((n) => seen.length === 0 || n > seen[seen.length - 1]!)];
    // A reader from the start reads every segment, even one whose entries it had from the stream
    // before the archiver moved them (those are passed over by position): the chain is checked
    // from its first segment. Another starts at the segment that may hold its position.
    if (this.nextName === 0 && this.cursor !== undefined && !this.fromStart)
      this.nextName = this.startFor(this.cursor);
    return this.nextName < this.names.length;
  }

  /**
   * The first segment that may hold entries after `p`: the last whose first position is at or
   * before it, unless no position lies between `p` and the next segment's first (`p` is that
   * first's predecessor: `<ms>-<seq-1>`, or `<ms-1>-<max>` before `<ms>-0`). Every entry of a
   * segment is before the next one's first, so that one holds nothing after `p`, whatever state
   * it is in (an emptied or removed segment there is no hole in the history after `p`).
   */
  private startFor(p: string): number {
    let start = 0;
    for (let i = 0; i < this.names.length; i++) {
      const first = parseSegmentName(this.names[i]!)?.first;
      if (first !== undefined && !before(p, first)) start = i;
    }
    const next = this.names[start + 1];
    const nextFirst = next === undefined ? undefined : parseSegmentName(next)?.first;
    if (nextFirst !== undefined && before(p, nextFirst) && !before(p, predecessor(nextFirst))) start++;
    return start;
  }

  private async loadSegment(): Promise<boolean> {
    if (!this.listed) await this.list();
    if (!this.store || this.nextName >= this.names.length) return false;
    const name = this.names[this.nextName++]!;
    const d = await segments.read(this.store, this.workspace, this.stream, name).catch(unreadableFile);
    if (this.fromStart) {
      const next = this.names[this.nextName];
      const b = this.chain.segment(name, d, next === undefined ? undefined : parseSegmentName(next)?.first);
      // The last segment lost, its entries whole (a wrong total in its header): the history reads
      // again at the stream's first entry after it (read for this break only).
      this.report(
        b && b.lostAfter !== undefined && b.resumeAt === undefined && d.header
          ? { ...b, resumeAt: await this.streamFirstAfter(d.header.last) }
          : b,
      );
    } else {
      // Not the whole chain, but what is handed on must follow on: the segments read are
      // consecutive, the first one holds the position read after (or no segment is before it).
      const index = parseSegmentName(name)?.index ?? d.header?.index;
      const first = d.header?.first ?? parseSegmentName(name)?.first;
      const expected = this.nextIndex;
      const missing =
        index === undefined
          ? undefined
          : expected === undefined
            ? index > 0 &&
              this.cursor !== undefined &&
              first !== undefined &&
              before(this.cursor, predecessor(first))
              ? `segment${index > 1 ? `s 0..${index - 1}` : ' 0'}`
              : undefined
            : index > expected
              ? `segment${index - expected > 1 ? `s ${expected}..${index - 1}` : ` ${expected}`}`
              : undefined;
      this.nextIndex = index === undefined ? undefined : index + 1;
      const inside = d.problems[0];
      if (missing !== undefined)
        this.report({
          stream: this.stream,
          position: first ?? name,
          message: `segment ${name}: ${missing} of the ${this.stream} archive ${missing.includes('..') ? 'are' : 'is'} missing before it`,
          lostAfter: (await this.previousLast()) ?? null,
          resumeAt: first ?? null,
        });
      else if (inside && !d.header) this.report(await this.unreadableHeader(name, inside.message, first));
      else if (inside)
        this.report({
          stream: this.stream,
          position: inside.position ?? name,
          message: `segment ${name}: ${inside.message}`,
          lostAfter: (await this.previousLast()) ?? null,
          resumeAt: this.nextFirst() ?? null,
        });
      else this.report((await this.linkBreak(name, d)) ?? (await this.markBreak(name, d)));
      this.lastRead = d;
      this.lastReadAfter = this.cursor;
    }
    this.tipRead =
      d.header && d.problems.length === 0
        ? {
            index: d.header.index,
            last: d.header.last,
            line: d.entries.length > 0 ? entryLine(d.entries.at(-1)!) : '',
            goesOn: this.cursor === undefined || !before(d.header.last, this.cursor),
          }
        : undefined;
    this.held = d.entries;
    this.heldAt = 0;
    return true;
  }

  /**
   * The break of segment `name` (the one just taken from the list), whose header cannot be read:
   * at its first position (from its name), with the positions it lay between, as the auditor has
   * them: after the previous segment's last, before the next segment's first. Its file name alone
   * tells neither which events cannot be read nor from where the history reads again.
   */
  private async unreadableHeader(
    name: string,
    problem: string,
    first: string | undefined,
  ): Promise<ChainBreak> {
    const prev = await this.previousLast();
    const next = this.nextFirst();
    const span = [
      prev === undefined ? `from ${first ?? 'its start'}` : `after ${prev} (the previous segment's last)`,
      next === undefined ? 'to the end of the archive' : `and before ${next} (the next segment's first)`,
    ].join(' ');
    return {
      stream: this.stream,
      position: first ?? prev ?? name,
      message: `segment ${name}: ${problem}; the ${this.stream} entries ${span} cannot be read until this file is restored`,
      ...(next === undefined ? {} : { through: next }),
      lostAfter: prev ?? null,
      resumeAt: next ?? null,
    };
  }

  /**
   * The break between segment `name` (just taken from the list, whole in itself) and the one before
   * it, checked as a reader from the start checks them (chain.ts): its prevHash, its total, and its
   * first entry after the previous one's last. The one before it is the segment this reader read
   * before; for the first one it reads, the one listed before it (read for this: a segment that
   * starts before the previous one's end would have this reader pass over entries of that one after
   * its position). Nothing is checked against a segment missing or damaged.
   */
  private async linkBreak(name: string, d: DecodedSegment): Promise<ChainBreak | undefined> {
    const h = d.header;
    const at = this.nextName - 1;
    if (!h || at === 0) return undefined;
    const handedOn = this.lastRead !== undefined;
    const p = this.lastRead ?? (await this.readListed(at - 1));
    const ph = p?.header;
    // A damaged one's header is not to be held against (it is not covered by its hash): the
    // damaged segment is the break, reported when read; one before the first read is none of it.
    if (!ph || p.problems.length > 0) return undefined;
    // The one listed before it is one of two of the same index: that is their break, and which of
    // them this one follows is not known (a reader after the two holds it to neither).
    if (!handedOn && parseSegmentName(this.names[at - 2] ?? '')?.index === ph.index) return undefined;
    const where = `segment ${name}`;
    const nextFirst = this.nextFirst();
    // Either of the two may be the one replaced or altered: the hole takes both in.
    const both = async () => {
      const twoBack = await this.lastOfListed(at - 2);
      return {
        lostAfter: twoBack !== undefined && before(twoBack, h.first) ? twoBack : null,
        resumeAt:
          nextFirst !== undefined && before(h.last, nextFirst) && before(ph.last, nextFirst)
            ? nextFirst
            : null,
      };
    };
    if (ph.index === h.index)
      return {
        stream: this.stream,
        position: h.first,
        message: `${where}: index ${h.index} again, after segment ${this.names[at - 1]}`,
        ...(await both()),
      };
    if (ph.index !== h.index - 1) return undefined;
    if (h.prevHash !== ph.hash)
      return {
        stream: this.stream,
        position: h.first,
        message: `${where}: its prevHash is not the hash of segment ${ph.index} (a segment before it was removed or replaced)`,
        ...(await both()),
      };
    if (h.total !== ph.total + d.entries.length) {
      // One of the two headers is wrong (a header is not covered by the hash). The previous one's is,
      // when it does not add up with the segment before it (or, the first segment, with its count;
      // or, the marked one, with the mark). When none of those can tell (the segment before it
      // missing, or its header unreadable), this one's is unless it adds up with what comes after
      // it (the mark, or the next segment); when that cannot tell either, this one is held to be
      // the wrong one: its entries are refused (never one passed over), one segment too many in the hole.
      const pp = ph.index === 0 ? undefined : (await this.readListed(at - 2))?.header;
      const byBefore = ph.index === 0 || (pp !== undefined && pp.index === ph.index - 1);
      const byMark = !byBefore && this.anchor?.index === ph.index;
      const previousWrong = byBefore
        ? ph.index === 0
          ? ph.total !== ph.count
          : pp!.total + ph.count !== ph.total
        : byMark
          ? this.anchor!.total !== ph.total
          : (await this.addsUpAfter(h, at)) === true;
      // Its entries are none of those read after the position (not read, or read and all of them
      // at or before it): nothing is lost to this reader.
      const previousHandedOn =
        handedOn && (this.lastReadAfter === undefined || before(this.lastReadAfter, ph.last));
      if (previousWrong && !previousHandedOn) return undefined;
      // This one's wrong: none of its entries (whole: they hash to its header, which ends at the
      // file's last) is after a position at or past its last, and the next segment (or, after the
      // last one listed, the stream) follows it. Nothing is lost to such a reader (the next segment,
      // whose total adds up with this wrong one's, is the previous-wrong case above; the marked one
      // is still held to the mark: markBreak).
      if (!previousWrong && this.cursor !== undefined && !before(this.cursor, h.last)) return undefined;
      const held = byBefore
        ? `the segments hold ${(pp?.total ?? 0) + ph.count}`
        : byMark
          ? `the mark in Redis counts ${this.anchor!.total}`
          : `the next segment counts ${h.total - d.entries.length} up to it (it adds up with the one after it)`;
      return {
        stream: this.stream,
        position: previousWrong ? ph.first : h.first,
        message: previousWrong
          ? `segment ${this.names[at - 1]}: its header counts ${ph.total} entries up to its end, ${held}`
          : `${where}: its header counts ${h.total} entries up to its end, the segments hold ${ph.total + d.entries.length}`,
        ...(previousWrong
          ? { lostAfter: (await this.lastOfListed(at - 2)) ?? null, resumeAt: h.first }
          : {
              lostAfter: ph.last,
              // The last segment listed: the history reads again at the stream's first entry after it.
              resumeAt: nextFirst ?? (await this.streamFirstAfter(h.last)),
            }),
      };
    }
    if (!before(ph.last, h.first))
      return {
        stream: this.stream,
        position: h.first,
        message: `${where}: its first entry ${h.first} is not after the previous segment's last ${ph.last}`,
        ...(await both()),
      };
    return undefined;
  }

  /**
   * Segment `name` (just taken from the list, whole in itself and linked to the one before it)
   * against the mark in Redis, when it is the marked segment, as a reader from the start checks it
   * at the archive's end (chain.ts `markedReplaced`): only the mark holds its hash, so one replaced
   * by a segment chained to the one before it breaks no link. The mark is the one this reader read
   * with its last page of the stream (every reader after a position reads one before it lists the
   * archive): no read of its own. Nothing is lost to a reader none of whose entries it hands on
   * (after its last: the hole's `resumeAfter` reads on).
   */
  private async markBreak(name: string, d: DecodedSegment): Promise<ChainBreak | undefined> {
    const h = d.header;
    const a = this.anchor;
    if (!h || !a || a.index !== h.index || a.hash === h.hash) return undefined;
    const fileLast = d.entries.at(-1)?.[0];
    if (this.cursor !== undefined && (fileLast === undefined || !before(this.cursor, fileLast)))
      return undefined;
    const b = markedReplaced(this.stream, a, h.hash, {
      // From the previous segment's last to the next one's first, or the stream's oldest entry
      // (after the mark: the stream was trimmed up to it).
      lostAfter: h.index === 0 ? null : ((await this.previousLast()) ?? null),
      resumeAt:
        this.nextFirst() ?? (this.oldest !== undefined && before(a.last, this.oldest) ? this.oldest : null),
    });
    return b && { ...b, message: `segment ${name}: ${b.message}` };
  }

  /**
   * Whether segment `h` (listed at `at`) adds up with what comes after it: the mark's count, when it
   * is the marked segment, else the segment listed after it (its header's total, less its entries);
   * undefined when neither can tell.
   */
  private async addsUpAfter(h: SegmentHeader, at: number): Promise<boolean | undefined> {
    if (this.anchor?.index === h.index) return this.anchor.total === h.total;
    const n = await this.readListed(at + 1);
    const nh = n?.header;
    if (!nh || n.problems.length > 0 || nh.index !== h.index + 1) return undefined;
    return nh.total === h.total + n.entries.length;
  }

  /**
   * The stream's first entry after `last`, the last entry of the archive's last segment (null: none):
   * where the history reads again when that segment is lost. Entries up to the mark were trimmed, so
   * it is after the mark too; the stream's oldest, read with the last page, when that is after
   * `last` (no read), else read for this (a break only: an archiver stopped before its trim left
   * that segment's entries in the stream, or this reader, from the start, has read no page yet).
   */
  private async streamFirstAfter(last: string): Promise<string | null> {
    if (this.oldest !== undefined && before(last, this.oldest)) return this.oldest;
    const r = (await this.redis.xrange(this.key, `(${last}`, '+', 'COUNT', 1)) as StreamEntry[];
    return r[0]?.[0] ?? null;
  }

  /** Segment `at` of the list, decoded, if it can be read. */
  private async readListed(at: number): Promise<DecodedSegment | undefined> {
    const name = this.names[at];
    if (name === undefined || !this.store) return undefined;
    try {
      return await segments.read(this.store, this.workspace, this.stream, name);
    } catch {
      return undefined;
    }
  }

  /** The last position of segment `at` of the list, if it can be read. */
  private async lastOfListed(at: number): Promise<string | undefined> {
    const name = this.names[at];
    return name === undefined ? undefined : await this.lastOf(name);
  }

  /** The last position of the segment listed before the one just taken from the list, if it can be read. */
  private async previousLast(): Promise<string | undefined> {
    const prevName = this.names[this.nextName - 2];
    return prevName === undefined ? undefined : await this.lastOf(prevName);
  }

  /** The first position of the segment listed after the one just taken from the list (from its name). */
  private nextFirst(): string | undefined {
    const nextName = this.names[this.nextName];
    return nextName === undefined ? undefined : parseSegmentName(nextName)?.first;
  }

  /** The last position of segment `name` (its header's, else its file's last entry), if it can be read. */
  private async lastOf(name: string): Promise<string | undefined> {
    if (!this.store) return undefined;
    try {
      const d = await segments.read(this.store, this.workspace, this.stream, name);
      return d.header?.last ?? d.entries.at(-1)?.[0];
    } catch {
      return undefined;
    }
  }
}

/**
 * A listed segment whose file cannot be read (not this user's to read, as a copy restored by
 * another user; a folder where the file must be; a failing disk): a segment of which nothing can be
 * read, a break at its place in the chain like an emptied file, never one passed over.
 */
function unreadableFile(err: unknown): DecodedSegment {
  const e = err as NodeJS.ErrnoException;
  return {
    header: undefined,
    entries: [],
    computedHash: undefined,
    problems: [
      {
        position: undefined,
        message: `the file cannot be read (${e.code ?? e.message}): make it a file this user can read`,
      },
    ],
  };
}

/**
 * The archive cannot give a stream's history whole: a segment is missing, cut short or altered, or
 * the archive is not the one the archiver writes to. What hands the history to someone (GET
 * /events, a live feed's replay, GET /state, the state snapshots) fails with this rather than hand
 * on a history with a hole in it; the auditor reports the same breaks as violations instead.
 */
export class ArchiveBreakError extends HistoryUnreadableError {}

/** An `onBreak` that stops the reader at the first break, with what to do about it. */
export function refuseBreaks(store: ArchiveStore | undefined, workspace: string): (b: ChainBreak) => never {
  return (b) => {
    const where = store?.where ?? '(no archive)';
    throw new ArchiveBreakError(
      `the ${b.stream} history of workspace "${workspace}" cannot be read whole from the archive in ${where}, at ${b.position}: ${b.message}. ARCHIVE_DIR must be the archive the archiver writes to (one place every process sees); restore the missing or damaged segment from a copy (npm run audit -- --workspace ${workspace} --archive-dir ${where} lists every break)`,
      workspace,
      {
        lostAfter: b.lostAfter ?? null,
        resumeAt: b.resumeAt ?? null,
      },
    );
  };
}

/**
 * Every entry of a stream after `after` ('0-0' or a position), in order across the archive and
 * Redis, page by page, up to the end of the stream when each page is read. What the event
 * history's readers (GET /events, the live feed's replay) build on.
 */
export async function* readLogAfter(
  redis: RedisClient,
  store: ArchiveStore | undefined,
  workspace: string,
  stream: LogStream,
  after: string,
  opts: Omit<LogReaderOptions, 'after'> = {},
): AsyncGenerator<StreamEntry[]> {
  const reader = new LogReader(redis, store, workspace, stream, { ...opts, after });
  for (;;) {
    const page = await reader.next('+');
    if (page.length > 0) yield page;
    if (page.length < reader.size) return;
  }
}
