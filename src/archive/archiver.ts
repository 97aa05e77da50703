import type { Logger } from 'pino';
import { callOnNodeOf } from '../adapters/redis/client.ts';
import { readRange, type StreamEntry } from '../adapters/redis/event-log.ts';
import { workspaceKeys } from '../adapters/redis/keys.ts';
import { luaScript, type RedisClient, runLua } from '../adapters/redis/scripts.ts';
import { type Anchor, parseAnchor } from './chain.ts';
import { forgetFinishedContacts } from './forgetting.ts';
import type { Retention } from './retention.ts';
import {
  before,
  decodeSegment,
  encodeSegment,
  entryLine,
  GENESIS_HASH,
  LOG_STREAMS,
  type LogStream,
  parseSegmentName,
  type SegmentHeader,
  segmentName,
  successor,
} from './segment.ts';
import { listSnapshots, type SnapshotTaker } from './snapshots.ts';
import { type ArchiveStore, SegmentExistsError, workspaceFolder } from './store.ts';

/** Where the archiver can be made to stop (a test kills the process there). */
export type ArchivePausePoint = 'segment-written' | 'trimmed';
export const ARCHIVE_PAUSE_POINTS: readonly ArchivePausePoint[] = ['segment-written', 'trimmed'];

export interface ArchiverOptions {
  readonly retention: Retention;
  /** Most entries in one segment (one step's work). */
  readonly segmentEntries: number;
  /** Pause between passes once a pass found less than a full segment to move. */
  readonly everyMs: number;
  /** Test hook: stop for good at this point of every step (the process is then killed). */
  readonly pauseAt?: ArchivePausePoint;
  /** Finished contacts' documents are forgotten this long after they finish (src/archive/forgetting.ts); unset: kept. */
  readonly contactRetentionMs?: number;
  /** Takes the state snapshots due after each pass (src/archive/snapshots.ts). */
  readonly snapshots?: SnapshotTaker;
  /** Told of the archiver's work (its /metrics counters, src/adapters/http/metrics.ts). */
  readonly observer?: ArchiverObserver;
}

/** What an archiver tells of its work as it goes (the process's /metrics counters). */
export interface ArchiverObserver {
  /** This archiver took the workspace (its lease): its streams' counts start here, at 0. */
  serving(workspace: string, streams: readonly LogStream[]): void;
  /** A segment of `entries` entries written (and read back whole) to the stream's archive. */
  archived(workspace: string, stream: LogStream, entries: number): void;
}

/** A stream of a workspace this archiver serves, and whether it refuses to archive it now. */
export interface ArchivedStream {
  readonly workspace: string;
  readonly stream: LogStream;
  readonly refused: boolean;
}

/** Temporary files older than this are leftovers of a killed writer (src/archive/store.ts `sweep`). */
export const LEFTOVER_AGE_MS = 600_000;

/** The archive's last segment, and the line of its last entry (what it holds at `last`). */
type Tip = SegmentHeader & { readonly lastLine: string };

/** The archive is behind Redis or damaged: this stream is not archived until someone looks. */
export class ArchiveMismatchError extends Error {}

/**
 * The store could not be listed, read or written (a folder not writable, a disk full): this stream
 * is not archived until it can be (its entries stay in Redis), the other one and the rest of the
 * pass go on.
 */
export class ArchiveStoreError extends ArchiveMismatchError {}

/**
 * The archiver of one process: moves command and event entries past the retention from Redis to
 * the archive, one workspace at a time per lease (a WorkspaceLoop for the workspace runner).
 *
 * A step, for one stream: (1) the archive's tip is its last segment (what is archived is read
 * from the segments, nowhere else: listed when a lease is taken, then kept as segments are
 * written), checked against the mark in Redis; (2) if the stream was not trimmed up to the tip yet (a step
 * stopped after its segment), it is trimmed now; (3) the entries after the tip that are past the
 * retention (and, for commands, applied by the projector) are written as the next segment, which
 * is read back and compared byte for byte; (4) only then the stream is trimmed up to its last
 * entry, in one Lua step with the archive's mark (chain.ts), which only moves forward. A crash anywhere leaves either no new
 * segment (the next step writes it again) or a durable one whose entries may still be in the
 * stream (the next step trims them; readers skip them by position): nothing lost, nothing twice.
 */
