import { publicDocument } from '../adapters/redis/documents.ts';
import { type WorkspaceKeys, workspaceKeys } from '../adapters/redis/keys.ts';
import { readRoutingIndex } from '../adapters/redis/routing-index.ts';
import type { RedisClient } from '../adapters/redis/scripts.ts';
import { type AuditOptions, Auditor } from './auditor.ts';
import type { Entry } from './entries.ts';
import { type AuditReport, buildReport } from './report.ts';
import { StateCheck } from './state-check.ts';
import type { Violation } from './violations.ts';

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
 */
export interface ReadOptions extends AuditOptions {
  /** Stream entries per read (default 5000). */
  readonly pageSize?: number;
  /** Compare the documents and the routing index with the replay (default true). */
  readonly compareState?: boolean;
  readonly onProgress?: (p: Progress) => void;
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
    .exec();
  if (!r) throw new Error('the read of the checkpoint and last event was aborted');
  for (const [err] of r) if (err) throw err;
  const last = (i: number) => (r[i]![1] as Entry[])[0]?.[0] ?? null;
  return {
    checkpoint: (r[0]![1] as string | null) ?? null,
    lastEvent: last(1),
    lastOutcome: last(2),
    commandCount: Number(r[3]![1]),
    eventCount: Number(r[4]![1]),
  };
}

/** Pages of a stream after a cursor, up to a bound. */
class Pager {
  private cursor: string | null = null;
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    readonly size: number,
  ) {}

  async next(upTo: string): Promise<Entry[]> {
    const from = this.cursor === null ? '-' : `(${this.cursor}`;
    const page = (await this.redis.xrange(this.key, from, upTo, 'COUNT', this.size)) as Entry[];
    if (page.length > 0) this.cursor = page[page.length - 1]![0];
    return page;
  }
}

/** Replays the streams up to a cut (the auditor carries on from where an earlier call stopped). */
class Replayer {
  private readonly commands: Pager;
  private readonly events: Pager;
  private readonly outcomes: Pager;
  private commandsDone = false;
  private inflight: Promise<Entry[]> | undefined;
  private bound: string | null = null;

  constructor(
    redis: RedisClient,
    k: WorkspaceKeys,
    private readonly audit: Auditor,
    private readonly size: number,
    private readonly progress: (events: number) => void,
  ) {
    this.commands = new Pager(redis, k.commands, size);
    this.events = new Pager(redis, k.events, size);
    this.outcomes = new Pager(redis, k.outcomes, size);
  }

  async to(c: Cut): Promise<void> {
    const a = this.audit;
    a.checkpoint = c.checkpoint ?? undefined;
    // Outcomes first: each is checked when its command is replayed.
    if (c.lastOutcome !== null)
      for (;;) {
        const page = await this.outcomes.next(c.lastOutcome);
        a.addOutcomes(page);
        if (page.length < this.size) break;
      }
    this.bound = c.checkpoint;
    this.commandsDone = c.checkpoint === null;
    a.commandsEnd(this.commandsDone);
    if (c.lastEvent !== null) {
      let next = this.events.next(c.lastEvent);
      for (;;) {
        const page = await next;
        const more = page.length === this.size;
        if (more) next = this.events.next(c.lastEvent);
        if (a.commandsAhead < this.size) await this.take();
        this.request();
        for (const e of page) while (!a.processEvent(e)) await this.take();
        this.progress(a.events);
        if (!more) break;
      }
    }
    while (!a.settle()) await this.take();
  }

  private request(): void {
    if (!this.inflight && !this.commandsDone && this.bound !== null)
      this.inflight = this.commands.next(this.bound);
  }

  private async take(): Promise<void> {
    this.request();
    if (!this.inflight) return;
    const page = await this.inflight;
    this.inflight = undefined;
    this.audit.addCommands(page);
    if (page.length < this.size) {
      this.commandsDone = true;
      this.audit.commandsEnd(true);
    }
  }
}

async function scanHash(
  redis: RedisClient,
  key: string,
  each: (id: string, doc: Record<string, unknown> | null) => void,
): Promise<void> {
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(key, cursor, 'COUNT', 1000);
    cursor = next;
    for (let i = 0; i + 1 < flat.length; i += 2) {
      let doc: Record<string, unknown> | null = null;
      try {
        doc = publicDocument<Record<string, unknown>>(flat[i + 1]!);
      } catch {}
      each(flat[i]!, doc);
    }
  } while (cursor !== '0');
}

async function readState(redis: RedisClient, k: WorkspaceKeys, a: Auditor): Promise<Violation[]> {
  const check = new StateCheck(a);
  await scanHash(redis, k.agents, (id, doc) => check.agent(id, doc));
  await scanHash(redis, k.contacts, (id, doc) => check.contact(id, doc));
  check.index(await readRoutingIndex(redis, k.workspace));
  return check.violations();
}

export async function auditWorkspace(
  redis: RedisClient,
  workspace: string,
  opts: ReadOptions = {},
): Promise<AuditReport> {
  const started = performance.now();
  const k = workspaceKeys(workspace);
  const a = new Auditor(workspace, opts);
  let at = await cut(redis, k);
  const total = at.eventCount;
  const report = (phase: Progress['phase']) =>
    opts.onProgress?.({ phase, events: a.events, totalEvents: total });
  const replayer = new Replayer(redis, k, a, opts.pageSize ?? 5000, () => report('events'));
  await replayer.to(at);
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
  a.finish();
  return buildReport(a, {
    pendingCommands: at.commandCount - a.commands,
    state,
    seconds: (performance.now() - started) / 1000,
  });
}
