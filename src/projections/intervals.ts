import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { HistoryUnreadableError } from '../adapters/http/problem.ts';
import { BlockingLoops, pauseUnlessStopped, raceBlocking, STOPPED } from '../adapters/redis/client.ts';
import {
  type EventHistory,
  entryType,
  parseFields,
  type StreamEntry,
  streamHistory,
} from '../adapters/redis/event-log.ts';
import { INTERVAL_GENERATION, workspaceKeys } from '../adapters/redis/keys.ts';
import { DEFAULT_SERVICE_LEVEL_MS } from '../adapters/redis/projection-reads.ts';
import { luaScript, type RedisClient, runLua } from '../adapters/redis/scripts.ts';
import {
  INTERVAL_MS,
  INTERVALS_KEPT_MS,
  intervalEffect,
  type LoggedEvent,
  loggedEventOf,
  placeOfText,
  placeText,
  TALLY_FIELDS,
} from '../domain/intervals.ts';

/** How often a projection stopped by a break of the archive reads the history again. */
const BREAK_RETRY_MS = 10_000;

/**
 * Most writes (a tally field added to, a contact's queue set or removed) one step makes, after the
 * event that reaches it: each is a Redis call in the Lua step, and Redis runs one step at a time
 * for every workspace on it. A batch of 1000 contacts queued to 1000 queues made about 3000 and held
 * Redis 7 – 14 ms; 400 hold it about 1.5 ms. The step then ends at that event and the next goes on.
 */
export const INTERVAL_STEP_WRITES = 400;

/** The projection's one Lua step (its file documents its keys and arguments). */
const APPLY = luaScript('intervals', new URL('./lua/intervals-any.lua', import.meta.url));

export interface IntervalProjectionOptions {
  /** Most events applied by one step (fewer when they make more than `stepWrites` writes). */
  readonly batch: number;
  /** Most writes one step makes, after the event that reaches it (INTERVAL_STEP_WRITES). */
  readonly stepWrites?: number;
  /** How long the read that waits for new events blocks. */
  readonly blockMs: number;
  /** The service-level threshold the tallies count decisions within (a workspace keeps the first it was built with). */
  readonly serviceLevelMs: number;
  /** How long an interval's tallies are kept after its end. */
  readonly keptMs: number;
  /**
   * How long the loop lets events gather after new ones wake it, before it applies them: one step
   * then takes what a busy workspace appended meanwhile instead of one per wake (each step is
   * several round trips and a read of the log). Tallies of 15-minute intervals lag by this much.
   */
  readonly gatherMs?: number;
}

export const defaultIntervalProjectionOptions: IntervalProjectionOptions = {
  batch: 1000,
  blockMs: 2000,
  serviceLevelMs: DEFAULT_SERVICE_LEVEL_MS,
  keptMs: INTERVALS_KEPT_MS,
  gatherMs: 250,
};

/**
 * The live interval projection of one workspace's event log: each 15-minute interval's tallies
 * (the workspace's and each queue's, src/domain/intervals.ts) in Redis, kept up to date as events
 * are appended. Each step reads the events after its checkpoint (the archive first when the
 * history given reads it), lets the domain say what each adds, and applies the sums, the contacts'
 * queues and the new checkpoint in one Lua step that applies only if the checkpoint has not moved:
 * any number of processes may run it at once, and a process killed anywhere loses and repeats
 * nothing. GET /stats/intervals reads the tallies (src/adapters/http/intervals.ts).
 */
export class IntervalProjection {
  private readonly loops: BlockingLoops;
  /** Events applied by this process. */
  applied = 0;
  /** The workspaces whose last step ended before its batch did (at its writes' bound): more is there. */
  private readonly cut = new Set<string>();
  /**
   * What a step cut at its writes' bound read and did not apply, per workspace: the entries after
   * the checkpoint it left (`after`), and the queues of the contacts it read as that checkpoint
   * left them. The next step goes on from them while the checkpoint is still `after` (every write
   * to the contacts' queues moves the checkpoint in the same Lua step, so they are still the
   * hash's), reading only what is new: without it a backlog of 10,000 events to 1000 queues was
   * read about 4.8 times over.
   */
  private readonly carried = new Map<
    string,
    { after: string; entries: StreamEntry[]; queues: Map<string, string | null> }
  >();

  constructor(
    private readonly redis: RedisClient,
    private readonly log: Logger,
    private readonly history: EventHistory = streamHistory(redis),
    private readonly opts: IntervalProjectionOptions = defaultIntervalProjectionOptions,
  ) {
    this.loops = new BlockingLoops(redis);
  }

