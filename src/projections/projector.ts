import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { ifItGoesOn } from '../adapters/redis/advice.ts';
import { BlockingLoops, raceBlocking, STOPPED } from '../adapters/redis/client.ts';
import type { StepAppend } from '../adapters/redis/command-log.ts';
import { PROJECTOR_GROUP, routingIndexKeys, workspaceKeys } from '../adapters/redis/keys.ts';
import { luaScript, type RedisClient, runLua } from '../adapters/redis/scripts.ts';
import { MAX_SKILL_SETS_PER_SKILL } from '../domain/model.ts';

/** The projector's one Lua step (its file documents its keys and arguments). */
const PROJECT = luaScript('project', new URL('./lua/project-23.lua', import.meta.url), { slotGuard: true });

export interface ProjectorOptions {
  /** Most commands applied by one Lua step. */
  readonly batch: number;
  /**
   * How long one Lua step may hold Redis, in milliseconds (Redis's clock; 0: no bound but
   * `batch`): the step, looking at its clock every 4 commands, ends once this has run out, and
   * the loop sends the next. Fractions are taken to the microsecond.
   */
  readonly stepBudgetMs: number;
  /** How long XREADGROUP blocks before the loop looks for stranded work. */
  readonly blockMs: number;
  /** Entries a consumer has held this long without acknowledging are reclaimed by others. */
  readonly reclaimIdleMs: number;
  /**
   * A consumer of the group idle this long with no pending entries is removed from it: a live
   * projector touches its consumer at least every `blockMs`, so only a stopped or killed one's
   * (or one whose workspace went idle, which its next read creates again) is ever this idle.
   */
  readonly deadConsumerIdleMs: number;
  readonly outcomesKept: number;
  /**
   * How long an outcome stays in the outcome stream (approximately). Only requests waiting for
   * their command's outcome read it (COMMAND_TIMEOUT_MS, at most 60 s); a repeated
   * Idempotency-Key reads the copy its record keeps. Default 120 s.
   */
  readonly outcomesKeptMs?: number;
}

export const OUTCOMES_KEPT_MS = 120_000;

export const defaultProjectorOptions: ProjectorOptions = {
  batch: 200,
  stepBudgetMs: 2,
  blockMs: 2000,
  reclaimIdleMs: 5000,
  deadConsumerIdleMs: 600_000,
  outcomesKept: 100_000,
};

export async function ensureGroup(redis: RedisClient, workspace: string): Promise<void> {
  try {
    await redis.xgroup('CREATE', workspaceKeys(workspace).commands, PROJECTOR_GROUP, '0', 'MKSTREAM');
  } catch (err) {
    if (!/BUSYGROUP/.test((err as Error).message)) throw err;
  }
}

/**
 * Applies every command after the checkpoint (in batches) and acknowledges `delivered`.
 * Returns the number applied. Safe to call from any number of projectors at once.
 */
