/**
 * Rebuilds a workspace's state from its log with the production Lua steps, in a shadow keyspace,
 * and compares it with the live state.
 *
 * The commands are copied into the shadow's command stream with their own positions (so every
 * time the projector derives from a position is the same) and applied by the projector's step.
 * Each AssignmentMade is replayed where it happened: the commands up to its `meta.basedOn` (the
 * checkpoint its dispatcher step read) are applied, then one decision of the dispatcher's step,
 * dated at the event's `assignedAt`, must be that same assignment. At the end the documents, the
 * routing index's sorted sets, the counters, the settings and the lifecycle timers are compared, key by key. The shadow's name is not
 * a valid workspace id, so no API request can reach it, and it is never registered, so no
 * projector or dispatcher serves it.
 */
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { StreamEntry } from '../../adapters/redis/event-log.ts';
import { workspaceKeys } from '../../adapters/redis/keys.ts';
import { SERVED_WINDOW_MS } from '../../adapters/redis/routing-index.ts';
import { luaScript, type RedisClient, runLua } from '../../adapters/redis/scripts.ts';
import type { ChainBreak } from '../../archive/chain.ts';
import { LogReader } from '../../archive/log-reader.ts';
import { before, type LogStream } from '../../archive/segment.ts';
import type { ArchiveStore } from '../../archive/store.ts';
import { envelope } from '../../audit/entries.ts';
import { firedAfter, firedWhenDue } from '../../audit/read.ts';
import { defaultDispatcherOptions, dispatchStep } from '../../dispatcher/dispatcher.ts';
import { lastExcluded } from '../../domain/model.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../projections/projector.ts';
import { redisLost } from '../plain-failure.ts';

/** One stream's entries in order, page by page, up to a bound (archive and stream alike). */
export interface PageSource {
  readonly size: number;
  /** The next entries after those handed on, up to `upTo`: a short page is the end. */
  next(upTo: string): Promise<StreamEntry[]>;
}

export type LogSources = (stream: LogStream) => PageSource;

/** The log across the archive (when there is one) and the streams in Redis. */
export function logSources(
  redis: RedisClient,
  workspace: string,
  store: ArchiveStore | undefined,
  onBreak?: (b: ChainBreak) => void,
): LogSources {
  return (stream) => new LogReader(redis, store, workspace, stream, onBreak ? { onBreak } : {});
}

export interface Difference {
  /** What differs: a routing decision, a document, a sorted set's member, a counter, the settings, a timer. */
  readonly kind: 'decision' | 'document' | 'index' | 'counter' | 'settings' | 'timer' | 'archive';
  /** The key (its name after the workspace prefix) and the member or field. */
  readonly key: string;
  readonly member: string;
  readonly live: string | null;
  readonly rebuilt: string | null;
}

export interface RebuildReport {
  readonly workspace: string;
  readonly shadow: string;
  readonly commands: number;
  readonly assignments: number;
  /** Whether the state was compared (the workspace may keep changing while it is read). */
  readonly compared: boolean;
  readonly differences: readonly Difference[];
  /** Differences found in all (only the first `shown` are kept). */
  readonly differenceCount: number;
  readonly seconds: number;
}

interface Cut {
  readonly checkpoint: string;
  readonly lastEvent: string;
}

async function readCut(redis: RedisClient, workspace: string): Promise<Cut> {
  const k = workspaceKeys(workspace);
  const r = await redis.multi().hget(k.meta, 'applied').xrevrange(k.events, '+', '-', 'COUNT', 1).exec();
  if (!r) throw new Error('the read of the checkpoint and the last event was aborted; run the rebuild again');
  for (const [err] of r) if (err) throw err;
  return {
    checkpoint: (r[0]![1] as string | null) ?? '0-0',
    lastEvent: (r[1]![1] as StreamEntry[])[0]?.[0] ?? '0-0',
  };
}