  /** Applies every event after the checkpoint; returns how many this call applied. */
  async applyPending(workspace: string, running: () => boolean = () => true): Promise<number> {
    let total = 0;
    while (running()) {
      const n = await this.step(workspace);
      if (n === 0) return total;
      if (n > 0) total += n;
    }
    return total;
  }

  /**
   * One batch: the number of events applied (the batch read, or up to the event whose writes reach
   * `stepWrites`), 0 when there was none to apply, -1 when another process moved the checkpoint
   * first (nothing was written; read again).
   */
  async step(workspace: string): Promise<number> {
    const k = workspaceKeys(workspace);
    // Whatever this step finds (nothing, another process's checkpoint, a failure), an earlier
    // step's "cut short" says nothing about it.
    this.cut.delete(workspace);
    const carry = this.carried.get(workspace);
    this.carried.delete(workspace);
    const [checkpoint, storedThreshold, generation] = await this.redis.hmget(
      k.intervals,
      'checkpoint',
      'serviceLevelMs',
      INTERVAL_GENERATION,
    );
    const threshold = storedThreshold ? Number(storedThreshold) : this.opts.serviceLevelMs;
    // Kept only while the checkpoint is the one the step that kept it left (another holder, a
    // drop, may have moved it since).
    const kept = carry && carry.after === checkpoint ? carry : undefined;
    const entries = kept ? kept.entries : [];
    if (entries.length < this.opts.batch)
      entries.push(
        ...(await this.history(
          workspace,
          entries.at(-1)?.[0] ?? checkpoint ?? '0-0',
          this.opts.batch - entries.length,
        )),
      );
    const last = entries.at(-1);
    if (!last) {
      // A build whose first step was stopped between its Lua step and naming it (a process killed
      // there) is named by the next step, even one that finds nothing to apply: else a quiet
      // workspace's build stays nameless until its next event.
      if (checkpoint && !generation) await this.redis.hsetnx(k.intervals, INTERVAL_GENERATION, randomUUID());
      return 0;
    }

    const events: [LoggedEvent, number, string[]][] = [];
    const ids = new Set<string>();
    for (const [i, entry] of entries.entries()) {
      const e = loggedEventOf(entry[0], entryType(entry), parseFields(entry[1]).event);
      if (!e) continue;
      const listed = Array.isArray(e.data.contactIds) ? (e.data.contactIds as unknown[]) : [];
      const about = [e.data.id, e.data.contactId, ...listed].filter((id) => typeof id === 'string');
      events.push([e, i, about]);
      for (const id of about) ids.add(id);
    }
    // Where the contacts this batch is about are (their queues, whether decided: `placeText`), as
    // the checkpoint left them; then as it changes them.
    const queues = new Map<string, string | null>();
    const held = new Set<string>();
    for (const [id, text] of kept?.queues ?? []) {
      queues.set(id, text);
      if (text != null) held.add(id);
    }
    const known = [...ids].filter((id) => !queues.has(id));
    if (known.length > 0) {
      const stored = await this.redis.hmget(k.intervalContacts, ...known);
      for (const [i, id] of known.entries()) {
        queues.set(id, stored[i] ?? null);
        if (stored[i] != null) held.add(id);
      }
    }
    const changed = new Set<string>();
    const sums = new Map<number, Map<string, number>>();
    const most = this.opts.stepWrites ?? INTERVAL_STEP_WRITES;
    let fieldCount = 0;
    // The entries this step applies: all it read, or up to the event whose writes reach `most`.
    let upTo = entries.length - 1;
    for (const [e, i] of events) {
      const effect = intervalEffect(
        e,
        (id) => {
          const text = queues.get(id);
          return text == null ? undefined : placeOfText(text);
        },
        threshold,
      );
      if (effect.count) {
        const { start, add, queue } = effect.count;
        let fields = sums.get(start);
        if (!fields) {
          fields = new Map();
          sums.set(start, fields);
        }
        for (const f of TALLY_FIELDS) {
          const v = add[f];
          if (!v) continue;
          const size = fields.size;
          fields.set(f, (fields.get(f) ?? 0) + v);
          if (queue !== undefined) fields.set(`${f} ${queue}`, (fields.get(`${f} ${queue}`) ?? 0) + v);
          fieldCount += fields.size - size;
        }
      }
      for (const id of effect.forget ?? []) {
        queues.set(id, null);
        changed.add(id);
      }
      if (effect.learn) {
        queues.set(effect.learn.contactId, placeText(effect.learn));
        changed.add(effect.learn.contactId);
      }
      if (fieldCount + changed.size >= most && i < entries.length - 1) {
        upTo = i;
        break;
      }
    }
    const through = entries[upTo]!;

    const keys = [k.intervals, k.intervalContacts, k.intervalIndex];
    const args: (string | number)[] = [];
    for (const [start, fields] of sums) {
      keys.push(`${k.intervalPrefix}${start}`);
      args.push(start, fields.size);
      // Redis adds integers: the log's waits and handle times are whole milliseconds.
      for (const [f, v] of fields) args.push(f, Math.round(v));
    }
    const set: string[] = [];
    const gone: string[] = [];
    for (const id of changed) {
      const q = queues.get(id);
      // Only contacts the hash holds are deleted (not those learnt and forgotten in this batch):
      // the step's deletions then empty the hash, if at all, with its last one. A step that empties
      // a key and touches it again is stopped there by Redis Cluster while the slot moves, keeping
      // the tallies it added, and its retry would count them twice.
      if (q == null) {
        if (held.has(id)) gone.push(id);
      } else set.push(id, q);
    }
    const applied = (await runLua(this.redis, APPLY, keys, [
      checkpoint ?? '',
      through[0],
      threshold,
      this.opts.keptMs,
      INTERVAL_MS,
      set.length / 2,
      ...args,
      ...set,
      ...gone,
    ])) as number;
    if (applied !== 1) return -1;
    // A build's first step names it (INTERVAL_GENERATION); once is enough: the first holder's name stays.
    if (!generation) await this.redis.hsetnx(k.intervals, INTERVAL_GENERATION, randomUUID());
    if (upTo < entries.length - 1) {
      this.cut.add(workspace);
      // `queues` is as the checkpoint just written leaves the hash (the loop above stopped there);
      // those of the contacts the rest is about are kept.
      const rest = new Map<string, string | null>();
      for (const [, i, about] of events)
        if (i > upTo) for (const id of about) rest.set(id, queues.get(id) ?? null);
      this.carried.set(workspace, { after: through[0], entries: entries.slice(upTo + 1), queues: rest });
    }
    this.applied += upTo + 1;
    return upTo + 1;
  }

