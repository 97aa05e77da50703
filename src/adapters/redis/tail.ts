import type { Logger } from 'pino';
import { comparePositions, positionPredecessor } from '../../domain/values.ts';
import { FOREIGN_EVENT, ifItGoesOn } from './advice.ts';
import { blockingConnection } from './client.ts';
import type { CommandOutcome } from './command-log.ts';
import { type EventHistory, LiveEvent, parseFields, type StreamEntry } from './event-log.ts';
import { workspaceKeys } from './keys.ts';
import { redisClockIfRead } from './redis-clock.ts';
import type { RedisClient } from './scripts.ts';

/**
 * What this process's tails read from the archive of what was trimmed past them: events handed
 * on, and fills the archive could not give (each closed the feeds before them).
 */
export interface FillCounts {
  events: number;
  failures: number;
}

/** A live subscriber: every subscriber of a tail is handed the same `LiveEvent` for an event. */
export type EventListener = (event: LiveEvent) => void;

/**
 * A live subscriber handed the events the tail reads, in batches (in order, never empty, each
 * event once): subscribers handed the same events get the same array, so what is made from a
 * batch can be made once and shared.
 */
export type BatchListener = (batch: readonly LiveEvent[]) => void;

interface BatchSubscriber {
  readonly listener: BatchListener;
  /** Number of the last batch read that this subscriber was handed (or that came before it joined). */
  seen: number;
}

/**
 * How long one slice of a hand-out runs before the event loop is let go (commands, the dispatcher,
 * the tail's next read): a batch that arrives meanwhile is handed, joined to the one still going
 * out, to every subscriber not yet reached, so a subscriber gets one write where it would have
 * had two.
 */
const SLICE_MS = 4;
/** The longest a read of the tail waits for new entries (XREAD BLOCK). */
const BLOCK_MS = 5000;
/**
 * A tail whose last read answered longer ago than this is taken for not reading: a read answers
 * within BLOCK_MS while Redis does, and the connection of blocking reads is itself taken for dead
 * after twice as long (a silent path).
 */
const NOT_READING_AFTER_MS = 2 * BLOCK_MS;

/**
 * The last position a stream has given (XINFO's `last-generated-id`), '0-0' for none: entries
 * trimmed or deleted since (the archiver's trims) leave it where it was, so only a Redis that lost
 * entries shows it before a position read.
 */
async function lastGenerated(redis: RedisClient, key: string): Promise<string> {
  try {
    const info = (await redis.xinfo('STREAM', key)) as unknown[];
    const at = info.indexOf('last-generated-id');
    return at >= 0 ? String(info[at + 1]) : '0-0';
  } catch (err) {
    if (/no such key/i.test((err as Error).message)) return '0-0';
    throw err;
  }
}

/**
 * The last position the archiver trimmed a stream up to (its mark in `sb:{ws}:archive`, written
 * with the trim in one step), or undefined before its first trim.
 */
function trimmedThrough(mark: string | null): string | undefined {
  if (!mark) return undefined;
  try {
    const last = (JSON.parse(mark) as { last?: unknown }).last;
    return typeof last === 'string' ? last : undefined;
  } catch {
    return undefined;
  }
}

/** Most entries of each stream one read of the tail takes. */
const TAIL_READ = 1000;
/**
 * Events read from the archive per page when the tail reads what was trimmed past it: each page
 * is handed out as a batch, as large as a read's.
 */
const FILL_PAGE = TAIL_READ;

/** The longest a read of the outcomes alone waits while a fill runs: the events are read this soon after it. */
const FILLING_BLOCK_MS = 100;
/** The pause after a fill failed on its way (not the archive's refusal: a listener that threw). */
const FILL_RETRY_MS = 1000;

/**
 * What a resume after a loss knew (realign): `read`, the last position the tail had read (lost),
 * and `end`, the stream's last position then. A position past `end`, or `read` itself, is one the
 * stream no longer holds; one at or before `end` (an event appended since the loss, which a replay
 * may have read) still is.
 */
export interface ResumeFrom {
  readonly read: string;
  readonly end: string;
}

/** How many of the last positions delivered a tail keeps of each stream, to resume after a loss. */
const DELIVERED_KEPT = 512;
/**
 * How far ahead of Redis's clock (as this process carries it, off by up to half a round trip) a
 * position read must be for the tail to look whether the streams end before it.
 */
const AHEAD_SLACK_MS = 250;
/** Most entries a resume after a loss looks through, from the last position read down. */
const RESUME_SCAN = 5000;

/**
 * A stream entry's fingerprint (FNV-1a over its fields): a Redis back with its clock behind the
 * lost one's can give a new entry the very position of a lost one, with other content.
 */