/**
 * Removes every key of a workspace (the shadow's, before and after a rebuild): its fixed set of
 * keys (keys.ts), all in one slot, so one UNLINK on a cluster too. No SCAN: the Switchboard ACL
 * user may not list the keyspace.
 */
export async function dropKeys(redis: RedisClient, workspace: string): Promise<void> {
  const k = workspaceKeys(workspace);
  const keys = Object.values(k).filter(
    (key): key is string => typeof key === 'string' && key.startsWith(k.prefix) && key !== k.prefix,
  );
  await redis.unlink(...keys);
}

/** One stream read in order across calls, entry by entry up to a bound. */
class Puller {
  private buffer: StreamEntry[] = [];
  private at = 0;
  /** Everything up to this position has been read from the source. */
  private readTo: string | undefined;

  constructor(private readonly source: PageSource) {}

  /** The entries after the last one taken, up to and including `upTo`. */
  async *upTo(upTo: string): AsyncGenerator<StreamEntry> {
    for (;;) {
      while (this.at < this.buffer.length) {
        const e = this.buffer[this.at]!;
        if (before(upTo, e[0])) return;
        this.at++;
        yield e;
      }
      if (this.readTo !== undefined && !before(this.readTo, upTo)) return;
      this.buffer = await this.source.next(upTo);
      this.at = 0;
      if (this.buffer.length < this.source.size) this.readTo = upTo;
      if (this.buffer.length === 0) return;
    }
  }
}

/** The id of a command the clock appended: `timer:<member>:<due>` (src/dispatcher/lua/clock). */
const TIMER = 'timer:';

const field = (e: StreamEntry, name: string): string | undefined => {
  const i = e[1].indexOf(name);
  return i >= 0 && i % 2 === 0 ? e[1][i + 1] : undefined;
};

/**
 * A pipeline's copy into the shadow, every command of it done: one Redis refused (out of memory,
 * no permission) would leave the shadow short of commands and report differences the live state
 * does not have, so it fails the rebuild instead.
 */
async function copied(results: Promise<[Error | null, unknown][] | null>): Promise<void> {
  for (const [err] of (await results) ?? []) if (err) throw err;
}

/** Replays the log into the shadow, up to successive cuts. */
class Replay {
  private readonly commands: Puller;
  private readonly events: Puller;
  commandCount = 0;
  assignmentCount = 0;
  /**
   * The ids of the timer commands applied (`timer:<member>:<due>`): timers the live clock fired. One
   * positioned before its due time was applied as stale: its timer was lost, not fired.
   */
  readonly fired = new Set<string>();

  constructor(
    private readonly redis: RedisClient,
    private readonly shadow: string,
    sources: LogSources,
    private readonly differ: (d: Difference) => void,
    private readonly signal?: AbortSignal,
  ) {
    this.commands = new Puller(sources('commands'));
    this.events = new Puller(sources('events'));
  }

  async to(cut: Cut): Promise<void> {
    for await (const e of this.events.upTo(cut.lastEvent)) {
      if (field(e, 'type') !== 'AssignmentMade') continue;
      this.signal?.throwIfAborted();
      // An entry that is no event (something else wrote to the stream) is no decision to replay:
      // it is reported where it is, as the audit reports it, and the rest of the log rebuilt.
      const read = envelope(e[1]);
      if (typeof read === 'string') {
        this.differ({
          kind: 'decision',
          key: 'events',
          member: e[0],
          live: `unreadable AssignmentMade: ${read}`,
          rebuilt: null,
        });
        continue;
      }
      const env = read as {
        data: { contactId?: string; agentId?: string; assignedAt?: string };
        meta: { basedOn?: string };
      };
      await this.apply(env.meta.basedOn ?? '0-0');
      await this.decide(e[0], env.data);
    }
    await this.apply(cut.checkpoint);
  }

