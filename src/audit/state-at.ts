import type { QueuedAt, StateAtAnswer } from '../adapters/http/state.ts';
import { workspaceKeys } from '../adapters/redis/keys.ts';
import type { RedisClient } from '../adapters/redis/scripts.ts';
import { type ChainBreak, parseAnchor } from '../archive/chain.ts';
import { LogReader } from '../archive/log-reader.ts';
import { predecessor } from '../archive/segment.ts';
import { listSnapshots } from '../archive/snapshots.ts';
import { type ArchiveStore, workspaceFolder } from '../archive/store.ts';
import { contactOrder } from '../domain/routing.ts';
import { Auditor } from './auditor.ts';
import { type Entry, envelope } from './entries.ts';
import { agentDocument, contactDocument, iso } from './expected.ts';
import { decodeSnapshot, eventSha256, type ReplaySnapshot, restoreAuditor } from './replay-snapshot.ts';
import { positionBefore } from './violations.ts';

/**
 * The state of a workspace right after an event (GET /v1/workspaces/{ws}/state?at=): the
 * auditor's replay (commands decided by the domain model, their facts applied; assignments
 * applied as the log has them) from the latest snapshot at or before the position, over the
 * archive and then the streams, stopped right after the event.
 *
 * A command's events are written together (one Lua step), so the state half-way through them
 * never existed: an `at` among them answers the state after all of them, and `position` is then
 * the command's last event. An `at` between two events means the last event at or before it.
 *
 * Cost: one snapshot read and decoded, then at most SNAPSHOT_EVERY_EVENTS events (plus the rest
 * of one command's) and the commands between (docs/ARCHIVE.md, "Snapshots").
 */
export interface StateAtOptions {
  /** Where the archived prefix and the snapshots are. */
  readonly archive?: ArchiveStore;
  /** Start from the latest usable snapshot (default true); false: from the beginning. */
  readonly snapshots?: boolean;
  /** Stream entries per read (default 5000). */
  readonly pageSize?: number;
  /** Told about a snapshot that could not be used (damaged, unreadable). */
  readonly onBadSnapshot?: (name: string, why: string) => void;
  /** Told about a break of the archive the log is read from (it may throw to stop the replay). */
  readonly onBreak?: (b: ChainBreak) => void;
}

export type StateAtResult = { readonly state: StateAtAnswer } | { readonly ahead: string | null };

/** The workspace's last event and projector checkpoint, read together. */
export async function logEnd(
  redis: RedisClient,
  workspace: string,
): Promise<{ lastEvent: string | null; checkpoint: string | null }> {
  const k = workspaceKeys(workspace);
  const r = await redis
    .multi()
    .xrevrange(k.events, '+', '-', 'COUNT', 1)
    .hget(k.archive, 'events')
    .hget(k.meta, 'applied')
    .exec();
  if (!r) throw new Error('the read of the last event was aborted');
  for (const [err] of r) if (err) throw err;
  const last = (r[0]![1] as Entry[])[0]?.[0] ?? parseAnchor(r[1]![1] as string | null)?.last ?? null;
  return { lastEvent: last, checkpoint: (r[2]![1] as string | null) ?? null };
}

export async function stateAt(
  redis: RedisClient,
  workspace: string,
  at: string,
  opts: StateAtOptions = {},
): Promise<StateAtResult> {
  const end = await logEnd(redis, workspace);
  if (end.lastEvent === null ? at !== '0-0' : positionBefore(end.lastEvent, at))
    return { ahead: end.lastEvent };
  const snap =
    opts.snapshots === false || !opts.archive
      ? undefined
      : await latestSnapshot(opts.archive, workspace, at, opts.onBadSnapshot, redis);
  const auditor = snap ? restoreAuditor(snap) : new Auditor(workspace);
  const from = { events: auditor.events, commands: auditor.commands };
  await replayLog(redis, opts.archive, auditor, {
    commandsUpTo: end.checkpoint ?? '0-0',
    pageSize: opts.pageSize ?? 5000,
    ...(opts.onBreak ? { onBreak: opts.onBreak } : {}),
    // Stop before the first event after `at`, unless it is one more of a command half-met.
    stop: (e) =>
      positionBefore(at, e[0]) && (auditor.owing === undefined || commandIdOf(e) !== auditor.owing),
  });
  return {
    state: {
      ...stateOf(auditor, at),
      snapshot: snap?.header.position ?? null,
      replayed: { events: auditor.events - from.events, commands: auditor.commands - from.commands },
    },
  };
}

/** The documents and the queue of the auditor's state, as GET /state answers them. */
export function stateOf(a: Auditor, at: string): Omit<StateAtAnswer, 'snapshot' | 'replayed'> {
  const s = a.state;
  const agents = [...s.agents.values()]
    .sort((x, y) => compareIds(x.id, y.id))
    .map((x) => agentDocument(x, a.agentPositions.get(x.id) ?? ''));
  const contacts = [...s.contacts.values()].sort((x, y) => compareIds(x.id, y.id));
  const queue: QueuedAt[] = contacts
    .filter((c) => c.state === 'queued')
    .sort(contactOrder)
    .map((c) => ({ contactId: c.id, skills: c.skills, priority: c.priority, queuedAt: iso(c.queuedAt) }));
  return {
    workspace: a.workspace,
    at,
    position: a.lastEvent ?? null,
    checkpoint: a.lastCommandReplayed ?? null,
    agents,
    contacts: contacts.map((c) => contactDocument(c, a.contactMeta.get(c.id)?.position ?? '')),
    queue,
  };
}

