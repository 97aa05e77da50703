import type { Logger } from 'pino';
import { ifItGoesOn } from '../adapters/redis/advice.ts';
import { BlockingLoops, raceBlocking, STOPPED } from '../adapters/redis/client.ts';
import { globalKeys, routingIndexKeys, workspaceKeys } from '../adapters/redis/keys.ts';
import { CLOCK_DRIFT_MS, readRedisClock, redisClockNow } from '../adapters/redis/redis-clock.ts';
import { luaScript, type RedisClient, runLua } from '../adapters/redis/scripts.ts';

/** The dispatcher's Lua step (its file documents its keys and arguments). */
const DISPATCH = luaScript('dispatch', new URL('./lua/dispatch-14.lua', import.meta.url), {
  slotGuard: true,
});
/** The clock's Lua step: due timers become commands. */
const CLOCK = luaScript('clock', new URL('./lua/clock-2.lua', import.meta.url), { slotGuard: true });

export interface DispatcherOptions {
  /** Most decisions one Lua step makes (each decision in it is atomic on its own). */
  readonly batch: number;
  /**
   * Most reads one Lua step makes: with `stepBudgetMs`, the bound on how long it holds Redis. A
   * walk that needs more resumes in the next step.
   */
  readonly maxReads: number;
  /**
   * An agent whose skills make at most this many subsets (up to the widest queued skill set)
   * looks each up; above it, it walks the queue heads in routing order.
   */
  readonly enumerateMax: number;
  /**
   * How long one Lua step may hold Redis, in milliseconds (Redis's clock; 0: no bound but `batch`
   * and `maxReads`): the step, looking at its clock every 4 decisions, ends once this has run
   * out, and the loop sends the next. Fractions are taken to the microsecond.
   */
  readonly stepBudgetMs: number;
  /**
   * BZPOPMIN's timeout. Waking is driven by the projector; the timeout only bounds how long work
   * waits if a dispatcher died between taking a wake-up and acting on it.
   */
  readonly wakeTimeoutS: number;
}

export const defaultDispatcherOptions: DispatcherOptions = {
  batch: 64,
  maxReads: 1024,
  enumerateMax: 256,
  stepBudgetMs: 2,
  wakeTimeoutS: 5,
};

/**
 * One dispatch step: at most `opts.batch` decisions and `opts.maxReads` reads, ending once
 * `opts.stepBudgetMs` has run out. Returns [made, more
 * work left, the earliest timer's due time (ms since the epoch) or undefined when there is none].
 * `atMs` dates the decisions instead of Redis's clock (a rebuild replaying them).
 */
export async function dispatchStep(
  redis: RedisClient,
  workspace: string,
  opts: DispatcherOptions = defaultDispatcherOptions,
  atMs?: number,
): Promise<[made: number, more: boolean, nextDue: number | undefined]> {
  const k = workspaceKeys(workspace);
  const [made, more, nextDue] = (await runLua(
    redis,
    DISPATCH,
    [
      k.events,
      k.meta,
      k.queue,
      k.skillSets,
      k.candidates,
      k.stats,
      ...routingIndexKeys(k),
      k.timers,
      k.served,
    ],
    [
      k.prefix,
      workspace,
      opts.batch,
      opts.maxReads,
      opts.enumerateMax,
      atMs ?? '',
      Math.max(0, Math.round(opts.stepBudgetMs * 1000)),
    ],
  )) as [number, number, number];
  return [made, more === 1, nextDue >= 0 ? nextDue : undefined];
}

/** Most timers one clock step fires. */
export const CLOCK_BATCH = 256;

/**
 * Fires the workspace's due timers as commands (at most CLOCK_BATCH a step, steps until none is
 * due). Returns the timers fired and the next due time (ms since the epoch), or undefined; with
 * `named`, the command ids the step appended too (`timer:<member>:<due ms>`).
 */
export async function fireTimers(
  redis: RedisClient,
  workspace: string,
  nowMs?: number,
  o: { readonly named?: boolean } = {},
): Promise<{ fired: number; nextDue: number | undefined; commandIds: string[] }> {
  const k = workspaceKeys(workspace);
  let fired = 0;
  const commandIds: string[] = [];
  for (;;) {
    const [n, next, ...ids] = (await runLua(
      redis,
      CLOCK,
      [k.timers, k.commands],
      [CLOCK_BATCH, nowMs ?? '', ...(o.named ? ['1'] : [])],
    )) as [number, number, ...string[]];
    fired += n;
    for (const id of ids) commandIds.push(id);
    if (n < CLOCK_BATCH) return { fired, nextDue: next < 0 ? undefined : next, commandIds };
  }
}