  /** Copies the commands up to `upTo` into the shadow and applies them. */
  private async apply(upTo: string): Promise<void> {
    const k = workspaceKeys(this.shadow);
    let batch = this.redis.pipeline();
    let n = 0;
    for await (const e of this.commands.upTo(upTo)) {
      const [id, fields] = e;
      batch.xadd(k.commands, id, ...fields);
      const commandId = field(e, 'commandId');
      if (commandId?.startsWith(TIMER) && firedWhenDue(id, commandId)) this.fired.add(commandId);
      this.commandCount++;
      if (++n % 1000 === 0) {
        await copied(batch.exec());
        // Between batches: an interrupted rebuild stops here (its shadow is then dropped).
        this.signal?.throwIfAborted();
        batch = this.redis.pipeline();
      }
    }
    if (n % 1000 !== 0) await copied(batch.exec());
    this.signal?.throwIfAborted();
    // Between the projector's steps too: one apply may take the whole log.
    const signal = this.signal;
    if (n > 0)
      await projectPending(
        this.redis,
        this.shadow,
        [],
        defaultProjectorOptions,
        signal ? async () => signal.throwIfAborted() : undefined,
      );
  }

  /** One decision of the dispatcher's step, at the time of the live one; it must be the same. */
  private async decide(
    position: string,
    live: { contactId?: string; agentId?: string; assignedAt?: string },
  ) {
    this.assignmentCount++;
    const at = Date.parse(live.assignedAt ?? '');
    // One decision a step: no time budget to look at.
    const opts = { ...defaultDispatcherOptions, batch: 1, stepBudgetMs: 0 };
    let made = 0;
    // A step that runs out of reads resumes in the next one (bounded here too).
    for (let steps = 0; made === 0 && steps < 1000; steps++) {
      const [n, more] = await dispatchStep(
        this.redis,
        this.shadow,
        opts,
        Number.isFinite(at) ? at : undefined,
      );
      made = n;
      if (!more) break;
    }
    const liveText = `${live.contactId}->${live.agentId}`;
    if (made === 0) {
      this.differ({ kind: 'decision', key: 'events', member: position, live: liveText, rebuilt: null });
      return;
    }
    const [last] = (await this.redis.xrevrange(
      workspaceKeys(this.shadow).events,
      '+',
      '-',
      'COUNT',
      1,
    )) as StreamEntry[];
    const data = (
      JSON.parse(field(last!, 'event') ?? '{}') as { data?: { contactId?: string; agentId?: string } }
    ).data;
    const rebuilt = `${data?.contactId}->${data?.agentId}`;
    if (rebuilt !== liveText)
      this.differ({ kind: 'decision', key: 'events', member: position, live: liveText, rebuilt });
  }
}

type How = 'documents' | 'zset' | 'hash' | 'window';

/**
 * The state keys compared, by their name after the workspace prefix, and how. `window`: the sets of
 * GET /stats's window, each queue's recent decisions (the dispatcher's `served`: the service rate
 * behind a queued contact's estimated wait, the mean wait and service level) and recent abandons
 * and expirations (the projector's `ended`), compared from the checkpoint's time less the window
 * on: an older member may be there on one side only, as each step takes out its queues' members
 * older than its own time less the window, and the live projector's steps end at other positions
 * than the rebuild's; no reader counts it any more.
 */
const COMPARED: readonly { name: string; how: How; kind: Difference['kind']; whenMarked?: true }[] = [
  { name: 'agents', how: 'documents', kind: 'document' },
  // The agent ids' index, while the live workspace's meta `agentIds` marks it whole (a workspace
  // from before it has it from its first listing: src/adapters/redis/agent-ids.ts).
  { name: 'agent-ids', how: 'zset', kind: 'index', whenMarked: true },
  { name: 'contacts', how: 'documents', kind: 'document' },
  { name: 'pools', how: 'zset', kind: 'index' },
  { name: 'pool-heads', how: 'zset', kind: 'index' },
  { name: 'queues', how: 'zset', kind: 'index' },
  { name: 'queue-heads', how: 'zset', kind: 'index' },
  { name: 'queue', how: 'zset', kind: 'index' },
  { name: 'skillsets', how: 'zset', kind: 'index' },
  { name: 'finished', how: 'zset', kind: 'index' },
  { name: 'agent-skill-sets', how: 'hash', kind: 'index' },
  { name: 'stats', how: 'hash', kind: 'counter' },
  { name: 'served', how: 'window', kind: 'counter' },
  { name: 'ended', how: 'window', kind: 'counter' },
];