export async function projectPending(
  redis: RedisClient,
  workspace: string,
  delivered: readonly string[] = [],
  opts: ProjectorOptions = defaultProjectorOptions,
  /**
   * After each step that applied something: how many, the checkpoint it ended at and the commands
   * it refused (logging).
   */
  onStep?: StepLog,
  /**
   * Commands to append first, in the same step: the step appends them (a repeated Idempotency-Key
   * appends nothing) and applies them, so no projector's read wakes for them. `onAppended` gets
   * their answers (as append-command-4.lua's) as soon as the step answers, before any further
   * step; when the step cannot apply them, after `onAppended` the call fails as a failed step
   * does, and the commands stay for the next.
   */
  appends?: {
    readonly entries: readonly StepAppend[];
    readonly onAppended: (answers: readonly unknown[][]) => void;
  },
): Promise<number> {
  const k = workspaceKeys(workspace);
  let total = 0;
  let ack = delivered;
  let appending: readonly (string | number)[] = appendArgs(appends?.entries ?? []);
  for (;;) {
    const [applied, checkpoint, more, refused, answers, failure] = (await runLua(
      redis,
      PROJECT,
      [
        k.commands,
        k.events,
        k.outcomes,
        k.meta,
        k.queue,
        k.skillSets,
        k.candidates,
        k.wake,
        k.stats,
        ...routingIndexKeys(k),
        k.idempotency,
        k.agentSkillSets,
        k.idempotencyOutcomes,
        k.finished,
        k.timers,
        k.ended,
        k.idempotencyExpiry,
        k.agentIds,
      ],
      [
        k.prefix,
        workspace,
        PROJECTOR_GROUP,
        opts.batch,
        opts.outcomesKept,
        MAX_SKILL_SETS_PER_SKILL,
        opts.outcomesKeptMs ?? OUTCOMES_KEPT_MS,
        Math.max(0, Math.round(opts.stepBudgetMs * 1000)),
        ...appending,
        ...ack,
      ],
    )) as [number, string, number, (string | number)[]?, unknown[][]?, string?];
    if (appending.length > 1) {
      appending = NO_APPENDS;
      appends?.onAppended(answers ?? []);
    }
    if (applied < 0)
      throw new Error(`the projector step failed after appending: ${failure ?? 'unknown error'}`);
    if (applied > 0 && onStep) await onStep(applied, checkpoint, refusalsOf(refused ?? []));
    total += applied;
    ack = [];
    if (more !== 1) return total;
  }
}

const NO_APPENDS = ['0'] as const;

/** The step's append arguments (project-23.lua ARGV[9]): their count, then each command's. */
function appendArgs(appends: readonly StepAppend[]): readonly (string | number)[] {
  if (appends.length === 0) return NO_APPENDS;
  const args: (string | number)[] = [0];
  for (const a of appends)
    args.push(a.entry.length, a.idempotencyKey, a.fingerprint, a.idempotencyTtlS, a.commandId, ...a.entry);
  args[0] = args.length - 1;
  return args;
}

/** A command a step refused, as the step returns it. */
export interface Refusal {
  readonly position: string;
  readonly status: number;
  readonly problem: string;
  readonly title: string;
}

/** What a projector logs after a step (see Projector.logStep). */
export type StepLog = (applied: number, checkpoint: string, refused: readonly Refusal[]) => Promise<void>;

function refusalsOf(flat: readonly (string | number)[]): Refusal[] {
  const out: Refusal[] = [];
  for (let i = 0; i + 3 < flat.length; i += 4)
    out.push({
      position: String(flat[i]),
      status: Number(flat[i + 1]),
      problem: String(flat[i + 2]),
      title: String(flat[i + 3]),
    });
  return out;
}

type ReadGroupReply = [string, [string, string[]][]][] | null;

/** The fields of one consumer in an XINFO CONSUMERS reply. */
function consumerInfo(fields: unknown): { name: string; pending: number; idle: number } {
  const f = new Map<string, unknown>();
  const list = fields as unknown[];
  for (let i = 0; i + 1 < list.length; i += 2) f.set(String(list[i]), list[i + 1]);
  return { name: String(f.get('name')), pending: Number(f.get('pending')), idle: Number(f.get('idle')) };
}

/** One entry of the outcome stream: the command it answers and its status (and problem, if refused). */
interface StepOutcome {
  readonly commandId: string;
  readonly position: string;
  readonly status: number;
  readonly problem?: string;
  readonly title?: string;
}

function outcomeOf(fields: string[]): StepOutcome | undefined {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
  const position = f.get('position');
  if (!position) return undefined;
  let status = 0;
  let body: { type?: unknown; title?: unknown } = {};
  try {
    const o = JSON.parse(f.get('outcome') ?? '{}') as { status?: number; body?: typeof body };
    status = Number(o.status ?? 0);
    body = o.body ?? {};
  } catch {
    /* an outcome this code cannot read: logged with status 0 */
  }
  return {
    commandId: f.get('commandId') ?? '',
    position,
    status,
    ...(status >= 400 && typeof body.type === 'string' ? { problem: body.type } : {}),
    ...(status >= 400 && typeof body.title === 'string' ? { title: body.title } : {}),
  };
}