export function entryFingerprint(fields: readonly string[]): number {
  let h = 0x811c9dc5;
  for (const f of fields) {
    for (let i = 0; i < f.length; i++) h = Math.imul(h ^ f.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ 0xff, 0x01000193);
  }
  return h >>> 0;
}

/** The last entries delivered of one stream, oldest first (at most DELIVERED_KEPT): position, fingerprint. */
class Delivered {
  private entries: [string, number][] = [];
  add(entries: readonly StreamEntry[]): void {
    for (const [id, fields] of entries) this.entries.push([id, entryFingerprint(fields)]);
    if (this.entries.length > 2 * DELIVERED_KEPT) this.entries = this.entries.slice(-DELIVERED_KEPT);
  }
  /** Those kept, by position, and the oldest position of them. */
  view(): { readonly ids: ReadonlyMap<string, number>; readonly oldest: string | undefined } {
    const kept = this.entries.slice(-DELIVERED_KEPT);
    return { ids: new Map(kept), oldest: kept[0]?.[0] };
  }
}

interface Waiter<T> {
  resolve(v: T | null): void;
  timer: NodeJS.Timeout;
}

/**
 * One API instance's reader of a workspace's event and outcome streams (XREAD BLOCK, never
 * pub/sub): it feeds WebSocket subscribers and wakes requests waiting for their command's
 * outcome or for the projections to reach a position. Every instance runs its own, so any
 * instance serves any subscriber.
 */
export class WorkspaceTail {
  private readonly conn: RedisClient;
  private readonly listeners = new Set<EventListener>();
  private readonly batchListeners = new Set<BatchSubscriber>();
  /** Batches read so far (the number of the last one). */
  private batchNo = 0;
  /** The batches some subscriber has not been handed yet: numbers `batchNo - recent.length + 1` on. */
  private readonly recent: LiveEvent[][] = [];
  /** The events after a batch number, up to `to`, joined once and handed to every subscriber at it. */
  private readonly joined = new Map<number, { to: number; events: LiveEvent[] }>();
  /** The hand-out in progress: where it is among the subscribers and the batch number it started at. */
  private handOut:
    | { readonly at: Iterator<BatchSubscriber>; readonly from: number; readonly started: number }
    | undefined;
  /** After a long pass, the next waits (this timer) as long as it took, at most SLICE_MS. */
  private pause: NodeJS.Timeout | undefined;
  /** Requests waiting for a command's outcome, by command id: a repeat of an Idempotency-Key
   * waits for the same command as the first request, so one id may have several waiters. */
  private readonly outcomeWaiters = new Map<string, Set<Waiter<CommandOutcome>>>();
  private readonly positionWaiters = new Set<{ position: string } & Waiter<string>>();
  private lastEvent = '0-0';
  /** A fill of trimmed events in progress (fillThenDeliver): the loop reads the outcomes alone meanwhile. */
  private filling: Promise<void> | undefined;
  /** When the fill in progress began or last read a page. */
  private filledAt = 0;
  /** The tail resumed at the start of what the stream holds (realign): its next read fills nothing. */
  private resumedAtStart = false;
  private lastOutcome = '0-0';
  private readonly deliveredEvents = new Delivered();
  private readonly resumeListeners = new Set<(position: string, lost: ResumeFrom) => void>();
  private readonly fillFailedListeners = new Set<(err: Error, before: string) => void>();
  private readonly deliveredOutcomes = new Delivered();
  private stopped = false;
  /** When a read of the streams last answered, and whether the last one failed. */
  private answeredAt = Date.now();
  private failing = false;
  /** Whether its first reads have answered (`ready` settled): a tail still starting is in use. */
  private started = false;
  readonly ready: Promise<void>;

  constructor(
    private readonly redis: RedisClient,
    readonly workspace: string,
    private readonly log: Logger,
    /**
     * The event history with its archived part (the API's): what the archiver trimmed past this
     * tail's position before it read it (an instance stalled while events were appended and moved
     * out of Redis) is read from it, so no live feed misses those events. Without it they are not.
     */
    private readonly history?: EventHistory,
    /** Where the fills are counted (the hub's, for the process's metrics). */
    private readonly fills: FillCounts = { events: 0, failures: 0 },
  ) {
    this.conn = blockingConnection(redis);
    // A connection made again may be to a Redis that came back with less (see realign): looked
    // at at once.
    let connections = 0;
    this.conn.on('ready', () => {
      if (++connections > 1 && this.started && !this.stopped) void this.realignQuietly();
    });
    this.ready = this.start();
  }

  /** Position of the last event this tail has delivered: live delivery starts after it. */
  get eventPosition(): string {
    return this.lastEvent;
  }

