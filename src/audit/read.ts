import { listApiKeys } from '../adapters/redis/api-keys.ts';
import { READ_PAGE, readRange } from '../adapters/redis/event-log.ts';
import { eachEntry, scanHash } from '../adapters/redis/hash-scan.ts';
import { type WorkspaceKeys, workspaceKeys } from '../adapters/redis/keys.ts';
import { redisClockNow } from '../adapters/redis/redis-clock.ts';
import { readRoutingIndex } from '../adapters/redis/routing-index.ts';
import type { RedisClient } from '../adapters/redis/scripts.ts';
import { parseAnchor } from '../archive/chain.ts';
import { LogReader } from '../archive/log-reader.ts';
import type { LogStream } from '../archive/segment.ts';
import type { ArchiveStore } from '../archive/store.ts';
import { type AuditOptions, Auditor } from './auditor.ts';
import type { Entry } from './entries.ts';
import { checkIntervals } from './intervals-check.ts';
import { type AuditReport, buildReport } from './report.ts';
import { StateCheck } from './state-check.ts';
import { positionBefore, type Violation } from './violations.ts';

/**
 * The audit of a workspace in Redis (a single server or a Cluster: every key is in the
 * workspace's slot). Streams are read in pages (the next page is asked for while one is
 * replayed), so memory holds the replayed state, not the log.
 *
 * What is audited is a consistent cut: the projector checkpoint and the last event are read
 * together (MULTI), and since the projector moves documents, facts and checkpoint in one Lua
 * step, and the dispatcher documents and AssignmentMade in one, the documents at that cut are
 * what the commands up to the checkpoint and the events up to that last event made. Documents
 * are read after the replay and then the cut is read again: if the workspace moved meanwhile,
 * the replay is carried on to the new cut and the documents read again (3 tries; then they are
 * not compared, and the report says so). Commands appended after the checkpoint are pending.
 *
 * The command and event streams are read through src/archive's LogReader: the archived prefix
 * (segments) first, then the stream after it, each segment's chain checked (`archive`
 * violations); the entries the archiver trimmed are counted from its mark in Redis.
 */
export interface ReadOptions extends AuditOptions {
  /** Stream entries per read (default 5000). */
  readonly pageSize?: number;
  /**
   * Compare the documents, the routing index and the timers with the replay, and the live interval
   * projection's tallies with the log's (default true).
   */
  readonly compareState?: boolean;
  readonly onProgress?: (p: Progress) => void;
  /**
   * Where the archived prefix of the command and event streams is (src/archive): read before
   * the streams, its chain checked. Without it, a trimmed stream's archived prefix is missing.
   */
  readonly archive?: ArchiveStore;
}

export interface Progress {
  readonly phase: 'events' | 'state';
  readonly events: number;
  /** Length of the event stream when the audit started (the progress bar's total). */
  readonly totalEvents: number;
}

interface Cut {
  readonly checkpoint: string | null;
  readonly lastEvent: string | null;
  readonly lastOutcome: string | null;
  readonly commandCount: number;
  readonly eventCount: number;
}

async function cut(redis: RedisClient, k: WorkspaceKeys): Promise<Cut> {
  const r = await redis
    .multi()
    .hget(k.meta, 'applied')
    .xrevrange(k.events, '+', '-', 'COUNT', 1)
    .xrevrange(k.outcomes, '+', '-', 'COUNT', 1)
    .xlen(k.commands)
    .xlen(k.events)
    .hmget(k.archive, 'commands', 'events')
    .exec();
  if (!r) throw new Error('the read of the checkpoint and last event was aborted');
  for (const [err] of r) if (err) throw err;
  const last = (i: number) => (r[i]![1] as Entry[])[0]?.[0] ?? null;
  // Entries the archiver trimmed are counted by its mark, and the last event may be archived.
  const [commands, events] = (r[5]![1] as (string | null)[]).map(parseAnchor);
  return {
    checkpoint: (r[0]![1] as string | null) ?? null,
    lastEvent: last(1) ?? events?.last ?? null,
    lastOutcome: last(2),
    commandCount: Number(r[3]![1]) + (commands?.total ?? 0),
    eventCount: Number(r[4]![1]) + (events?.total ?? 0),
  };
}