async function readKey(
  redis: RedisClient,
  key: string,
  how: How,
  signal?: AbortSignal,
  windowFrom = 0,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (how === 'zset' || how === 'window') {
    const flat = await redis.zrange(key, 0, -1, 'WITHSCORES');
    for (let i = 0; i + 1 < flat.length; i += 2)
      // A window member: "<queue>|<ms, 15 digits>|<what>|<contact>", the queue name holding no "|".
      if (how === 'zset' || Number(flat[i]!.split('|')[1]) >= windowFrom) out.set(flat[i]!, flat[i + 1]!);
    return out;
  }
  let cursor = '0';
  do {
    signal?.throwIfAborted();
    const [next, flat] = await redis.hscan(key, cursor, 'COUNT', 5000);
    cursor = next;
    for (let i = 0; i + 1 < flat.length; i += 2) out.set(flat[i]!, flat[i + 1]!);
  } while (cursor !== '0');
  return out;
}

/**
 * A document as the steps read it: a contact's `excludedAgents` by its last MAX_EXCLUDED_AGENTS (a
 * document written before the bound holds more until its next rejection; the steps keep the last ones).
 */
function asRead(doc: Record<string, unknown>): Record<string, unknown> {
  if (Array.isArray(doc.excludedAgents)) doc.excludedAgents = lastExcluded(doc.excludedAgents as string[]);
  return doc;
}

async function compareState(
  redis: RedisClient,
  workspace: string,
  shadow: string,
  fired: ReadonlySet<string>,
  differ: (d: Difference) => void,
  signal?: AbortSignal,
): Promise<void> {
  const live = workspaceKeys(workspace).prefix;
  const rebuilt = workspaceKeys(shadow).prefix;
  const checkpoint = (await redis.hget(workspaceKeys(workspace).meta, 'applied')) ?? '0-0';
  const windowFrom = Number(checkpoint.split('-')[0]) - SERVED_WINDOW_MS;
  const [markedAt, applied] = await redis.hmget(workspaceKeys(workspace).meta, 'agentIds', 'applied');
  const marked = markedAt !== null && markedAt === (applied ?? '0-0');
  // An interrupt stops the comparison too, between two keys or two pages of a hash.
  for (const { name, how, kind, whenMarked } of COMPARED) {
    signal?.throwIfAborted();
    if (whenMarked && !marked) continue;
    const [a, b] = await Promise.all([
      readKey(redis, live + name, how, signal, windowFrom),
      readKey(redis, rebuilt + name, how, signal, windowFrom),
    ]);
    const same = (x: string, y: string) =>
      how === 'documents' ? isDeepStrictEqual(asRead(JSON.parse(x)), asRead(JSON.parse(y))) : x === y;
    for (const [member, text] of a) {
      const other = b.get(member);
      if (other === undefined || !same(text, other))
        differ({ kind, key: name, member, live: text, rebuilt: other ?? null });
    }
    for (const [member, text] of b)
      if (!a.has(member)) differ({ kind, key: name, member, live: null, rebuilt: text });
  }
  // The arrival counter and tick give the next contact's place in its queue; the settings decide
  // every later offer, wrap-up, wait limit and routing order; `excluded` (queued contacts some agent
  // turned down or that wait for preferred agents, none when absent) whether an agent who becomes
  // available looks at them again (src/adapters/redis/lua/includes/routing.lua).
  const fields = ['seq', 'tick', 'settings', 'excluded'] as const;
  signal?.throwIfAborted();
  const [liveMeta, rebuiltMeta] = await Promise.all([
    redis.hmget(workspaceKeys(workspace).meta, ...fields),
    redis.hmget(workspaceKeys(shadow).meta, ...fields),
  ]);
  fields.forEach((member, i) => {
    const [a, b] = [liveMeta[i] ?? null, rebuiltMeta[i] ?? null];
    const same =
      a === b ||
      (member === 'excluded' && (a ?? '0') === (b ?? '0')) ||
      (member === 'settings' && a !== null && b !== null && isDeepStrictEqual(JSON.parse(a), JSON.parse(b)));
    if (!same)
      differ({
        kind: member === 'settings' ? 'settings' : 'counter',
        key: 'meta',
        member,
        live: a,
        rebuilt: b,
      });
  });
  signal?.throwIfAborted();
  await compareTimers(redis, workspace, shadow, fired, differ);
}