/**
 * The latest snapshot at or before `at` that reads back whole and, with `redis`, whose event is
 * the log's (ofTheLog); a damaged or unreadable one, or one of events Redis lost, is reported and
 * an earlier one tried (none: undefined, the replay starts at the beginning).
 */
export async function latestSnapshot(
  store: ArchiveStore,
  workspace: string,
  at: string,
  onBad: (name: string, why: string) => void = () => {},
  redis?: RedisClient,
): Promise<ReplaySnapshot | undefined> {
  const names = (await listSnapshots(store, workspace)).filter((n) => !positionBefore(at, n.position));
  for (let i = names.length - 1; i >= 0; i--) {
    const n = names[i]!;
    let why: string | undefined;
    let d: ReplaySnapshot | string;
    try {
      d = decodeSnapshot(await store.readSnapshot(workspace, n.name), workspace);
    } catch (err) {
      d = `unreadable: ${(err as Error).message}`;
    }
    if (typeof d !== 'string' && d.header.position === n.position && d.header.events === n.events) {
      // A failure to read the log is the caller's, not the snapshot's.
      why = redis && (await ofTheLog(redis, store, workspace, n.name, d));
      if (why === undefined) return d;
    } else why = typeof d === 'string' ? d : 'its header names another position than its name';
    onBad(n.name, why);
  }
  return undefined;
}

export interface ReplayLogOptions {
  /** Commands are read up to this position (the projector checkpoint). */
  readonly commandsUpTo: string;
  readonly pageSize: number;
  /** Whether to stop before this event (it is then not replayed). */
  readonly stop: (e: Entry) => boolean;
  /** Called after each event replayed. */
  readonly after?: (e: Entry) => Promise<void> | void;
  /** Told about a break of the archive (it may throw to stop the replay). */
  readonly onBreak?: (b: ChainBreak) => void;
}

/**
 * Feeds an auditor the events after its last one and the commands after its last one, across
 * the archive and the streams (LogReader: the readers the audit uses), until `stop` says so or
 * the event stream ends. The next page of events is asked for while one is replayed, and the
 * replay yields to the event loop every 1,000 events (an API process keeps serving meanwhile).
 */
export async function replayLog(
  redis: RedisClient,
  store: ArchiveStore | undefined,
  a: Auditor,
  opts: ReplayLogOptions,
): Promise<void> {
  const size = opts.pageSize;
  const reader = (stream: 'commands' | 'events', after: string | undefined) =>
    new LogReader(redis, store, a.workspace, stream, {
      pageSize: size,
      ...(after !== undefined ? { after } : {}),
      ...(opts.onBreak ? { onBreak: opts.onBreak } : {}),
    });
  const commands = reader('commands', a.lastCommandReplayed);
  const events = reader('events', a.lastEvent);
  let commandsDone = opts.commandsUpTo === '0-0';
  a.commandsEnd(commandsDone);
  const takeCommands = async () => {
    const page = await commands.next(opts.commandsUpTo);
    a.addCommands(page);
    if (page.length < size) commandsDone = true;
    a.commandsEnd(commandsDone);
  };
  let next = events.next('+');
  for (;;) {
    const page = await next;
    if (page.length === size) {
      next = events.next('+');
      next.catch(() => {}); // awaited in the next turn, if there is one
    }
    for (let i = 0; i < page.length; i++) {
      const e = page[i]!;
      if (opts.stop(e)) return;
      if (a.commandsAhead === 0 && !commandsDone) await takeCommands();
      while (!a.processEvent(e)) await takeCommands();
      await opts.after?.(e);
      // A long replay lets the process serve others meanwhile (about every 20 ms).
      if (i % 1000 === 999) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (page.length < size) return;
  }
}

/**
 * Why the snapshot is not of the history the log holds (undefined: it is): the event it is the
 * state right after is not at its position in the log (archive, then stream), or another event
 * is there. Redis came back with less (an older copy, a failover that lost writes) and the
 * snapshot was taken of what it lost: replayed on from there, it would answer with agents and
 * contacts that never were in what Redis holds.
 */
async function ofTheLog(
  redis: RedisClient,
  store: ArchiveStore,
  workspace: string,
  name: string,
  snap: ReplaySnapshot,
): Promise<string | undefined> {
  const p = snap.header.position;
  // Breaks are the replay's to report; here only the event at the position is looked at, and a
  // log with a hole at it cannot say the snapshot is not of it (the replay answers the hole).
  let broken = false;
  const [e] = await new LogReader(redis, store, workspace, 'events', {
    after: predecessor(p),
    pageSize: 1,
    onBreak: () => {
      broken = true;
    },
  }).next(p);
  if (broken) return undefined;
  const other =
    e === undefined || e[0] !== p
      ? `the log holds no event at ${p}`
      : snap.header.eventSha256 !== undefined && eventSha256(e) !== snap.header.eventSha256
        ? `the log holds another event at ${p} than the one it was taken after`
        : undefined;
  return other === undefined
    ? undefined
    : `${other}: it is a snapshot of events Redis lost (back from an older copy, or a failover lost writes; docs/DEPLOYMENT.md, Durability). Rename it to ${name}.lost in <ARCHIVE_DIR>/${workspaceFolder(workspace)}/snapshots, as the archiver's error says, with the segments of what was lost`;
}

const compareIds = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);

function commandIdOf(e: Entry): string | undefined {
  const env = envelope(e[1]);
  return typeof env === 'string' ? undefined : (env.meta.commandId as string | undefined);
}