/**
 * Entries deleted from the command or event stream by anything but the archiver, as Redis counts
 * them (XINFO STREAM, Redis 7; earlier versions say nothing, and nothing is reported). The
 * archiver's trim (src/archive/lua/trim-mark-2.lua) removes exactly the entries its mark counts, in
 * the step that moves the mark, so `entries-added` less `length` less the mark's total is the number
 * deleted otherwise (XDEL, XTRIM): a figure that stays the same while the stream grows and the
 * archiver trims on, so a follower reports each deletion once (`key`). XDEL also raises
 * `max-deleted-entry-id`, which no trim moves: the deletion is reported there, else at the stream's
 * first entry. A stream written anew since (DEL and XADD) has counted nothing. Read with the marks in
 * one step (the archiver may be trimming).
 */
async function deletions(
  redis: RedisClient,
  k: WorkspaceKeys,
): Promise<{ readonly key: string; readonly violation: Violation }[]> {
  const streams = [
    ['commands', k.commands],
    ['events', k.events],
  ] as const;
  const r = await redis
    .multi()
    .xinfo('STREAM', k.commands)
    .xinfo('STREAM', k.events)
    .hmget(k.archive, 'commands', 'events')
    .exec();
  if (!r) throw new Error('the read of the streams and the archive marks was aborted');
  const [markErr, marks] = r[2]!;
  if (markErr) throw markErr;
  const found: { key: string; violation: Violation }[] = [];
  streams.forEach(([stream], i) => {
    const [err, reply] = r[i]!;
    // No stream (nothing appended yet) has nothing deleted.
    if (err || !Array.isArray(reply)) return;
    const field = (name: string): unknown => {
      const at = reply.indexOf(name);
      return at >= 0 ? reply[at + 1] : undefined;
    };
    const mark = parseAnchor((marks as (string | null)[])[i]);
    const maxDeleted = field('max-deleted-entry-id');
    const xdel = typeof maxDeleted === 'string' && maxDeleted !== '0-0' ? maxDeleted : undefined;
    const added = Number(field('entries-added'));
    const length = Number(field('length'));
    const counted = Number.isSafeInteger(added) && Number.isSafeInteger(length);
    const others = counted ? added - length - (mark?.total ?? 0) : 0;
    // An XDEL past the mark is someone's even where the counts cannot say how many (no count).
    if (others <= 0 && !(xdel && positionBefore(mark?.last ?? '0-0', xdel))) return;
    const first = field('recorded-first-entry-id');
    const position =
      xdel ?? (typeof first === 'string' && first !== '0-0' ? first : String(field('last-generated-id')));
    const how = xdel ? `XDEL, the latest at ${xdel}` : 'XTRIM or XDEL';
    found.push({
      key: `${stream} ${others} ${xdel ?? ''}`,
      violation: {
        kind: 'missing',
        stream,
        position,
        message: `entries deleted from the ${stream} stream other than by the archiver${others > 0 ? `: ${others}` : ''} (${how})`,
      },
    });
  });
  return found;
}

/** A page that does not follow the one before it: the stream was trimmed past its cursor. */
type Page = Entry[] & { gap?: true };

/**
 * Pages of a stream after a cursor, up to a bound. The stream may be trimmed from its start while
 * it is read (the outcome stream keeps its last two minutes): each page is read from the cursor's
 * own entry, and a page that does not begin with it follows a gap (`gap`).
 */
class Pager {
  private cursor: string | null = null;
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    readonly size: number,
  ) {}

  /** A page of `size` entries, read in parts of at most READ_PAGE (a short page is the end). */
  async next(upTo: string): Promise<Page> {
    const cursor = this.cursor;
    let page: Page;
    if (cursor === null) page = (await readRange(this.redis, this.key, '-', upTo, this.size)) as Entry[];
    else {
      page = (await readRange(this.redis, this.key, cursor, upTo, this.size + 1)) as Entry[];
      if (page[0]?.[0] === cursor) page.shift();
      else if (page.length > 0) page.gap = true;
    }
    if (page.length > 0) this.cursor = page[page.length - 1]![0];
    return page;
  }
}

/** Reads pages of a stream in order (a Pager, or a LogReader: the archive, then the stream). */
interface Pages {
  next(upTo: string): Promise<Entry[]>;
  readonly size: number;
}

/** One page asked for ahead of its use, so Redis reads while the replay works. */
class Ahead {
  private inflight: Promise<Entry[]> | undefined;
  /** Whether the last page came back short: the stream is read up to the bound. */
  done = false;
  private inflightBound: string | null = null;

  constructor(
    private readonly pager: Pages,
    private bound: string | null,
  ) {
    this.done = bound === null;
  }

  /** A new bound (a later cut): reading resumes. */
  extend(bound: string | null): void {
    this.bound = bound;
    this.done = bound === null;
  }

  request(): void {
    if (!this.inflight && !this.done && this.bound !== null) {
      this.inflightBound = this.bound;
      this.inflight = this.pager.next(this.bound);
    }
  }