/**
 * The lifecycle timers (offers, wrap-ups, maximum waits, preferences, routing steps): the live set
 * and the shadow's must hold the same members at the same due times, but for the timers the live
 * clock fired (it takes a timer out as it appends its command; no clock runs in the shadow). Those
 * are accounted for by their commands: applied ones (`fired`, met in the replay) and those after
 * the checkpoint, read after the live set so that none fired meanwhile is missed.
 */
async function compareTimers(
  redis: RedisClient,
  workspace: string,
  shadow: string,
  fired: ReadonlySet<string>,
  differ: (d: Difference) => void,
): Promise<void> {
  const k = workspaceKeys(workspace);
  const live = await readKey(redis, k.timers, 'zset');
  const rebuilt = await readKey(redis, workspaceKeys(shadow).timers, 'zset');
  const checkpoint = (await redis.hget(k.meta, 'applied')) ?? '0-0';
  const pending = new Set([...fired, ...(await firedAfter(redis, k.commands, checkpoint))]);
  const differs = (member: string, a: string | null, b: string | null) =>
    differ({ kind: 'timer', key: 'timers', member, live: a, rebuilt: b });
  for (const [member, due] of live) {
    const other = rebuilt.get(member) ?? null;
    if (other !== due) differs(member, due, other);
  }
  for (const [member, due] of rebuilt)
    if (!live.has(member) && !pending.has(`${TIMER}${member}:${due}`)) differs(member, null, due);
}

class Collected {
  readonly kept: Difference[] = [];
  count = 0;
  constructor(private readonly shown: number) {}
  add(d: Difference): void {
    this.count++;
    if (this.kept.length < this.shown) this.kept.push(d);
  }
}

export interface RebuildOptions {
  /** The archive of the workspace's log, read before the streams (default: none, Redis only). */
  readonly archive?: ArchiveStore;
  /** Keep the shadow's keys afterwards (to look at them). */
  readonly keepShadow?: boolean;
  /** Differences kept in the report (default 100). */
  readonly shown?: number;
  /**
   * Stops the rebuild (an interrupt): it rejects with the signal's reason once the batch, the
   * decision or the read of the comparison under way is done, its shadow dropped (unless
   * `keepShadow`) and handed back.
   */
  readonly signal?: AbortSignal;
}

export function shadowOf(workspace: string): string {
  return `${workspace}.rebuild`;
}

/** Another rebuild of the workspace holds its shadow: this one would drop and mix its keys. */
export class RebuildBusyError extends Error {}

/** The key a rebuild holds its shadow by (not one of the shadow's keys, which a rebuild drops). */
export const shadowLock = (workspace: string): string => `${workspaceKeys(shadowOf(workspace)).prefix}lock`;

/** The shadow's hold lapses this long after its rebuild last renewed it (a rebuild killed). */
const LOCK_TTL_MS = 30_000;
const RENEW = luaScript('leaseRenew', new URL('../../dispatcher/lua/lease-renew-1.lua', import.meta.url));
const RELEASE = luaScript(
  'leaseRelease',
  new URL('../../dispatcher/lua/lease-release-1.lua', import.meta.url),
);