/**
 * Runs routing decisions until no work is left; returns the assignments made. `observe` is told
 * each step's duration (seconds) and workspace: the dispatcher's step-duration metric.
 */
export async function dispatchPending(
  redis: RedisClient,
  workspace: string,
  opts: DispatcherOptions = defaultDispatcherOptions,
  observe?: (seconds: number, workspace: string) => void,
): Promise<number> {
  return (await dispatchUntilDone(redis, workspace, opts, observe)).made;
}

/** dispatchPending, and when the earliest timer is due after the last step (undefined: none). */
export async function dispatchUntilDone(
  redis: RedisClient,
  workspace: string,
  opts: DispatcherOptions = defaultDispatcherOptions,
  observe?: (seconds: number, workspace: string) => void,
): Promise<{ made: number; nextDue: number | undefined }> {
  let total = 0;
  for (;;) {
    const started = performance.now();
    const [made, more, nextDue] = await dispatchStep(redis, workspace, opts);
    observe?.((performance.now() - started) / 1000, workspace);
    total += made;
    if (!more) return { made: total, nextDue };
  }
}

/** How often a dispatcher loop reads Redis's clock again (its offset from this host's drifts). */
export const CLOCK_OFFSET_EVERY_MS = 60_000;

/**
 * Most round trips a dispatcher loop's read of Redis's clock takes (it stops at the first quick
 * one): the loop keeps the shortest, see redisClockOffset.
 */
export const CLOCK_OFFSET_SAMPLES = 3;

/**
 * Redis's clock minus this host's, ms, as the node that holds `key` tells it (readRedisClock:
 * up to `samples` round trips, the shortest's middle).
 */
export async function redisClockOffset(redis: RedisClient, key: string, samples = 1): Promise<number> {
  const r = await readRedisClock(redis, key, samples);
  return r.redisAt - (r.perfAt + r.drift);
}

/**
 * How often a dispatcher loop with a timer pending marks its workspace in the registry as active
 * until its last pending timer's due time: the runners let a discovered workspace go once it had
 * no command for a while (10 minutes by default), and its timers (a maximum wait of an hour, a long
 * wrap-up) would not fire, nor their commands be applied, until its next command. Much shorter
 * than that while, so a mark never lapses between two. The mark is the last timer's, not the
 * earliest's: marked until an offer's expiry a second away, a workspace whose dispatcher then
 * stopped for longer than the idle window was not served again, and its maximum waits never fired
 * (test/workers/timers-edges-1.test.ts). A loop that ends marks once more (a stop), and one that
 * finds no timer left takes back a mark in the future (a long maximum wait, then the contact
 * assigned), so the workspace goes idle as its commands say. A command's own mark only ever raises
 * it (src/adapters/redis/command-log.ts).
 */
export const MARK_PENDING_EVERY_MS = 60_000;