  /**
   * Whether this tail reads the log: its last read answered, within the longest a read waits and
   * as much again. False while Redis does not answer this instance (refused, or a silent path).
   */
  get reading(): boolean {
    const now = Date.now();
    return (
      !this.failing &&
      now - this.answeredAt < NOT_READING_AFTER_MS &&
      // A fill holds the events: one that has read no page for as long reads nothing either (an
      // archive read that hangs), though the outcomes go on being read.
      (this.filling === undefined || now - this.filledAt < NOT_READING_AFTER_MS)
    );
  }

  private async start(): Promise<void> {
    const k = workspaceKeys(this.workspace);
    const [e, o] = await Promise.all([
      this.redis.xrevrange(k.events, '+', '-', 'COUNT', 1),
      this.redis.xrevrange(k.outcomes, '+', '-', 'COUNT', 1),
    ]);
    this.lastEvent = e[0]?.[0] ?? '0-0';
    this.lastOutcome = o[0]?.[0] ?? '0-0';
    // Where it starts counts as delivered: after a loss, it reads on after it if Redis still holds it.
    this.deliveredEvents.add(e);
    this.deliveredOutcomes.add(o);
    this.started = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    const k = workspaceKeys(this.workspace);
    let backoff = 100;
    while (!this.stopped) {
      // While a fill reads the archive, the outcomes alone are read (the events wait for it), in
      // short waits, so that the events are read again soon after it ends.
      const filling = this.filling !== undefined;
      try {
        const read = (
          filling
            ? this.conn.xread(
                'COUNT',
                TAIL_READ,
                'BLOCK',
                FILLING_BLOCK_MS,
                'STREAMS',
                k.outcomes,
                this.lastOutcome,
              )
            : this.conn.xread(
                'COUNT',
                TAIL_READ,
                'BLOCK',
                BLOCK_MS,
                'STREAMS',
                k.events,
                k.outcomes,
                this.lastEvent,
                this.lastOutcome,
              )
        ) as Promise<[string, StreamEntry[]][] | null>;
        // The archiver's mark as the read answered: sent on the same connection right behind the
        // read, Redis runs it as soon as the read answers (no round trip of its own). The trim
        // and the mark are one step, so a mark not past this tail's position says nothing after
        // it had been trimmed when the read answered; a mark past it says the read may start after
        // a hole (fillTrimmed reads what lies between from the archive).
        const mark =
          this.history && !filling
            ? this.conn.hget(k.archive, 'events').catch(() => null)
            : Promise.resolve(null);
        const reply = await read;
        backoff = 100;
        const trimmed = trimmedThrough(await mark);
        this.answeredAt = Date.now();
        this.failing = false;
        const fill = !filling && !this.resumedAtStart;
        if (!filling) this.resumedAtStart = false;
        for (const [key, entries] of reply ?? []) {
          if (key === k.events) {
            // Read for subscribers only: one that joins later replays (after=) or starts after the
            // stream's end, and a command waits for outcomes alone.
            if (
              fill &&
              this.subscribers > 0 &&
              entries.length > 0 &&
              trimmed !== undefined &&
              comparePositions(trimmed, this.lastEvent) > 0
            ) {
              // The fill runs beside the loop, these entries handed out after it: the outcomes
              // read in this turn and the next ones reach their waiters meanwhile.
              this.filling = this.fillThenDeliver(entries);
              continue;
            }
            this.deliveredEvents.add(entries);
            this.deliverEvents(entries);
          } else {
            this.deliveredOutcomes.add(entries);
            this.deliverOutcomes(entries);
          }
        }
        // The positions read may be past the streams' end (Redis came back with less): looked at
        // after a whole wait with nothing, and whenever a position read is ahead of Redis's clock
        // (a Redis that lost what it gave, its clock behind the lost one's, leaves it so; so does a
        // Redis whose own clock stepped back, where the look finds nothing to do).
        // Not while a fill runs, nor in the turn that started one: the fill moves the position,
        // and the look (it may read the archive too) would hold the outcomes again.
        if (this.filling === undefined && (reply === null || this.aheadOfRedis()))
          await this.realignQuietly();
      } catch (err) {
        if (this.stopped) return;
        this.failing = true;
        this.log.warn(
          { workspace: this.workspace, err: (err as Error).message },
          `event tail failed; retrying in ${backoff} ms. Its live feeds get no heartbeat until it reads again, so their clients reconnect (through a load balancer, to an instance that reads). ${ifItGoesOn(err)}`,
        );
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  /**
   * fillTrimmed before `entries` (a read's events), then `entries`; `filling` until it is done. A
   * failure is the loop's (logged; the events read again after a pause), not a rejection nobody
   * awaits.
   */
  private async fillThenDeliver(entries: StreamEntry[]): Promise<void> {
    this.filledAt = Date.now();
    try {
      await this.fillTrimmed(entries[0]![0]);
      if (this.stopped) return;
      this.deliveredEvents.add(entries);
      this.deliverEvents(entries);
    } catch (err) {
      if (this.stopped) return;
      this.log.warn(
        { workspace: this.workspace, err: (err as Error).message },
        `event tail failed while handing out events it read from the archive; reading them again in ${FILL_RETRY_MS} ms. ${ifItGoesOn(err)}`,
      );
      await new Promise((r) => setTimeout(r, FILL_RETRY_MS));
    } finally {
      this.filling = undefined;
    }
  }

  /**
   * Hands on the events after this tail's position and before `first` (the first one a read gave)
   * that the archiver trimmed before the tail read them, from the archive: the stream holds none
   * of them any more, and a read after the position gives the events after the trim only (called
   * when the mark read right before the read is past the position). They go out a page at a time,
   * each page a batch, as a read's events do (a gap of minutes is never held whole, a subscriber
   * too slow for it is closed as for any batch), the next page read once the last is handed out.
   * A history that cannot give them (a hole in the archive, a read that fails) is logged with what
   * to do and told to `onFillFailed`'s listeners (the live feeds close, their clients told where to
   * resume); the tail goes on after them.
   */
  private async fillTrimmed(first: string): Promise<void> {
    if (!this.history) return;
    const from = this.lastEvent;
    // Its own cursor: a realign beside it (a reconnection) moves the tail's position, not the fill's.
    let after = from;
    let filled = 0;
    try {
      for (;;) {
        const page = await this.history(this.workspace, after, FILL_PAGE);
        this.filledAt = Date.now();
        const before = page.filter(([id]) => comparePositions(id, first) < 0);
        if (before.length > 0) {
          this.deliveredEvents.add(before);
          this.deliverEvents(before);
          filled += before.length;
          this.fills.events += before.length;
          after = before.at(-1)![0];
        }
        if (before.length < page.length || page.length < FILL_PAGE || this.stopped || this.subscribers === 0)
          break;
        await this.handedOut();
      }
    } catch (err) {
      this.log.error(
        { workspace: this.workspace, err: (err as Error).message, after, before: first },
        "the archiver trimmed events past this instance's event tail before it read them, and the archive does not give them (see err: a segment missing or damaged, its folder unreadable, or Redis not answering the read): its live feeds before them are closed (1011), their clients told to reconnect after the last event they got; a reconnection reads them as GET /events does, refused (archive-unreadable) until the archive is mended (docs/ARCHIVE.md)",
      );
      this.fills.failures++;
      for (const l of this.fillFailedListeners) l(err as Error, first);
    }
    if (filled > 0)
      this.log.info(
        { workspace: this.workspace, after: from, events: filled },
        "read events the archiver trimmed before this instance's event tail read them from the archive",
      );
  }

  /** Resolves once every batch subscriber has been handed every batch read so far (at once if none waits). */
  private async handedOut(): Promise<void> {
    while (!this.stopped && (this.handOut !== undefined || this.pause !== undefined))
      await new Promise((r) => setImmediate(r));
  }

  /**
   * Moves the positions read back when the streams end before them: Redis came back with less
   * than this tail read (restarted from an older snapshot, or a failover lost writes not yet
   * replicated); it reads on after the newest entry it delivered that Redis still holds
   * (resumePoint). Left past the end, the tail would read only entries after the lost ones:
   * every event appended since with an earlier position (a Redis whose clock is behind the lost
   * one's) would reach no live feed, and no command waiting for its outcome would get it.
   */
  private async realign(): Promise<void> {
    const k = workspaceKeys(this.workspace);
    // A read that answered meanwhile (this runs beside the loop on a reconnection) moved on from
    // the stream as it is now: left as it is, nothing is read twice.
    const [readEvent, readOutcome] = [this.lastEvent, this.lastOutcome];
    const [eventEnd, outcomeEnd, mark] = await Promise.all([
      lastGenerated(this.redis, k.events),
      lastGenerated(this.redis, k.outcomes),
      this.redis.hget(k.archive, 'events'),
    ]);
    // A position the archiver's mark covers was trimmed, not lost (the stream went on past it):
    // the next read fills what lies between from the archive.
    const trimmed = trimmedThrough(mark);
    const archived =
      trimmed !== undefined &&
      comparePositions(trimmed, readEvent) >= 0 &&
      comparePositions(eventEnd, readEvent) >= 0 &&
      (await this.archiveHolds(readEvent));
    if (
      !archived &&
      (comparePositions(eventEnd, readEvent) < 0 ||
        !(await this.stillHolds(k.events, readEvent, this.deliveredEvents)))
    ) {
      // What the archiver moved out is looked through as well when its mark covers what this
      // tail remembers delivering (the stream alone holds none of it).
      const oldest = this.deliveredEvents.view().oldest;
      const held =
        trimmed !== undefined && oldest !== undefined && comparePositions(trimmed, oldest) >= 0
          ? await this.heldInHistory(readEvent)
          : undefined;
      // The log holds the very event it read (the archiver trimmed it between this look's reads):
      // nothing was lost.
      if (held === readEvent) return this.realignOutcomes(readOutcome, outcomeEnd);
      const from =
        held !== undefined
          ? { position: held, gap: false }
          : await this.resumePoint(k.events, readEvent, this.deliveredEvents, eventEnd);
      if (this.lastEvent === readEvent) {
        this.log.warn(
          { workspace: this.workspace, read: readEvent, end: eventEnd, resumeAfter: from.position },
          `the event stream no longer holds the last event this instance read: Redis lost entries (restarted from an older snapshot, or a failover lost writes not yet replicated; docs/DEPLOYMENT.md, Durability). Live feeds go on after the last event they had that Redis still holds (resumeAfter)${from.gap ? ', which is further back than this instance remembers: events appended since the loss and before resumeAfter reach no live feed (their clients can read them with GET /events)' : ', with every event appended since'}; their clients may have received events that are no longer in the log, and one resuming after such a position is refused (409 position-ahead, with lastPosition) until the log passes it. Commands acknowledged since the snapshot are lost: retry them with their Idempotency-Key.`,
        );
        this.lastEvent = from.position;
        // From the start of what the stream holds: what the archive holds before it was delivered
        // long ago, not trimmed past this tail.
        this.resumedAtStart = from.position === '0-0';
        for (const l of this.resumeListeners) l(from.position, { read: readEvent, end: eventEnd });
      }
    }
    await this.realignOutcomes(readOutcome, outcomeEnd);
  }

  /** realign's look at the outcome stream (from its position read, `readOutcome`). */
  private async realignOutcomes(readOutcome: string, outcomeEnd: string): Promise<void> {
    const k = workspaceKeys(this.workspace);
    if (
      comparePositions(outcomeEnd, readOutcome) < 0 ||
      !(await this.stillHolds(k.outcomes, readOutcome, this.deliveredOutcomes))
    ) {
      const from = await this.resumePoint(k.outcomes, readOutcome, this.deliveredOutcomes, outcomeEnd);
      if (this.lastOutcome === readOutcome) this.lastOutcome = from.position;
    }
  }

  /**
   * Whether the stream still holds the entry at `read` as it was delivered: a Redis back with
   * less may end at that very position with an entry of its own there (its clock behind the lost
   * one's). A position this tail does not remember delivering is taken as held.
   */
  private async stillHolds(key: string, read: string, delivered: Delivered): Promise<boolean> {
    const known = delivered.view().ids.get(read);
    if (known === undefined) return true;
    const [entry] = await this.redis.xrange(key, read, read);
    return entry !== undefined && entryFingerprint(entry[1]) === known;
  }

  /**
   * Whether the archive holds the event at `read` as this tail delivered it: a Redis that lost
   * entries and made new ones at their positions (its clock behind the lost ones') may have had
   * those archived since. Without a history, or for a position this tail does not remember
   * delivering, the mark alone says it; an archive that cannot be read is left to the fill, which
   * closes the feeds it cannot serve.
   */
  private async archiveHolds(read: string): Promise<boolean> {
    const known = this.deliveredEvents.view().ids.get(read);
    if (!this.history || known === undefined) return true;
    try {
      const [entry] = await this.history(this.workspace, positionPredecessor(read), 1);
      return entry !== undefined && entry[0] === read && entryFingerprint(entry[1]) === known;
    } catch {
      return true;
    }
  }

  /**
   * The newest event up to `read` that the log (archive and stream: the history) holds as this
   * tail delivered it, looking from the oldest it remembers delivering, up to the first it holds
   * otherwise (what Redis kept is a prefix of what it had); undefined when none is, or when the
   * archive cannot give the history whole (the stream's look decides then).
   */
  private async heldInHistory(read: string): Promise<string | undefined> {
    const { ids, oldest } = this.deliveredEvents.view();
    if (!this.history || oldest === undefined) return undefined;
    let found: string | undefined;
    try {
      let after = positionPredecessor(oldest);
      for (let scanned = 0; scanned < RESUME_SCAN; ) {
        const page = await this.history(this.workspace, after, 500);
        for (const [id, fields] of page) {
          if (comparePositions(id, read) > 0) return found;
          const known = ids.get(id);
          if (known === undefined) continue;
          if (known !== entryFingerprint(fields)) return found;
          found = id;
        }
        if (page.length < 500) return found;
        scanned += page.length;
        after = page.at(-1)![0];
      }
    } catch (err) {
      // A history the archive cannot give whole (a break: the archiver stopped at a loss, and the
      // stream holds what came since): the stream's look decides. Any other failure (a read that
      // failed) fails this look, and the next one tries again, the position left as it is.
      if ((err as { hole?: unknown }).hole !== undefined) return undefined;
      throw err;
    }
    return found;
  }

  /** realign, its failure only noted: the reads themselves answered, and the next look tries again. */
  private async realignQuietly(): Promise<void> {
    try {
      await this.realign();
    } catch (err) {
      this.log.debug(
        { workspace: this.workspace, err: (err as Error).message },
        'could not compare the event tail with the streams’ ends',
      );
    }
  }

  /** Whether a position read is ahead of Redis's clock (by the node of the workspace's keys). */
  private aheadOfRedis(): boolean {
    const ms = (position: string) => Number(position.slice(0, position.indexOf('-')));
    const latest = Math.max(ms(this.lastEvent), ms(this.lastOutcome));
    // Never waited for: the tail's reads do not wait on the shared connection.
    const now = redisClockIfRead(this.redis, workspaceKeys(this.workspace).events);
    return now !== undefined && latest > now + AHEAD_SLACK_MS;
  }

  /**
   * Where to read on from in a stream that ends before `read`: after the newest entry it holds that
   * this tail delivered (what Redis kept), so the entries appended since the loss, all before
   * `read`, are read too. Looks through at most RESUME_SCAN entries down from `read`; when it
   * meets none this tail remembers delivering before it passes the oldest it remembers (more was
   * lost than it keeps), it reads on from `end` (`gap`: what was appended between is not read).
   */
  private async resumePoint(
    key: string,
    read: string,
    delivered: Delivered,
    end: string,
  ): Promise<{ position: string; gap: boolean }> {
    const { ids, oldest } = delivered.view();
    // From `read` itself: a new entry may have been given that very position.
    let upper = read;
    for (let scanned = 0; scanned < RESUME_SCAN; ) {
      const page = await this.redis.xrevrange(key, upper, '-', 'COUNT', 500);
      for (const [id, fields] of page) {
        // The same position with the same content: delivered, and still held.
        if (ids.get(id) === entryFingerprint(fields)) return { position: id, gap: false };
        if (oldest === undefined || comparePositions(id, oldest) < 0) return { position: end, gap: true };
      }
      if (page.length < 500) return { position: '0-0', gap: false };
      scanned += page.length;
      upper = `(${page[page.length - 1]![0]}`;
    }
    return { position: end, gap: true };
  }

  /**
   * An entry of the event stream that is no event (Switchboard appends none; a hand-written XADD
   * can): logged once with its position, by the first subscriber's selection to decode it, and
   * sent to nobody. The rest of its batch goes out as ever, and positions move past it.
   */
  private readonly malformed = (position: string, why: Error): void => {
    this.log.warn(
      { workspace: this.workspace, position, err: why.message },
      `event stream entry is not an event; skipped on the live feed. ${FOREIGN_EVENT}`,
    );
  };

  private deliverEvents(entries: StreamEntry[]): void {
    const lastEntry = entries[entries.length - 1];
    if (!lastEntry) return;
    this.lastEvent = lastEntry[0];
    if (this.listeners.size === 0 && this.batchListeners.size === 0) return;
    const batch = entries.map((entry) => new LiveEvent(entry, this.malformed));
    for (const event of batch) for (const l of this.listeners) l(event);
    if (this.batchListeners.size === 0) return;
    this.recent.push(batch);
    this.batchNo++;
    // A hand-out in progress takes this batch along to the subscribers it has not reached yet.
    if (this.handOut === undefined && this.pause === undefined) this.handBatches();
  }

  /**
   * Hands every batch subscriber the batches it has not been handed, joined, in slices of
   * `SLICE_MS`: the first at once, the rest after letting the event loop go. Passes repeat until
   * every subscriber is up to date (a batch arriving mid-pass reaches the subscribers passed
   * before it on the next pass). After a pass of 1 ms or more (many subscribers), the next waits
   * as long as it took, at most `SLICE_MS`: what is read meanwhile goes out joined, one socket
   * write per subscriber where there would have been several. A quick pass (few subscribers) is
   * followed at once.
   */
  private handBatches(): void {
    const until = performance.now() + SLICE_MS;
    let n = 0;
    while (!this.stopped) {
      this.handOut ??= { at: this.batchListeners.values(), from: this.batchNo, started: performance.now() };
      const next = this.handOut.at.next();
      if (next.done) {
        // Every subscriber has been handed at least the batches up to the pass's start.
        this.forget(this.handOut.from);
        const took = performance.now() - this.handOut.started;
        this.handOut = undefined;
        if (took >= 1) {
          this.pause = setTimeout(
            () => {
              this.pause = undefined;
              if (this.recent.length > 0 && this.handOut === undefined) this.handBatches();
            },
            // Whole ms: Node keeps a list of timers per distinct duration, and a fractional one
            // made (and dropped) a list at each pause, its timer code deoptimized (not a Smi).
            Math.min(Math.round(took), SLICE_MS),
          );
          return;
        }
        if (this.recent.length === 0) return;
        continue;
      }
      const sub = next.value;
      if (sub.seen < this.batchNo) {
        const events = this.eventsAfter(sub.seen);
        sub.seen = this.batchNo;
        try {
          sub.listener(events);
        } catch (err) {
          this.log.error(
            {
              workspace: this.workspace,
              err,
              from: events[0]?.position,
              to: events[events.length - 1]?.position,
            },
            'live subscriber failed on a batch; its client missed these events (from..to) and is sent the later ones: a defect, report it with err. The client gets them by reconnecting with after=<the last position it received>.',
          );
        }
      }
      if ((++n & 31) === 0 && performance.now() >= until) {
        setImmediate(() => this.handBatches());
        return;
      }
    }
    this.handOut = undefined;
  }

  /** The events of the batches after number `seen`, joined once for every subscriber at `seen`. */
  private eventsAfter(seen: number): LiveEvent[] {
    const first = seen - (this.batchNo - this.recent.length); // index in `recent` of batch seen + 1
    if (first === this.recent.length - 1) return this.recent[first]!;
    const cached = this.joined.get(seen);
    if (cached?.to === this.batchNo) return cached.events;
    const events = this.recent.slice(first).flat();
    this.joined.set(seen, { to: this.batchNo, events });
    return events;
  }

  /** Drops the batches up to number `upTo`: every subscriber has been handed them. */
  private forget(upTo: number): void {
    const drop = upTo - (this.batchNo - this.recent.length);
    if (drop > 0) this.recent.splice(0, drop);
    for (const seen of this.joined.keys()) if (seen < upTo) this.joined.delete(seen);
  }

  private deliverOutcomes(entries: StreamEntry[]): void {
    for (const [id, fields] of entries) {
      this.lastOutcome = id;
      const f = parseFields(fields);
      const waiters = f.commandId ? this.outcomeWaiters.get(f.commandId) : undefined;
      if (waiters && f.outcome) {
        this.outcomeWaiters.delete(f.commandId!);
        const outcome = JSON.parse(f.outcome) as CommandOutcome;
        for (const w of waiters) {
          clearTimeout(w.timer);
          w.resolve(outcome);
        }
      }
      if (f.position) {
        for (const pw of this.positionWaiters) {
          if (comparePositions(f.position, pw.position) >= 0) {
            this.positionWaiters.delete(pw);
            clearTimeout(pw.timer);
            pw.resolve(f.position);
          }
        }
      }
    }
  }

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Told the position the tail reads on after when Redis came back with less (realign): a
   * subscriber done with positions past it (the lost ones) lowers its own to it, or it would pass
   * over the events appended since the loss, which lie below what it had.
   */
  onResume(listener: (position: string, lost: ResumeFrom) => void): () => void {
    this.resumeListeners.add(listener);
    return () => this.resumeListeners.delete(listener);
  }

  /**
   * Told when events the archiver trimmed past this tail cannot be read from the archive (see
   * fillTrimmed), with the first position after them (`before`): the tail goes on after them, so a
   * subscriber before `before` that is to miss nothing ends its feed.
   */
  onFillFailed(listener: (err: Error, before: string) => void): () => void {
    this.fillFailedListeners.add(listener);
    return () => this.fillFailedListeners.delete(listener);
  }

  /**
   * Hands `listener` every event read from now on, in batches: the events of one read, or of
   * several joined when a read arrives while the tail is still handing out the one before.
   */
  subscribeBatches(listener: BatchListener): () => void {
    const sub: BatchSubscriber = { listener, seen: this.batchNo };
    this.batchListeners.add(sub);
    return () => this.batchListeners.delete(sub);
  }

  get subscribers(): number {
    return this.listeners.size + this.batchListeners.size;
  }

  /** Nothing is listening or waiting on this tail. */
  get unused(): boolean {
    return (
      this.started &&
      this.subscribers === 0 &&
      this.outcomeWaiters.size === 0 &&
      this.positionWaiters.size === 0
    );
  }

  /**
   * Resolves with the command's outcome when it is applied, or null after `timeoutMs`. Any number
   * of requests may wait for the same command (a first request and its concurrent repeats): each
   * gets the outcome.
   */
  waitOutcome(
    commandId: string,
    timeoutMs: number,
  ): { promise: Promise<CommandOutcome | null>; cancel(): void } {
    let waiter!: Waiter<CommandOutcome>;
    const forget = () => {
      const waiters = this.outcomeWaiters.get(commandId);
      if (!waiters) return;
      waiters.delete(waiter);
      if (waiters.size === 0) this.outcomeWaiters.delete(commandId);
    };
    const promise = new Promise<CommandOutcome | null>((resolve) => {
      const timer = setTimeout(() => {
        forget();
        resolve(null);
      }, timeoutMs);
      waiter = { resolve, timer };
      let waiters = this.outcomeWaiters.get(commandId);
      if (!waiters) {
        waiters = new Set();
        this.outcomeWaiters.set(commandId, waiters);
      }
      waiters.add(waiter);
    });
    return {
      promise,
      cancel: () => {
        clearTimeout(waiter.timer);
        forget();
        waiter.resolve(null);
      },
    };
  }

  /**
   * Resolves true once an outcome at or past `position` is seen, false after `timeoutMs` or when
   * cancelled (the caller learned of the position another way: the wait ends with it).
   */
  waitPosition(position: string, timeoutMs: number): { promise: Promise<boolean>; cancel(): void } {
    let w!: { position: string } & Waiter<string>;
    const promise = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.positionWaiters.delete(w);
        resolve(false);
      }, timeoutMs);
      w = { position, timer, resolve: (v: string | null) => resolve(v !== null) };
      this.positionWaiters.add(w);
    });
    return {
      promise,
      cancel: () => {
        clearTimeout(w.timer);
        this.positionWaiters.delete(w);
        w.resolve(null);
      },
    };
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.pause);
    this.conn.disconnect();
    for (const waiters of this.outcomeWaiters.values()) {
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.resolve(null);
      }
    }
    this.outcomeWaiters.clear();
    for (const w of this.positionWaiters) {
      clearTimeout(w.timer);
      w.resolve(null);
    }
    this.positionWaiters.clear();
  }
}