/**
 * Holds the workspace's shadow for `work`: two rebuilds at once would drop and fill the same
 * keys and report differences that are not there.
 */
async function holdingShadow<T>(redis: RedisClient, workspace: string, work: () => Promise<T>): Promise<T> {
  const lock = shadowLock(workspace);
  const token = randomUUID();
  if ((await redis.set(lock, token, 'PX', LOCK_TTL_MS, 'NX')) === null)
    throw new RebuildBusyError(
      `another rebuild of workspace "${workspace}" is running (it holds ${lock}, for up to ${LOCK_TTL_MS / 1000} s after it stops); run this one once it has ended`,
    );
  const renewal = setInterval(
    () => void runLua(redis, RENEW, [lock], [token, LOCK_TTL_MS]).catch(() => {}),
    LOCK_TTL_MS / 3,
  );
  let lost = false;
  try {
    return await work();
  } catch (err) {
    lost = redisLost(err);
    throw err;
  } finally {
    clearInterval(renewal);
    // Redis gone (killed, unreachable, not answering): the release would only fail in turn, after
    // the client's reconnections or the command timeout again. The hold lapses by itself.
    if (!lost) await runLua(redis, RELEASE, [lock], [token]).catch(() => {});
  }
}

export function rebuildWorkspace(
  redis: RedisClient,
  workspace: string,
  opts: RebuildOptions = {},
): Promise<RebuildReport> {
  return holdingShadow(redis, workspace, () => rebuildHeld(redis, workspace, opts));
}

async function rebuildHeld(
  redis: RedisClient,
  workspace: string,
  opts: RebuildOptions,
): Promise<RebuildReport> {
  const started = performance.now();
  const shadow = shadowOf(workspace);
  const shown = opts.shown ?? 100;
  // Decisions are checked once each as the replay goes; the state at the end of each attempt.
  const decisions = new Collected(shown);
  let state = new Collected(shown);
  await dropKeys(redis, shadow);
  await ensureGroup(redis, shadow);
  const chainBreak = (b: ChainBreak) =>
    decisions.add({ kind: 'archive', key: b.stream, member: b.position, live: b.message, rebuilt: null });
  const replay = new Replay(
    redis,
    shadow,
    logSources(redis, workspace, opts.archive, chainBreak),
    (d) => decisions.add(d),
    opts.signal,
  );
  let compared = false;
  let lost = false;
  try {
    let cut = await readCut(redis, workspace);
    for (let attempt = 1; attempt <= 3 && !compared; attempt++) {
      opts.signal?.throwIfAborted();
      await replay.to(cut);
      state = new Collected(shown);
      await compareState(redis, workspace, shadow, replay.fired, (d) => state.add(d), opts.signal);
      opts.signal?.throwIfAborted();
      const again = await readCut(redis, workspace);
      // The workspace moved while its state was read: carry on to the new cut and read again.
      if (again.checkpoint === cut.checkpoint && again.lastEvent === cut.lastEvent) compared = true;
      else cut = again;
    }
  } catch (err) {
    lost = redisLost(err);
    throw err;
  } finally {
    // Not with Redis gone: the removal would fail too, after as long again (the tool said nothing
    // meanwhile). The next rebuild drops the shadow before it fills it.
    if (!opts.keepShadow && !lost) await dropKeys(redis, shadow);
  }
  const found = [...decisions.kept, ...state.kept].slice(0, shown);
  const count = decisions.count + (compared ? state.count : 0);
  return {
    workspace,
    shadow,
    commands: replay.commandCount,
    assignments: replay.assignmentCount,
    compared,
    differences: compared ? found : decisions.kept,
    differenceCount: count,
    seconds: (performance.now() - started) / 1000,
  };
}