/** The dispatcher role: blocks on the workspace's wake set and routes whatever is waiting. */
export class Dispatcher {
  private readonly loops: BlockingLoops;
  assignments = 0;
  timersFired = 0;
  /** Told each dispatch step's duration, seconds, and its workspace (the /metrics histogram). */
  observeStep: ((seconds: number, workspace: string) => void) | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly log: Logger,
    private readonly opts: DispatcherOptions = defaultDispatcherOptions,
  ) {
    this.loops = new BlockingLoops(redis);
  }

  run(workspace: string, running: () => boolean): Promise<void> {
    const k = workspaceKeys(workspace);
    return this.loops.run(workspace, async (conn, stopped) => {
      // The clock: fires what is due and sets an alarm for the next due time, which writes the
      // wake set then (a BZPOPMIN timeout would be noticed by an idle Redis only on its next
      // tick, up to 100 ms late at the default hz). It runs beside the next BZPOPMIN, off the
      // path from a wake-up to its decisions; the projector wakes this loop when it adds a timer.
      //
      // Due times are Redis's clock (the steps read TIME), and this host's may be off by seconds:
      // the alarm is set by Redis's time, from the offset read at the start and again every
      // CLOCK_OFFSET_EVERY_MS, or sooner when a clock step finds no timer due that the offset
      // said was (ahead, the loop would wake again and again until Redis's clock got there;
      // behind, every timer would fire that much late). Each read keeps the shortest of up to
      // CLOCK_OFFSET_SAMPLES round trips: one held up on this side (a busy start, a GC pause)
      // read Redis's clock as behind by half its length, and the timers fired that much late.
      // The offset is to this process's monotonic clock (performance.now()), which no jump of the
      // host's clock moves (an NTP step, a VM resumed): to Date.now(), a jump back of 30 s made
      // every timer fire 30 s late until the next read (test/routing/clocks-edges-1.test.ts). A
      // jump of either clock against the other (a host clock stepped; a paused VM, whose monotonic
      // clock may not count the pause) has Redis's clock read again at the next clock step.
      let offset = Date.now() - performance.now();
      let offsetReadAt = Number.NEGATIVE_INFINITY;
      let driftAtRead = offset;
      const drifted = (): boolean => Math.abs(Date.now() - performance.now() - driftAtRead) > CLOCK_DRIFT_MS;
      const readOffset = async (): Promise<void> => {
        try {
          const r = await readRedisClock(this.redis, k.timers, CLOCK_OFFSET_SAMPLES);
          driftAtRead = r.drift;
          offset = r.redisAt - r.perfAt;
          offsetReadAt = performance.now();
        } catch (err) {
          this.log.debug({ workspace, err: (err as Error).message }, "could not read Redis's clock");
        }
      };
      const redisNow = (): number => performance.now() + offset;
      // The alarm is set by the clock step and by the dispatch steps, which run side by side:
      // each clock step and each wake-up's dispatch steps take a number as they start (`read()`,
      // before their first step is sent on this one client), and one that started before the
      // alarm's last setter moves it only earlier. A clock step reads the next due time, then may
      // read Redis's clock again (a round trip or three); an offer made meanwhile set an earlier
      // alarm, which the clock's older due time would otherwise replace: the offer would expire
      // late (test/workers/alarm-clock-race.test.ts). An alarm that rings early only wakes the
      // loop, whose dispatch step reads the next due time again.
      let reads = 0;
      const read = (): number => ++reads;
      let alarm: NodeJS.Timeout | undefined;
      /** When the alarm rings (performance.now() ms; +Infinity: none set), and the read it came from. */
      let alarmAt = Number.POSITIVE_INFINITY;
      let alarmRead = 0;
      let markedAt = Number.NEGATIVE_INFINITY;
      /** When the last mark lapses (performance.now() ms): above now, the workspace is marked for a timer. */
      let markedUntil = Number.NEGATIVE_INFINITY;
      /**
       * Marks the workspace active until its last pending timer's due time; with none, until now
       * (unless `pendingOnly`: then no mark).
       */
      const mark = async (pendingOnly = false): Promise<void> => {
        const [, last] = await this.redis.zrange(k.timers, -1, -1, 'WITHSCORES');
        if (last === undefined && pendingOnly) return;
        // The registry is scored by Redis's clock (redis-clock.ts), as the due times are.
        const now = await redisClockNow(this.redis);
        const at = performance.now();
        const until = Math.max(last === undefined ? 0 : Number(last), now);
        await this.redis.zadd(globalKeys.activeWorkspaces, until, workspace);
        markedUntil = at + (until - now);
      };
      const markAside = (): void => {
        markedAt = performance.now();
        mark().catch((err: Error) => {
          markedAt = Number.NEGATIVE_INFINITY;
          this.log.debug({ workspace, err: err.message }, 'could not mark the workspace active');
        });
      };
      /**
       * The next due time the newest read that set or cleared the alarm gave (whether or not an
       * alarm was set for it), and that read. (A read that found a timer due now runs the clock.)
       */
      let lastDue: number | undefined;
      let lastDueRead = 0;
      const setAlarm = (nextDue: number | undefined, readNo: number): void => {
        if (readNo >= lastDueRead) {
          lastDue = nextDue;
          lastDueRead = readNo;
        }
        if (running()) {
          if (nextDue !== undefined && performance.now() - markedAt >= MARK_PENDING_EVERY_MS) markAside();
          else if (nextDue === undefined && markedUntil > performance.now()) markAside();
        }
        const untilDue = nextDue === undefined ? Number.POSITIVE_INFINITY : nextDue - redisNow();
        const at =
          untilDue < this.opts.wakeTimeoutS * 1000 && running()
            ? performance.now() + Math.max(0, untilDue)
            : Number.POSITIVE_INFINITY;
        if (readNo < alarmRead && at >= alarmAt) return;
        alarmRead = Math.max(alarmRead, readNo);
        clearTimeout(alarm);
        alarm = undefined;
        alarmAt = at;
        if (at !== Number.POSITIVE_INFINITY)
          alarm = setTimeout(
            () => {
              alarm = undefined;
              alarmAt = Number.POSITIVE_INFINITY;
              this.redis.zadd(k.wake, 0, 'w').catch(() => {});
            },
            Math.max(0, untilDue),
          );
      };
      const clock = async (): Promise<void> => {
        const readNo = read();
        const { fired, nextDue } = await this.tick(workspace);
        const stale = fired === 0 && nextDue !== undefined && nextDue <= redisNow();
        if (stale || drifted() || performance.now() - offsetReadAt >= CLOCK_OFFSET_EVERY_MS)
          await readOffset();
        setAlarm(nextDue, readNo);
      };
      const clockAside = (): void => {
        clock().catch((err: Error) =>
          this.log.warn(
            { workspace, err: err.message },
            `the clock step failed; tried again at a later wake-up. ${ifItGoesOn(err)}`,
          ),
        );
      };
      // After the decisions of a wake-up: the clock step only when a timer is due (the last
      // dispatch step read the earliest), else the alarm for the earliest, which wakes this loop
      // then. A wake-up without a timer due (most: a contact queued, an agent freed) costs no step.
      const timersAfter = (nextDue: number | undefined, readNo: number): void => {
        if (nextDue !== undefined && nextDue <= redisNow()) clockAside();
        else setAlarm(nextDue, readNo);
      };
      try {
        await readOffset();
        await clock();
        const firstRead = read();
        const first = await dispatchUntilDone(this.redis, workspace, this.opts, this.observeStep);
        this.assignments += first.made;
        timersAfter(first.nextDue, firstRead);
        while (running()) {
          // Wakes for work (the projector and API write the wake set), at the clock's alarm, and
          // at least every wakeTimeoutS. A command queued while the connection is down is never
          // settled by disconnect(): race it with the interrupt and a deadline, so the loop cannot hang.
          const woke = await raceBlocking(
            conn.bzpopmin(k.wake, this.opts.wakeTimeoutS),
            stopped,
            this.opts.wakeTimeoutS * 1000 + 5000,
          );
          if (woke === STOPPED) return;
          const readNo = read();
          const { made, nextDue } = await dispatchUntilDone(
            this.redis,
            workspace,
            this.opts,
            this.observeStep,
          );
          this.assignments += made;
          if (made > 0) this.log.debug({ workspace, made }, 'assignments made');
          // Timers due now, and the alarm for those of the offers just made.
          timersAfter(nextDue, readNo);
        }
      } finally {
        // A timer pending as the loop ends: an alarm set, or one the last step read while the loop
        // was already ending (its lease gone while the step that made an offer ran: no alarm set).
        const alarmed = alarm !== undefined || lastDue !== undefined;
        clearTimeout(alarm);
        // Ending with a timer pending: marked until it, however long this process stays down (with
        // none, gone idle, not marked again); and the workspace woken, so a dispatcher already
        // blocked on it (the next holder, after a lease lapsed or handed back) reads the timer and
        // sets its own alarm instead of hearing of it at its BZPOPMIN timeout. Bounded: a stop does
        // not wait on a Redis that does not answer.
        let bound: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all([
            mark(true).catch(() => undefined),
            alarmed ? this.redis.zadd(k.wake, 0, 'w').catch(() => undefined) : undefined,
          ]),
          new Promise((resolve) => {
            bound = setTimeout(resolve, 1000);
          }),
        ]);
        clearTimeout(bound);
      }
    });
  }

  /**
   * The clock step: fires what is due (the commands it appends wake the projector, not this loop).
   * At debug, its line names the commands it appended (`timer:<member>:<due ms>`), as the step
   * returns them.
   */
  private async tick(workspace: string): Promise<{ fired: number; nextDue: number | undefined }> {
    const debug = this.log.isLevelEnabled('debug');
    const { fired, nextDue, commandIds } = await fireTimers(this.redis, workspace, undefined, {
      named: debug,
    });
    this.timersFired += fired;
    if (fired > 0 && debug) this.log.debug({ workspace, fired, commandIds }, 'timers fired');
    return { fired, nextDue };
  }

  interrupt(workspace: string): void {
    this.loops.interrupt(workspace);
  }
}