  async take(): Promise<Entry[]> {
    this.request();
    if (!this.inflight) return [];
    const page = await this.inflight;
    this.inflight = undefined;
    // A short page ends the stream only up to the bound it was asked with: a later cut may have
    // extended the bound while it was in flight.
    if (page.length < this.pager.size && this.inflightBound === this.bound) this.done = true;
    this.request();
    return page;
  }
}

/** A turn of the event loop: replies that came in are handed on, the reads waiting on them go on. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const fieldOf = (e: Entry, name: string) => e[1][e[1].indexOf(name) + 1];

/**
 * Replays the streams up to a cut (the auditor carries on from where an earlier call stopped).
 * The three streams are read together, each a page ahead: the outcome stream is in command order
 * (the projector appends one outcome per command it applies), so the outcomes of a page of
 * commands are read before that page is replayed.
 */
class Replayer {
  private readonly commands: Ahead;
  private readonly events: Ahead;
  private readonly outcomes: Ahead;
  /** The command position of the last outcome read. */
  private outcomesUpTo: string | undefined;

  constructor(
    redis: RedisClient,
    k: WorkspaceKeys,
    private readonly audit: Auditor,
    private readonly progress: (events: number) => void,
    size: number,
    archive: ArchiveStore | undefined,
  ) {
    const log = (stream: LogStream) =>
      new LogReader(redis, archive, k.workspace, stream, {
        pageSize: size,
        onBreak: (b) => audit.flag('archive', b.stream, b.position, b.message, b.through),
      });
    this.commands = new Ahead(log('commands'), null);
    this.events = new Ahead(log('events'), null);
    this.outcomes = new Ahead(new Pager(redis, k.outcomes, size), null);
  }

  async to(c: Cut): Promise<void> {
    const a = this.audit;
    a.checkpoint = c.checkpoint ?? undefined;
    this.events.extend(c.lastEvent);
    this.commands.extend(c.checkpoint);
    this.outcomes.extend(c.lastOutcome);
    a.commandsEnd(this.commands.done);
    for (const s of [this.events, this.commands, this.outcomes]) s.request();
    while (!this.events.done) {
      const page = await this.events.take();
      if (a.commandsAhead < page.length) await this.takeCommands();
      for (let i = 0; i < page.length; i++) {
        // A page is read in parts of READ_PAGE, each asked for when the one before it is in, and
        // replies are handed on only when the replay awaits: a turn of the event loop every
        // READ_PAGE events lets the pages ahead go on while this one is replayed, where Redis
        // otherwise waited for the replay, then the replay for Redis, part by part.
        if (i % READ_PAGE === READ_PAGE - 1) await nextTurn();
        const e = page[i]!;
        while (!a.processEvent(e)) await this.takeCommands();
      }
      this.progress(a.events);
    }
    while (!a.settle()) await this.takeCommands();
    // The outcomes after the last command's, up to the cut, belong to no command replayed (or
    // repeat one): read them too, wherever a page ended, for the end of the audit to report.
    while (!this.outcomes.done) await this.takeOutcomes();
  }

  private async takeCommands(): Promise<void> {
    const page = await this.commands.take();
    const last = page.at(-1)?.[0];
    // Each command's outcome must be there before it is replayed.
    while (
      !this.outcomes.done &&
      last !== undefined &&
      (this.outcomesUpTo === undefined || positionBefore(this.outcomesUpTo, last))
    )
      await this.takeOutcomes();
    this.audit.addCommands(page);
    this.audit.commandsEnd(this.commands.done);
  }

  private async takeOutcomes(): Promise<void> {
    const outcomes: Page = await this.outcomes.take();
    // Outcomes trimmed while the audit read (a live workspace): the commands before this page's
    // first outcome have theirs no more, as before the stream's first entry.
    if (outcomes.gap) this.audit.outcomesTrimmed();
    this.audit.addOutcomes(outcomes);
    const at = outcomes.at(-1);
    if (at) this.outcomesUpTo = fieldOf(at, 'position');
  }
}

/**
 * The documents, routing index, counters and timers, read together: every read is sent at once
 * (each key of the workspace is on one server, which serves them in the order sent), so the state
 * costs one round trip for a small workspace rather than one per read. They are checked in the
 * same order whatever order the replies come in: the agents, the contacts, the index, the counters,
 * the timers.
 */