/**
 * The tails of one API instance, started on first use of a workspace and stopped (closing their
 * connection) once nothing has used them for `idleAfterMs`.
 */
export class TailHub {
  private readonly tails = new Map<string, WorkspaceTail>();
  private readonly lastUsed = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;

  /** What every tail of this hub read from the archive (FillCounts), since the process started. */
  readonly fills: FillCounts = { events: 0, failures: 0 };

  constructor(
    private readonly redis: RedisClient,
    private readonly log: Logger,
    private readonly idleAfterMs = 5 * 60_000,
    /** The event history with its archived part, for the tails (see WorkspaceTail). */
    private readonly history?: EventHistory,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(30_000, idleAfterMs));
    this.sweeper.unref();
  }

  /** Stops tails nobody has used for a while. */
  sweep(now = Date.now()): void {
    for (const [ws, t] of this.tails) {
      if (t.unused && now - (this.lastUsed.get(ws) ?? 0) >= this.idleAfterMs) {
        t.stop();
        this.tails.delete(ws);
        this.lastUsed.delete(ws);
        this.log.debug({ workspace: ws }, 'event tail stopped: unused');
      }
    }
  }

  async get(workspace: string): Promise<WorkspaceTail> {
    this.lastUsed.set(workspace, Date.now());
    let t = this.tails.get(workspace);
    if (!t) {
      t = new WorkspaceTail(this.redis, workspace, this.log, this.history, this.fills);
      this.tails.set(workspace, t);
      t.ready.catch(() => {
        if (this.tails.get(workspace) === t) this.tails.delete(workspace);
        t?.stop();
      });
    }
    await t.ready;
    // Its idle time counts from now: a start that took long (Redis slow to answer) is not idle time.
    this.lastUsed.set(workspace, Date.now());
    return t;
  }

  get running(): number {
    return this.tails.size;
  }

  get subscribers(): number {
    let n = 0;
    for (const t of this.tails.values()) n += t.subscribers;
    return n;
  }

  /** Each running tail's subscribers, by workspace (0 for a tail only commands wait on). */
  subscribersByWorkspace(): Map<string, number> {
    return new Map([...this.tails].map(([ws, t]) => [ws, t.subscribers]));
  }

  stop(): void {
    clearInterval(this.sweeper);
    for (const t of this.tails.values()) t.stop();
    this.tails.clear();
  }
}