/**
 * The outcomes of the last `applied` commands up to `checkpoint`: one step's. The outcome stream
 * is in command order (each step starts at the checkpoint the previous one left), so they are
 * the last `applied` entries at or before the checkpoint; entries of a later step (another
 * projector's) come after them and are skipped. Bounded: three reads (or fewer lines).
 */
async function stepOutcomes(
  redis: RedisClient,
  workspace: string,
  applied: number,
  checkpoint: string,
): Promise<StepOutcome[]> {
  const k = workspaceKeys(workspace);
  let end = '+';
  const mine: StepOutcome[] = [];
  // Usually the step's own entries are the newest: the first read is all it takes. Outcomes of
  // later steps (another projector's) make the next reads larger.
  for (const more of [2, 200, 1000]) {
    if (mine.length >= applied) break;
    const entries = (await redis.xrevrange(k.outcomes, end, '-', 'COUNT', applied - mine.length + more)) as [
      string,
      string[],
    ][];
    for (const [id, fields] of entries) {
      end = `(${id}`;
      const o = outcomeOf(fields);
      if (!o || comparePositions(o.position, checkpoint) > 0) continue;
      if (mine.length < applied) mine.push(o);
    }
    if (entries.length === 0) break;
  }
  return mine.reverse();
}

function comparePositions(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const d = BigInt(am) - BigInt(bm) || BigInt(as) - BigInt(bs);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/** A command waiting to be appended by the next step `stepNow` sends. */
export interface PendingAppend {
  readonly append: StepAppend;
  /** With append-command-4.lua's answer. */
  resolve(answer: unknown[]): void;
  reject(err: unknown): void;
}

/** The projector role: one consumer of the workspace's command stream group. */
export class Projector {
  readonly consumer = `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  private readonly loops: BlockingLoops;
  applied = 0;
  /**
   * The last checkpoint a step of this process returned, per workspace (it only moves forward).
   * An entry the group delivers at or before it was applied already (by the step an API request
   * ran at once): acknowledging it is all there is left to do, no step needed.
   */
  private readonly checkpoints = new Map<string, string>();
  /** The step `stepNow` is running per workspace: the loop waits for it before it looks. */
  private readonly stepping = new Map<string, Promise<number>>();

  constructor(
    private readonly redis: RedisClient,
    private readonly log: Logger,
    private readonly opts: ProjectorOptions = defaultProjectorOptions,
  ) {
    this.loops = new BlockingLoops(redis);
  }

  /**
   * Whether Redis's checkpoint is before the one this process remembers for `workspace`: Redis came
   * back with less (a failover that lost writes, a restart from an older snapshot), so commands
   * delivered below the remembered one are new ones, not applied (each would have answered 202,
   * test/failover/rollback-edges-2.test.ts). Looked at before a delivery is taken as applied (a
   * cluster's failover gives the client no event to hang it on); the memory is then forgotten.
   */
  private async checkpointLost(workspace: string, known: string): Promise<boolean> {
    const stored = (await this.redis.hget(workspaceKeys(workspace).meta, 'applied')) ?? '0-0';
    if (comparePositions(stored, known) >= 0) return false;
    this.checkpoints.delete(workspace);
    return true;
  }

  /**
   * After each step that applied commands (its loop's and stepNow's): they are counted, and the
   * lines about single commands written: each command refused (info: its id, request
   * id, type, status and problem, from the step's own answer and the command's entry) and, at
   * debug, each command applied (from the outcome stream: one XREVRANGE per step, only then).
   */
  private readonly logStep = async (
    workspace: string,
    applied: number,
    checkpoint: string,
    refused: readonly Refusal[],
  ): Promise<void> => {
    // Counted as the step answers, before the lines' reads: the answers it released to requests
    // (stepNow's appends) must not reach a client before the count does.
    this.applied += applied;
    const known = this.checkpoints.get(workspace);
    if (known === undefined || comparePositions(checkpoint, known) > 0)
      this.checkpoints.set(workspace, checkpoint);
    try {
      if (this.log.isLevelEnabled('info'))
        for (const r of refused) {
          const command = await this.commandAt(workspace, r.position);
          this.log.info(
            {
              workspace,
              ...command,
              position: r.position,
              status: r.status,
              problem: r.problem,
              title: r.title,
            },
            'command refused',
          );
        }
      if (!this.log.isLevelEnabled('debug')) return;
      for (const o of await stepOutcomes(this.redis, workspace, applied, checkpoint))
        if (o.status < 400)
          this.log.debug(
            { workspace, commandId: o.commandId, position: o.position, status: o.status },
            'command applied',
          );
    } catch (err) {
      this.log.debug(
        { workspace, err: (err as Error).message },
        'could not read the outcomes of a step to log them',
      );
    }
  };

  /**
   * The `onStep` of projectPending for a step this projector's loop does not run itself (the
   * API's immediate step, composition-root.ts): its commands get the same lines.
   */
  stepLogger(workspace: string): StepLog {
    return (applied, checkpoint, refused) => this.logStep(workspace, applied, checkpoint, refused);
  }

  /** The request id and type of the command at `position` (or after `position` with `after`). */
  private async commandAt(
    workspace: string,
    position: string,
    after = false,
  ): Promise<{ commandId?: string; requestId?: string; type?: string; position?: string }> {
    const k = workspaceKeys(workspace);
    const [entry] = (await this.redis.xrange(
      k.commands,
      after ? `(${position}` : position,
      '+',
      'COUNT',
      1,
    )) as [string, string[]][];
    if (!entry || (!after && entry[0] !== position)) return {};
    const f = new Map<string, string>();
    for (let i = 0; i + 1 < entry[1].length; i += 2) f.set(entry[1][i]!, entry[1][i + 1]!);
    return {
      ...(f.has('commandId') ? { commandId: f.get('commandId') } : {}),
      ...(f.has('requestId') ? { requestId: f.get('requestId') } : {}),
      ...(f.has('type') ? { type: f.get('type') } : {}),
      position: entry[0],
    };
  }

  /**
   * A step for `workspace` now, outside the loop: for the commands API requests appended just
   * before (the loop's own wake-up for those entries then waits for it and sends nothing), and for
   * `appends`, which the step appends itself (no projector's read wakes for those; each gets its
   * position, or fails as its XADD would have).
   */
  stepNow(workspace: string, appends: readonly PendingAppend[] = []): Promise<number> {
    let answered = appends.length === 0;
    const step = projectPending(
      this.redis,
      workspace,
      [],
      this.opts,
      this.stepLogger(workspace),
      answered
        ? undefined
        : {
            entries: appends.map((a) => a.append),
            onAppended: (answers) => {
              answered = true;
              appends.forEach((a, i) => {
                const answer = answers[i];
                if (answer) a.resolve(answer);
                else a.reject(new Error('the projector step did not append the command'));
              });
            },
          },
    ).catch((err: unknown) => {
      // Not appended, or not known to be (the step's answer was lost): each append fails as an
      // XADD would.
      if (!answered) for (const a of appends) a.reject(err);
      throw err;
    });
    this.stepping.set(workspace, step);
    const forget = () => {
      if (this.stepping.get(workspace) === step) this.stepping.delete(workspace);
    };
    step.then(forget, forget);
    return step;
  }

  /** A step that failed names the command it was to apply first (the one after the checkpoint). */
  private async project(workspace: string, delivered: readonly string[]): Promise<number> {
    try {
      return await projectPending(this.redis, workspace, delivered, this.opts, (n, checkpoint, refused) =>
        this.logStep(workspace, n, checkpoint, refused),
      );
    } catch (err) {
      const next = await this.redis
        .hget(workspaceKeys(workspace).meta, 'applied')
        .then((applied) => this.commandAt(workspace, applied ?? '0-0', true))
        .catch(() => ({}));
      this.log.warn(
        { workspace, ...next, err: (err as Error).message },
        `a projector step failed; the command after the checkpoint is not applied yet. ${ifItGoesOn(err)}`,
      );
      throw err;
    }
  }

  async run(workspace: string, running: () => boolean): Promise<void> {
    const k = workspaceKeys(workspace);
    await ensureGroup(this.redis, workspace);
    await this.loops.run(workspace, async (conn, stopped) => {
      await this.project(workspace, []);
      let lastReclaim = Date.now();
      let lastPrune = Date.now();
      while (running()) {
        // One entry is enough to wake: the Lua step reads the batch itself, from the checkpoint,
        // and moves the group's delivery point there, so no entry is read twice.
        const read = await raceBlocking(
          conn.xreadgroup(
            'GROUP',
            PROJECTOR_GROUP,
            this.consumer,
            'COUNT',
            1,
            'BLOCK',
            this.opts.blockMs,
            'STREAMS',
            k.commands,
            '>',
          ),
          stopped,
          this.opts.blockMs + 5000,
        );
        if (read === STOPPED) return;
        const reply = read as ReadGroupReply;
        const ids = reply?.[0]?.[1].map((e) => e[0]) ?? [];
        await this.stepping.get(workspace)?.catch(() => {});
        const known = this.checkpoints.get(workspace);
        let n = 0;
        if (
          ids.length > 0 &&
          known !== undefined &&
          ids.every((id) => comparePositions(id, known) <= 0) &&
          !(await this.checkpointLost(workspace, known))
        ) {
          // Applied already, and so acknowledged already: the step that applied an entry
          // acknowledges it whoever it was delivered to, and moves the group's delivery point past
          // it (an entry is never delivered after the step that applied it). Nothing to send.
        } else {
          // With nothing delivered, still look: a projector that died may hold commands unapplied.
          n = await this.project(workspace, ids);
        }
        if (n > 0) this.log.debug({ workspace, applied: n, delivered: ids.length }, 'commands applied');
        if (Date.now() - lastReclaim > this.opts.reclaimIdleMs) {
          lastReclaim = Date.now();
          await this.reclaim(workspace);
          // After the reclaim, so a dead consumer's entries are taken over before it is removed.
          if (Date.now() - lastPrune >= Math.min(this.opts.deadConsumerIdleMs / 2, 60_000)) {
            lastPrune = Date.now();
            await this.removeDeadConsumers(workspace);
          }
        }
      }
    });
  }

  /** Takes over entries a dead consumer was delivered and never acknowledged. */
  async reclaim(workspace: string): Promise<number> {
    const k = workspaceKeys(workspace);
    const [, claimed] = (await this.redis.xautoclaim(
      k.commands,
      PROJECTOR_GROUP,
      this.consumer,
      this.opts.reclaimIdleMs,
      '0-0',
      'COUNT',
      1000,
      'JUSTID',
    )) as [string, string[]];
    if (claimed.length === 0) return 0;
    this.log.info(
      { workspace, entries: claimed.length, positions: claimed.slice(0, 20) },
      'reclaimed commands of a stopped projector',
    );
    await this.project(workspace, claimed);
    return claimed.length;
  }

  /**
   * Removes from the group the consumers idle for `deadConsumerIdleMs` that hold no pending
   * entries (a stopped or killed projector's; one still holding entries is kept until `reclaim`
   * takes them over). Returns the names removed.
   */
  async removeDeadConsumers(workspace: string): Promise<string[]> {
    const k = workspaceKeys(workspace);
    const consumers = ((await this.redis.xinfo('CONSUMERS', k.commands, PROJECTOR_GROUP)) as unknown[]).map(
      consumerInfo,
    );
    const removed: string[] = [];
    for (const c of consumers) {
      if (c.name === this.consumer || c.pending > 0 || !(c.idle >= this.opts.deadConsumerIdleMs)) continue;
      // A consumer this idle is not reading, so it cannot have been given entries since XINFO; if
      // it was, those entries only leave the pending list: projection follows the checkpoint.
      const dropped = Number(await this.redis.xgroup('DELCONSUMER', k.commands, PROJECTOR_GROUP, c.name));
      removed.push(c.name);
      this.log.info(
        { workspace, consumer: c.name, idleMs: c.idle, ...(dropped > 0 ? { dropped } : {}) },
        'removed the consumer of a stopped projector',
      );
    }
    return removed;
  }

  interrupt(workspace: string): void {
    this.loops.interrupt(workspace);
  }
}