async function readState(redis: RedisClient, k: WorkspaceKeys, a: Auditor): Promise<Violation[]> {
  const check = new StateCheck(a);
  // Contact pages that come before the agents are all checked wait for them.
  let agentsChecked = false;
  const contactsEarly: [string, string][] = [];
  const agents = scanHash(redis, k.agents, (id, text) => check.agent(id, text)).then(() => {
    agentsChecked = true;
    for (const [id, text] of contactsEarly.splice(0)) check.contact(id, text);
  });
  const contacts = scanHash(redis, k.contacts, (id, text) => {
    if (agentsChecked) check.contact(id, text);
    else contactsEarly.push([id, text]);
  });
  // The timers, then the commands after the checkpoint: a timer the clock fires in between is
  // gone from the set and its command is read.
  const timers = readTimers(redis, k.timers).then(
    async (live) => [live, await firedAfter(redis, k.commands, a.checkpoint ?? '0-0')] as const,
  );
  // The Idempotency-Key records and the answers recorded for repeats.
  const records = new Map<string, string>();
  const answers = new Map<string, string>();
  const [, , , , index, counters, [excluded, settings, seq, tick, marked, applied], [live, fired], agentIds] =
    await Promise.all([
      agents,
      contacts,
      eachEntry(redis, k.idempotency, (key, text) => records.set(key, text)),
      eachEntry(redis, k.idempotencyOutcomes, (key, text) => answers.set(key, text)),
      readRoutingIndex(redis, k.workspace),
      redis.hgetall(k.stats),
      redis.hmget(k.meta, 'excluded', 'settings', 'seq', 'tick', 'agentIds', 'applied'),
      timers,
      readAgentIds(redis, k.agentIds),
    ]);
  check.index(index);
  // Whole through the checkpoint (src/adapters/redis/agent-ids.ts): compared.
  check.agentIds(marked !== null && marked === (applied ?? '0-0') ? agentIds : null);
  check.excluded(excluded ?? null);
  check.meta(settings ?? null, seq ?? null, tick ?? null);
  check.idempotency(records, answers);
  check.counters(counters);
  check.timers(live, fired);
  return check.violations();
}

/** The agent ids' index, READ_PAGE ids a read (by lex range: every id there throughout is read once). */
async function readAgentIds(redis: RedisClient, key: string): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const last = out.at(-1);
    const page = await redis.zrangebylex(
      key,
      last === undefined ? '-' : `(${last}`,
      '+',
      'LIMIT',
      0,
      READ_PAGE,
    );
    out.push(...page);
    if (page.length < READ_PAGE) return out;
  }
}

/** A sorted set of timers in pages (ZSCAN: every member there throughout is returned). */
async function readTimers(redis: RedisClient, key: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let cursor = '0';
  do {
    const [next, flat] = await redis.zscan(key, cursor, 'COUNT', 5000);
    cursor = next;
    for (let i = 0; i + 1 < flat.length; i += 2) out.set(flat[i]!, Number(flat[i + 1]));
  } while (cursor !== '0');
  return out;
}

/**
 * The ids of the timer commands (`timer:<member>:<due>`) appended after `position`, at or after
 * their due time. One appended before it (a clock running fast) is applied as stale: its timer is
 * lost, not fired, and it accounts for nothing.
 */
export async function firedAfter(redis: RedisClient, key: string, position: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (let from = `(${position}`; ; ) {
    const page = (await readRange(redis, key, from, '+', 5000)) as Entry[];
    for (const e of page) {
      const id = fieldOf(e, 'commandId');
      if (id?.startsWith('timer:') && firedWhenDue(e[0], id)) out.add(id);
    }
    if (page.length < 5000) return out;
    from = `(${page[page.length - 1]![0]}`;
  }
}

/** Whether a timer command (`timer:<member>:<due>`) at `position` is at or after its due time. */
export function firedWhenDue(position: string, commandId: string): boolean {
  const due = Number(commandId.slice(commandId.lastIndexOf(':') + 1));
  return Number(position.slice(0, position.indexOf('-'))) >= due;
}

/**
 * An audit that can be run again as the workspace grows: each run reads the log from where the
 * last one stopped (the replayed state is kept) and compares the documents and routing index at
 * the new cut. Violations of the log add up over the runs, and each run's report covers the log
 * from the start; those of the end of the log (documents, index, timers, counters, idle, intervals)
 * are the latest run's, each once.
 * A follower, or a test auditing after every step, pays for what is new, not the whole log again.
 * The live interval projection's tallies are compared only when it existed at the first run (its
 * tallies are counted from the start of the log).
 */
export class WorkspaceAudit {
  private readonly k: WorkspaceKeys;
  private auditor: Auditor | undefined;
  private replayer: Replayer | undefined;
  private threshold: string | null = null;
  /** Whether a run has looked at the outcome stream's end (an empty one is reported once). */
  private outcomesSeen = false;
  /** This run's progress report (the replayer, made by the first run, calls it). */
  private progress = (): void => {};