export class Archiver {
  private readonly tips = new Map<string, Tip | null>();
  private readonly wakers = new Map<string, () => void>();
  /** Streams not archived because the archive does not match Redis, and why. */
  private readonly refused = new Map<string, string>();
  /** Per workspace, the last ForgetContacts this archiver appended, while the projector has not applied it. */
  private readonly forgetting = new Map<string, string>();
  /** The workspaces this archiver runs now (holds the lease of). */
  private readonly serving = new Set<string>();
  segmentsWritten = 0;
  entriesArchived = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly store: ArchiveStore,
    private readonly log: Logger,
    private readonly opts: ArchiverOptions,
  ) {}

  async run(workspace: string, running: () => boolean): Promise<void> {
    this.serving.add(workspace);
    this.opts.observer?.serving(workspace, LOG_STREAMS);
    try {
      await this.pass(workspace, running);
    } finally {
      // Another process may take the workspace: what this one refused is its to say from then on
      // (and this one says it again, in its log and on /metrics, if it takes the workspace back).
      this.serving.delete(workspace);
      for (const s of LOG_STREAMS) this.refused.delete(`${workspace}/${s}`);
    }
  }

  /**
   * The streams of the workspaces this archiver serves now, each refused or not (a refused one is
   * not archived until what its error logged says is mended): the /metrics gauge.
   */
  streams(): ArchivedStream[] {
    return [...this.serving].flatMap((workspace) =>
      LOG_STREAMS.map((stream) => ({
        workspace,
        stream,
        refused: this.refused.has(`${workspace}/${stream}`),
      })),
    );
  }

  private async pass(workspace: string, running: () => boolean): Promise<void> {
    // What this process knew of the archive may be stale once another process held the lease.
    for (const s of LOG_STREAMS) this.forgetTip(workspace, s);
    this.forgetting.delete(workspace);
    // Leftovers of a writer killed mid-put (best effort: they only take room).
    const swept = await this.store.sweep?.(workspace, LEFTOVER_AGE_MS).catch((err: Error) => {
      this.log.warn(
        { workspace, err: err.message },
        'could not sweep the archive of leftover temporary files',
      );
      return 0;
    });
    if (swept) this.log.info({ workspace, swept }, 'removed temporary files a killed archiver left');
    while (running()) {
      let full = false;
      for (const stream of LOG_STREAMS) {
        if (!running()) return;
        try {
          const moved = await this.step(workspace, stream);
          if (moved >= this.opts.segmentEntries) full = true;
          this.refused.delete(`${workspace}/${stream}`);
        } catch (err) {
          if (err instanceof SegmentExistsError) {
            // Another archiver wrote this segment (it held the lease meanwhile): this stream goes on
            // from the archive's tip read afresh at its next pass; the other stream carries on.
            this.forgetTip(workspace, stream);
            this.log.info(
              { workspace, stream, err: err.message },
              'segment already written by another archiver; reading the archive again',
            );
            continue;
          }
          if (!(err instanceof ArchiveMismatchError)) throw err;
          // Said once (and again if it changes); the other stream carries on.
          const id = `${workspace}/${stream}`;
          if (this.refused.get(id) !== err.message) this.log.error({ workspace, stream }, err.message);
          this.refused.set(id, err.message);
        }
      }
      if (this.opts.contactRetentionMs !== undefined && running())
        await this.forget(workspace, this.opts.contactRetentionMs);
      if (running()) await this.opts.snapshots?.afterPass(workspace, running);
      if (!full && running()) await this.sleep(workspace);
    }
  }

  /**
   * Appends the ForgetContacts commands due, unless the projector has not applied those this
   * archiver appended last: the contacts they are for are still in the finished set until it
   * does, and each pass would append commands for them again (a pass every ARCHIVE_EVERY_MS, or
   * one after another through a backlog), piling up in Redis while the projector is down.
   */
  private async forget(workspace: string, keepMs: number): Promise<void> {
    const last = this.forgetting.get(workspace);
    if (last !== undefined) {
      const applied = await this.redis.hget(workspaceKeys(workspace).meta, 'applied');
      if (applied === null || before(applied, last)) return;
      this.forgetting.delete(workspace);
    }
    await forgetFinishedContacts(this.redis, workspace, keepMs, (position) =>
      this.forgetting.set(workspace, position),
    );
  }

  interrupt(workspace: string): void {
    this.wakers.get(workspace)?.();
  }

  /** Every stream of a workspace archived as far as the retention allows (tests, tools). */
  async drain(workspace: string): Promise<number> {
    let moved = 0;
    for (const stream of LOG_STREAMS)
      for (let n = -1; n !== 0; moved += n) n = await this.step(workspace, stream);
    return moved;
  }

  /**
   * `p`, a call of the store for this stream, whose failure (anything but a segment already there,
   * which another archiver wrote) is an ArchiveStoreError saying where and what to do: the
   * workspace's other stream, the forgetting and the snapshots go on; Redis keeps the stream's
   * entries until the store is mended.
   */
  private async io<T>(workspace: string, stream: LogStream, what: string, p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      if (err instanceof SegmentExistsError) throw err;
      this.forgetTip(workspace, stream);
      throw new ArchiveStoreError(
        `cannot ${what} the ${stream} archive of ${workspace} in ARCHIVE_DIR (${this.store.where}): ${(err as Error).message}. Make <ARCHIVE_DIR>/${workspaceFolder(workspace)}/${stream} a directory this user can write, with room on its file system; nothing more is archived for this stream until then (its entries stay in Redis)`,
      );
    }
  }

  /** One segment of one stream at most; returns the entries moved. */
  async step(workspace: string, stream: LogStream): Promise<number> {
    const k = workspaceKeys(workspace);
    const key = k[stream];
    let tip = await this.tip(workspace, stream);
    const anchor = await this.mark(workspace, stream);
    // A mark past the tip this archiver kept, or past the one it has just listed: another archiver
    // went on meanwhile (this one paused, or its lease lapsed unnoticed; or the other's lease
    // lapsed unnoticed, and it archived between this one's listing and its read of the mark). The
    // archive is listed again, once, before it is judged.
    if (anchor && anchor.index > (tip?.index ?? -1)) {
      this.forgetTip(workspace, stream);
      tip = await this.tip(workspace, stream);
    }
    this.check(workspace, stream, tip, anchor);
    if (tip && (!anchor || anchor.index < tip.index)) {
      // Trimmed only up to the mark, so the tip's entries are still in the stream, its last one
      // too; unless Redis lost them (back without its data, or from an older copy): the archive
      // is then ahead of Redis, and chaining what Redis holds now onto it would make one log of
      // two histories.
      // The entry itself, not only its position: a Redis whose clock is behind the lost entries'
      // makes new ones at their positions, and one at `last` is another history all the same.
      if (!(await this.holds(key, tip.last, tip.lastLine))) {
        const markNow = await this.mark(workspace, stream);
        this.forgetTip(workspace, stream);
        // Another archiver trimmed past it meanwhile: read the archive again.
        if (markNow && markNow.index >= tip.index) return 0;
        // Segments after the mark: what Redis lost is in them, and only them. What Redis still
        // holds of the old history is a prefix of it, so a segment whose next one's first entry
        // Redis holds is wholly held: kept (renaming it would lose entries the archiver, going on
        // from there, trims), and the segments from the first one that is not are named.
        const after = (await this.io(workspace, stream, 'list', this.store.list(workspace, stream)))
          .map((n) => ({ n, parsed: parseSegmentName(n) }))
          .filter((s) => (s.parsed?.index ?? -1) > (markNow?.index ?? -1))
          .sort((a, b) => a.parsed!.index - b.parsed!.index);
        let from = 0;
        while (
          from + 1 < after.length &&
          (await this.holds(
            key,
            after[from + 1]!.parsed!.first,
            await this.firstLine(workspace, stream, after[from + 1]!.n),
          ))
        )
          from++;
        const unmarked = after.slice(from).map((s) => s.n);
        // State snapshots are of archived events: those after the mark are of what was lost too.
        const lostSnapshots =
          stream === 'events'
            ? (await this.io(workspace, stream, 'list', listSnapshots(this.store, workspace)))
                .filter((n) => markNow === undefined || before(markNow.last, n.position))
                .map((n) => n.name)
            : [];
        throw new ArchiveMismatchError(
          `the ${stream} archive of ${workspace} in ${this.store.where} ends at segment ${tip.index} (last ${tip.last}), which Redis was never marked as trimmed for, and its last entry is not in Redis: Redis lost entries the archive holds (restarted from an older snapshot or without its data, or a failover lost writes not yet replicated; the position of the archive's last entry may hold another entry made since; docs/DEPLOYMENT.md, Durability), or this is another workspace's archive. Nothing more is archived for it until then, and a read of the history that goes on from the archive into the stream answers archive-unreadable. Another workspace's: point ARCHIVE_DIR at this one's archive. Redis lost them (what the archive holds after ${markNow?.last ?? 'its start'} never happened in what Redis holds now): rename the segments Redis was never marked as trimmed for (${unmarked.join(', ')} in <ARCHIVE_DIR>/${workspaceFolder(workspace)}/${stream})${lostSnapshots.length > 0 ? `, and the state snapshots of what was lost (${lostSnapshots.join(', ')} in <ARCHIVE_DIR>/${workspaceFolder(workspace)}/snapshots)` : ''} to <name>.lost, which keeps them as the record of what was lost and out of the log; the archiver then writes those positions again from what Redis holds${markNow === undefined ? '. Redis has no mark of this archive at all: if it came back without any of its data, the archive is the only copy of this history, so restore Redis from its backup (its RDB or AOF) instead' : ''}`,
        );
      }
      if (await this.trim(workspace, stream, tip))
        this.log.info(
          { workspace, stream, mark: tip.index, upTo: tip.last },
          'trimmed the stream for the last segment, which an earlier step wrote and stopped before trimming',
        );
    }

    // The clock of the workspace's node (the one its stream ids come from), not a random node's
    // on a cluster.
    const now = (await callOnNodeOf(this.redis, key, 'TIME')) as [string, string];
    const nowMs = Number(now[0]) * 1000 + Math.floor(Number(now[1]) / 1000);
    const checkpoint = stream === 'commands' ? await this.redis.hget(k.meta, 'applied') : '+';
    if (checkpoint === null) return 0;
    const entries = await this.dueEntries(key, tip ? `(${tip.last}` : '-', checkpoint, nowMs);
    if (entries.length === 0) return 0;
    // Another archiver (this one paused, or its lease lapsed mid-step) may have archived past the
    // tip and trimmed since the mark was read: then these entries are what its trim left, and a
    // segment of them would be a second one of the same index under another name (its first
    // entry). The mark is read again after the entries: unmoved, they were read before any such
    // trim, so a segment of the same index written meanwhile has the same name and the store
    // refuses this one.
    const markNow = await this.mark(workspace, stream);
    if (markNow && markNow.index > (tip?.index ?? -1)) {
      this.forgetTip(workspace, stream);
      this.log.info(
        { workspace, stream, mark: markNow.index },
        'another archiver archived this stream further; reading the archive again',
      );
      return 0;
    }

    // The tip kept from an earlier step may be gone since (the file system holding the archive
    // unmounted, the folder or the segment removed): a segment chained onto it would be written
    // into a folder made anew, and Redis trimmed for it, with the history before it missing. Its
    // file is looked for (one lookup, not a listing of the stream's history); gone, the archive is
    // listed again and judged against the mark instead.
    if (tip) {
      const name = segmentName(tip.index, tip.first);
      const store = this.store;
      const there = await this.io(
        workspace,
        stream,
        'list',
        store.has
          ? store.has(workspace, stream, name)
          : store.list(workspace, stream).then((names) => names.includes(name)),
      );
      if (!there) {
        this.forgetTip(workspace, stream);
        this.check(workspace, stream, await this.tip(workspace, stream), markNow);
        this.log.warn(
          { workspace, stream, segment: name },
          'the last segment this archiver wrote is gone from the archive: reading the archive again',
        );
        return 0;
      }
    }

    const seg = encodeSegment({
      workspace,
      stream,
      index: tip ? tip.index + 1 : 0,
      prevHash: tip?.hash ?? GENESIS_HASH,
      before: tip?.total ?? 0,
      entries,
    });
    await this.io(workspace, stream, 'write', this.store.put(workspace, stream, seg.name, seg.bytes));
    const back = await this.io(workspace, stream, 'read', this.store.read(workspace, stream, seg.name));
    if (!back.equals(seg.bytes) || decodeSegment(back).problems.length > 0) {
      // The segment is written, whatever it reads back as: the next step reads the tip afresh,
      // not building it again under a name that is taken.
      this.forgetTip(workspace, stream);
      throw new ArchiveMismatchError(
        `segment ${seg.name} of ${workspace}/${stream} reads back other than written from ${this.store.where}: not trimming, so its entries are still in Redis. Check that file system (its disk's errors in the system log); a later step reads the segment again and, if it refuses it as damaged, move the file aside (rename it to ${seg.name}.damaged) and the archiver writes it again from Redis (docs/ARCHIVE.md, "Crash safety")`,
      );
    }
    const written = { ...seg.header, lastLine: entryLine(entries.at(-1)!) };
    this.tips.set(`${workspace}/${stream}`, written);
    await this.pause('segment-written', workspace, stream);
    const trimmed = await this.trim(workspace, stream, written);
    this.segmentsWritten++;
    this.entriesArchived += entries.length;
    this.opts.observer?.archived(workspace, stream, entries.length);
    const what = {
      workspace,
      stream,
      segment: seg.name,
      entries: entries.length,
      first: seg.header.first,
      last: seg.header.last,
      trimmed,
    };
    if (trimmed)
      this.log.info(what, 'archived a segment, and trimmed the stream up to its last entry and marked it');
    // The mark was already at or past this segment: another archiver (this one's lease lapsed
    // unnoticed) trimmed for it, or past it, between its write and this trim.
    else
      this.log.debug(
        what,
        'archived a segment; the trim changed nothing: the stream was already trimmed and marked for it (another archiver went on meanwhile)',
      );
    await this.pause('trimmed', workspace, stream);
    return entries.length;
  }

  /**
   * The first entries after the tip (`from`) that are past the retention, up to `checkpoint`
   * (commands: the projector's; events: `+`), at most a segment of them. Only those are read:
   * the count limit is known from the stream's length (the stream holds no entry up to the tip
   * here, it was just trimmed, so its length counts those after it), the age limit is a position
   * (entries before `now - age`), so a pass with nothing due reads no entry at all, and what is due
   * comes in reads of at most READ_PAGE entries (each read holds Redis for its length only).
   */
  private async dueEntries(
    key: string,
    from: string,
    checkpoint: string,
    nowMs: number,
  ): Promise<StreamEntry[]> {
    const { ageMs, count } = this.opts.retention;
    const len = await this.redis.xlen(key);
    // The newest entry always stays, so the stream's last position is read from Redis alone.
    const most = Math.min(this.opts.segmentEntries, len - 1);
    // Past the count: all but the newest `count` (entries appended since only come after them).
    const byCount = count === undefined ? 0 : Math.min(most, Math.max(0, len - count));
    // Past the age: positions are Redis' clock in ms, so older than the age is before `now - age`.
    const cutMs = ageMs === undefined ? -1 : nowMs - ageMs;
    const aged = cutMs > 0 ? `${cutMs}-0` : undefined;
    const agedEnd =
      aged === undefined
        ? undefined
        : checkpoint !== '+' && before(checkpoint, aged)
          ? checkpoint
          : `(${aged}`;
    // Past the count first (a prefix, up to the checkpoint); then on, while before the cut. When the
    // counted ones run into the checkpoint, nothing more is due (the aged ones are before it too).
    const counted = await readRange(this.redis, key, from, checkpoint, byCount);
    if (counted.length < byCount || agedEnd === undefined || counted.length >= most) return counted;
    const last = counted.at(-1);
    const older = await readRange(
      this.redis,
      key,
      last ? `(${last[0]}` : from,
      agedEnd,
      most - counted.length,
    );
    return [...counted, ...older];
  }

  /**
   * Trims the stream up to a durable segment's last entry, and marks it, in one step; false when the
   * mark was already at or past it (nothing changed).
   */
  private trim(workspace: string, stream: LogStream, tip: Tip): Promise<boolean> {
    const [, fields] = JSON.parse(tip.lastLine) as [string, string[]];
    // Bytes that are not UTF-8 (an entry no Switchboard wrote) reach here replaced (U+FFFD), so
    // the step could never find them equal: such an entry is held by its position alone.
    return trimAndMark(this.redis, workspace, stream, tip, tip.lastLine.includes('\uFFFD') ? [] : fields);
  }

  /** The archive must hold every segment Redis was trimmed for, the marked one unchanged. */
  private check(
    workspace: string,
    stream: LogStream,
    tip: SegmentHeader | undefined,
    a: Anchor | undefined,
  ): void {
    if (!a) return;
    const why =
      !tip || tip.index < a.index
        ? `ends at ${tip ? `segment ${tip.index}` : 'no segment'}, yet Redis was trimmed up to ${a.last} after segment ${a.index}`
        : tip.index === a.index && tip.hash !== a.hash
          ? `holds a segment ${a.index} other than the one Redis was trimmed for`
          : undefined;
    if (why === undefined) return;
    this.forgetTip(workspace, stream);
    throw new ArchiveMismatchError(
      `the ${stream} archive of ${workspace} in ${this.store.where} ${why}: it is not the archive this workspace was archived to (ARCHIVE_DIR must be one shared place for every archiver), or segments were removed (or the file system holding it is not mounted). Nothing more is archived for it until the archive is restored`,
    );
  }

  /** The mark in Redis: the last segment the stream was trimmed for (none before the first trim). */
  private async mark(workspace: string, stream: LogStream): Promise<ReturnType<typeof parseAnchor>> {
    return parseAnchor(await this.redis.hget(workspaceKeys(workspace).archive, stream));
  }

  /** What this archiver kept of the archive's tip is stale: the next step lists the archive again. */
  private forgetTip(workspace: string, stream: LogStream): void {
    this.tips.delete(`${workspace}/${stream}`);
  }

  /** The last segment's header (read once per lease, then kept as segments are written). */
  private async tip(workspace: string, stream: LogStream): Promise<Tip | undefined> {
    const id = `${workspace}/${stream}`;
    const known = this.tips.get(id);
    if (known !== undefined) return known ?? undefined;
    // The last segment: a file of another name beside them (a note, a copy) is none of the log.
    const names = await this.io(workspace, stream, 'list', this.store.list(workspace, stream));
    const last = names.filter((n) => parseSegmentName(n) !== undefined).at(-1);
    if (last === undefined) {
      this.tips.set(id, null);
      return undefined;
    }
    const d = decodeSegment(
      await this.io(workspace, stream, 'read', this.store.read(workspace, stream, last)),
    );
    if (!d.header || d.problems.length > 0) {
      // The stream is trimmed only once its segment reads back whole: a segment the mark is
      // behind still has its entries in Redis, and is written again once the file is out of the way.
      const index = parseSegmentName(last)?.index ?? 0;
      const mark = await this.mark(workspace, stream);
      const what = `the last segment ${last} of ${id} in ${this.store.where} is damaged (${d.problems[0]?.message})`;
      throw new ArchiveMismatchError(
        mark && mark.index >= index
          ? `${what}, and Redis was trimmed for it: restore it from a copy; nothing more is archived for it until then`
          : `${what}, and its entries are still in Redis (the stream was never trimmed for it): move the file aside (rename it to ${last}.damaged, say) and the archiver writes the segment again from Redis; nothing more is archived for it until then`,
      );
    }
    const tip = { ...d.header, lastLine: entryLine(d.entries.at(-1)!) };
    this.tips.set(id, tip);
    return tip;
  }

  /** Whether the stream holds at `position` the entry whose line is `line` (that entry, not another one there). */
  private async holds(key: string, position: string, line: string | undefined): Promise<boolean> {
    const [held] = (await this.redis.xrange(key, position, position)) as StreamEntry[];
    return held !== undefined && (line === undefined || entryLine(held) === line);
  }

  /** The line of the first entry of a segment (undefined when it holds none: judged by position; a read that fails throws). */
  private async firstLine(workspace: string, stream: LogStream, name: string): Promise<string | undefined> {
    const d = decodeSegment(
      await this.io(workspace, stream, 'read', this.store.read(workspace, stream, name)),
    );
    const first = d.entries[0];
    return first === undefined ? undefined : entryLine(first);
  }

  private async pause(point: ArchivePausePoint, workspace: string, stream: LogStream): Promise<void> {
    if (this.opts.pauseAt !== point) return;
    this.log.warn({ workspace, stream, point }, 'archiver paused (test hook)');
    await new Promise<never>(() => {});
  }

  private sleep(workspace: string): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.opts.everyMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakers.set(workspace, done);
    }).finally(() => this.wakers.delete(workspace));
  }
}