  /**
   * The loop of one workspace: apply what is there, then wait for the next event. A history that
   * cannot be read whole (a segment of the archive missing or damaged: ArchiveBreakError) stops it
   * before the batch holding the break, logged once as an error naming the break, and it tries
   * again every BREAK_RETRY_MS (the segment restored): the tallies never count a log with a hole
   * in it, and GET /stats/intervals, past the checkpoint, reads the log and answers the break.
   */
  async run(workspace: string, running: () => boolean): Promise<void> {
    const k = workspaceKeys(workspace);
    let broken: string | undefined;
    await this.loops.run(workspace, async (conn, stopped) => {
      while (running()) {
        // Steps until one takes less than a full batch and was not cut short at its writes' bound
        // (caught up): on a busy workspace, waiting
        // for a step that finds nothing would make one small step per round trip instead.
        let n = 0;
        let last = 0;
        try {
          do {
            last = await this.step(workspace);
            if (last > 0) n += last;
          } while (running() && (last < 0 || last >= this.opts.batch || this.cut.has(workspace)));
          broken = undefined;
        } catch (err) {
          if (!(err instanceof HistoryUnreadableError)) throw err;
          if (err.message !== broken) {
            broken = err.message;
            const checkpoint = await this.redis.hget(k.intervals, 'checkpoint');
            this.log.error(
              { workspace, checkpoint, err: err.message },
              'the interval projection stops: the event history cannot be read whole; its tallies end at its checkpoint until the archive is mended',
            );
          }
          if ((await pauseUnlessStopped(BREAK_RETRY_MS, stopped)) === STOPPED) return;
          continue;
        }
        if (n > 0) this.log.debug({ workspace, applied: n }, 'events applied to the intervals');
        const checkpoint = (await this.redis.hget(k.intervals, 'checkpoint')) ?? '0-0';
        const read = await raceBlocking(
          conn.xread('COUNT', 1, 'BLOCK', this.opts.blockMs, 'STREAMS', k.events, checkpoint),
          stopped,
          this.opts.blockMs + 5000,
        );
        if (read === STOPPED) return;
        const gather = this.opts.gatherMs ?? 0;
        if (read !== null && gather > 0 && (await pauseUnlessStopped(gather, stopped)) === STOPPED) return;
      }
    });
  }

  interrupt(workspace: string): void {
    this.loops.interrupt(workspace);
  }
}

/**
 * Removes a workspace's live interval projection (its tallies, contacts' queues and checkpoint):
 * the next step builds it again from the whole log.
 */
export async function dropIntervals(redis: RedisClient, workspace: string): Promise<void> {
  const k = workspaceKeys(workspace);
  const starts = await redis.zrange(k.intervalIndex, 0, -1);
  await redis.unlink(
    k.intervals,
    k.intervalContacts,
    k.intervalIndex,
    ...starts.map((s) => `${k.intervalPrefix}${s}`),
  );
}