  /** The workspace's agent keys and their agents, for the audit of who sent what. */
  private readonly keyAgents = new Map<string, string>();
  /** The deletions reported by an earlier run (`deletions`), each reported once. */
  private readonly deleted = new Set<string>();

  constructor(
    private readonly redis: RedisClient,
    readonly workspace: string,
    private readonly opts: ReadOptions = {},
  ) {
    this.k = workspaceKeys(workspace);
  }

  async run(): Promise<AuditReport> {
    const { redis, k, opts } = this;
    const started = performance.now();
    // The agent keys' bindings, read again each run (a key made since is known from then on), the
    // interval threshold on the first run, and the cut, sent together (served in this order).
    const bindings = opts.keyAgents ? undefined : listApiKeys(redis, this.workspace);
    const threshold0 =
      !this.auditor && opts.compareState !== false ? redis.hget(k.intervals, 'serviceLevelMs') : null;
    const firstCut = cut(redis, k);
    // Awaited together: one that fails leaves no other's failure unhandled.
    await Promise.all([bindings, threshold0, firstCut]);
    if (bindings)
      for (const key of await bindings)
        if (key.agentId !== undefined) this.keyAgents.set(key.keyId, key.agentId);
    if (!this.auditor) {
      // The interval tallies are counted within the threshold the live projection counts within.
      this.threshold = await threshold0;
      const withKeys = opts.keyAgents ? opts : { ...opts, keyAgents: this.keyAgents };
      this.auditor = new Auditor(
        this.workspace,
        this.threshold ? { ...withKeys, intervalServiceLevelMs: Number(this.threshold) } : withKeys,
      );
    }
    const a = this.auditor;
    const threshold = this.threshold;
    let at = await firstCut;
    const total = at.eventCount;
    const report = (phase: Progress['phase']) =>
      opts.onProgress?.({ phase, events: a.events, totalEvents: total });
    this.progress = () => report('events');
    this.replayer ??= new Replayer(redis, k, a, () => this.progress(), opts.pageSize ?? 5000, opts.archive);
    const replayer = this.replayer;
    await replayer.to(at);
    // Each projector step trims its outcome stream to the time before its last outcome, never past
    // it: applied commands and no outcome at all is a stream emptied by something else.
    if (!this.outcomesSeen && at.checkpoint !== null && at.lastOutcome === null)
      a.flag(
        'outcome',
        'outcomes',
        at.checkpoint,
        `the outcome stream is empty, yet the commands up to ${at.checkpoint} were applied (a projector step keeps its last outcome)`,
      );
    this.outcomesSeen = true;
    for (const { key, violation } of await deletions(redis, k)) {
      if (this.deleted.has(key)) continue;
      this.deleted.add(key);
      a.violations.add(violation);
    }
    // The end of the log is checked anew: an earlier run's findings about its end are its own.
    a.violations.withdrawEnd();
    let state = 'not compared (not asked)';
    if (opts.compareState !== false) {
      report('state');
      for (let attempt = 1; ; attempt++) {
        const found = await readState(redis, k, a);
        const again = await cut(redis, k);
        if (again.checkpoint === at.checkpoint && again.lastEvent === at.lastEvent) {
          for (const v of found) a.violations.add(v);
          state = 'compared';
          break;
        }
        at = again;
        await replayer.to(at);
        if (attempt === 3) {
          state = 'not compared: the workspace kept changing while its documents were read';
          break;
        }
      }
    }
    let intervals = 'not compared (not asked)';
    if (opts.compareState !== false) {
      if (!a.intervals || threshold === null) intervals = 'not compared (no live interval projection)';
      else {
        // Which intervals Redis still keeps, by the clock that expires them (its node's), not this host's.
        const now = await redisClockNow(redis, k.intervals);
        const found = await checkIntervals(redis, k, a.intervals, Number(threshold), a.lastEvent, now);
        for (const v of found.violations) a.violations.add(v);
        intervals = found.status;
      }
    }
    a.finish();
    return buildReport(a, {
      pendingCommands: at.commandCount - a.commands,
      state,
      intervals,
      seconds: (performance.now() - started) / 1000,
    });
  }
}

/** Audits a workspace's whole log once (see WorkspaceAudit). */
export function auditWorkspace(
  redis: RedisClient,
  workspace: string,
  opts: ReadOptions = {},
): Promise<AuditReport> {
  return new WorkspaceAudit(redis, workspace, opts).run();
}