const TRIM_MARK = luaScript('trim_mark', new URL('./lua/trim-mark-2.lua', import.meta.url));

/**
 * Trims `stream` up to the segment `tip` and marks it, unless the mark is already at or past it
 * (then nothing changes): the mark only moves forward, whoever calls. Returns whether it did;
 * throws ArchiveMismatchError when the stream no longer holds the segment's last entry (Redis lost
 * it), or, given `lastFields` (that entry's fields and values as the segment holds them), holds
 * another entry at its position.
 */
export async function trimAndMark(
  redis: RedisClient,
  workspace: string,
  stream: LogStream,
  tip: Pick<SegmentHeader, 'index' | 'last' | 'hash' | 'total'>,
  lastFields: readonly string[] = [],
): Promise<boolean> {
  const k = workspaceKeys(workspace);
  const anchor: Anchor = { index: tip.index, last: tip.last, hash: tip.hash, total: tip.total };
  const done = await runLua(
    redis,
    TRIM_MARK,
    [k[stream], k.archive],
    // '' after the largest position: no entry can follow it, so the whole stream is archived.
    [stream, successor(tip.last) ?? '', JSON.stringify(anchor), tip.index, tip.last, ...lastFields],
  );
  if (Number(done) === -1)
    throw new ArchiveMismatchError(
      `the ${stream} stream of ${workspace} no longer holds ${tip.last}, the last entry of segment ${tip.index}, which was read from it (or holds another entry there): Redis lost entries since (restarted from an older copy, or a failover lost writes not yet replicated; docs/DEPLOYMENT.md, Durability). Neither trimmed nor marked; the archiver's next look at the stream names the segments to set aside`,
    );
  return Number(done) === 1;
}
