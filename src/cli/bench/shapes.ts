/**
 * Pool shapes that make a routing step expensive when its cost grows with the pool or the queue
 * (BENCH.md's adversarial shapes and its `large` workload). Each reports the worst and the median
 * dispatch step, timed by the client and read from Redis's SLOWLOG (threshold 0 while measuring),
 * so a step that blocks the shard shows up whatever the client saw.
 */
import { workspaceKeys } from '../../adapters/redis/keys.ts';
import type { RedisClient } from '../../adapters/redis/scripts.ts';
import { dispatchPending } from '../../dispatcher/dispatcher.ts';
import type { Command } from '../../domain/commands.ts';
import type { AgentSelection } from '../../domain/model.ts';
import { routingSkill } from '../../domain/values.ts';
import { ensureGroup } from '../../projections/projector.ts';
import type { Rng } from '../sim/random.ts';
import { median, percentile, round } from '../sim/stats.ts';
import { type ScriptCall, scriptCalls, startScriptTiming } from './redis-time.ts';
import { appendAndProject } from './workspace.ts';

export interface StepFigures {
  /** Dispatch steps measured. */
  readonly steps: number;
  readonly medianStepMs: number | null;
  readonly p99StepMs: number | null;
  readonly worstStepMs: number | null;
  /** The slowest dispatch Lua step as Redis measured it, µs. */
  readonly worstRedisStepUs: number | null;
  readonly medianRedisStepUs: number | null;
  readonly assignments: number;
  /** Each dispatch Lua step as Redis timed it, µs, in the order they ran (only when asked: `steps`). */
  readonly redisStepsUs?: readonly number[];
}

/** Appends commands in pipelined chunks, projecting after each. */
export function sendAll(redis: RedisClient, workspace: string, commands: readonly Command[]): Promise<void> {
  return appendAndProject(redis, workspace, commands, { projectEvery: 1 });
}

/** Times dispatch steps and reads the dispatch scripts' own durations from SLOWLOG. */
export class StepClock {
  private readonly times: number[] = [];
  private assignments = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly workspace: string,
  ) {}

  async start(): Promise<void> {
    await startScriptTiming(this.redis);
  }

  /** Runs the dispatcher until it has nothing left, timing the whole drain as one sample. */
  async dispatch(): Promise<number> {
    const t0 = process.hrtime.bigint();
    const made = await dispatchPending(this.redis, this.workspace);
    this.times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    this.assignments += made;
    return made;
  }

  /** The figures; with `steps`, every dispatch step's µs too (oldest first). */
  async figures(steps = false): Promise<StepFigures> {
    return this.figuresFrom(await scriptCalls(this.redis), steps);
  }

  /** The figures from the steps SLOWLOG logged (scriptCalls), read once for several clocks. */
  figuresFrom(calls: readonly ScriptCall[], steps = false): StepFigures {
    const events = workspaceKeys(this.workspace).events;
    const redisSteps = calls
      .filter((c) => c.name === 'dispatch' && c.firstKey === events)
      .map((c) => c.us)
      .reverse();
    return {
      steps: this.times.length,
      medianStepMs: round(median(this.times), 3),
      p99StepMs: round(percentile(this.times, 99), 3),
      worstStepMs: round(this.times.length ? Math.max(...this.times) : null, 3),
      worstRedisStepUs: redisSteps.length ? Math.max(...redisSteps) : null,
      medianRedisStepUs: median(redisSteps),
      assignments: this.assignments,
      ...(steps ? { redisStepsUs: redisSteps } : {}),
    };
  }
}

/**
 * A shape set up, its measured changes still to make: `decide(i)` makes the i-th (a contact queued,
 * an agent made available, a completion) and runs the dispatcher, timed by `clock`; the
 * assignments it made.
 */
export interface ShapeRun {
  readonly clock: StepClock;
  readonly decisions: number;
  decide(i: number): Promise<number>;
}

/**
 * Shapes set up in workspaces of their own, their decisions then taken in turn (one of each, again
 * and again), each step timed by Redis: a change in the machine's speed during the run (a 2-core
 * machine's speed moves within minutes, and other processes take its cores) weighs on every shape
 * alike, so their ratio stays fair. `steps`: every step's µs too.
 */
export async function inTurn(
  redis: RedisClient,
  runs: readonly ShapeRun[],
  steps = false,
): Promise<StepFigures[]> {
  await startScriptTiming(redis);
  const most = Math.max(...runs.map((r) => r.decisions));
  for (let i = 0; i < most; i++) for (const r of runs) if (i < r.decisions) await r.decide(i);
  const calls = await scriptCalls(redis);
  return runs.map((r) => r.clock.figuresFrom(calls, steps));
}

/** The routing skills of `name` at `level`: the name and each level up to it (as the API expands them). */
const atLevel = (name: string, level: number): string[] =>
  Array.from({ length: level }, (_, i) => routingSkill(name, i + 1));

const register = (agentId: string, skills: string[], capacity = 1): Command => ({
  type: 'RegisterAgent',
  agentId,
  skills: [...skills].sort(),
  capacity,
});

/** A routing policy a shape runs under (workspace settings); none: strict priority, longest available. */
export interface Policy {
  readonly priorityWeightMs?: number;
  readonly agentSelection?: AgentSelection;
}
const available = (agentId: string): Command => ({ type: 'ChangeAgentState', agentId, state: 'available' });
const queue = (contactId: string, skills: string[], priority = 0, channel?: string): Command => ({
  type: 'QueueContact',
  contactId,
  skills: [...skills].sort(),
  priority,
  ...(channel !== undefined ? { channel } : {}),
});

/** The workspace declares `n` channels (voice and c01..): its settings otherwise the defaults. */
const channelsOf = (n: number): string[] =>
  ['voice', ...Array.from({ length: n - 1 }, (_, i) => `c${String(i + 1).padStart(2, '0')}`)].sort();
const declare = (channels: string[], policy: Policy = {}): Command => ({
  type: 'ChangeSettings',
  offerTimeoutMs: 0,
  wrapUpMs: 0,
  missedOfferPresence: 'away',
  maxWaitMs: null,
  channels,
  ...policy,
});
const settingsFor = (policy: Policy | undefined): Command[] =>
  policy && Object.keys(policy).length > 0 ? [declare(['voice'], policy)] : [];

/**
 * Multi-skill contacts against a split pool: n agents holding only A, n only B, one holding both
 * (made available last); `contacts` contacts needing [A, B] (the first goes to the AB agent, the
 * others find nobody); then `arrivals` agents holding A become available one by one, each with a
 * skill of its own besides (no contact needs it): each comes to a pool of its own, which looks
 * for work (an agent joining available agents of the same skills wakes no step: they serve the
 * same contacts).
 * With `levels`, the i-th agent of each side (and the i-th arrival) holds its skill at level
 * 1 + i mod 5, the AB agent both at 5, and the i-th contact needs A at minimum level 1 + i mod 5
 * and B at 1 + (i + 2) mod 5: the level check leaves a contact some of each side's pools, none
 * holding both skills.
 */
export async function splitSetUp(
  redis: RedisClient,
  workspace: string,
  o: { n: number; contacts: number; arrivals: number; levels?: boolean; policy?: Policy },
): Promise<ShapeRun> {
  await ensureGroup(redis, workspace);
  const level = (i: number) => (o.levels ? (i % 5) + 1 : 1);
  const needs = (i: number) =>
    o.levels ? [routingSkill('A', level(i)), routingSkill('B', level(i + 2))] : ['A', 'B'];
  const setup: Command[] = [...settingsFor(o.policy)];
  for (let i = 0; i < o.n; i++)
    setup.push(register(`a${i}`, atLevel('A', level(i))), register(`b${i}`, atLevel('B', level(i))));
  setup.push(register('ab', o.levels ? [...atLevel('A', 5), ...atLevel('B', 5)] : ['A', 'B']));
  for (let i = 0; i < o.arrivals; i++)
    setup.push(register(`late${i}`, [...atLevel('A', level(i)), `own${String(i).padStart(5, '0')}`]));
  for (let i = 0; i < o.n; i++) setup.push(available(`a${i}`), available(`b${i}`));
  setup.push(available('ab'));
  await sendAll(redis, workspace, setup);
  await dispatchPending(redis, workspace);
  const clock = new StepClock(redis, workspace);
  return {
    clock,
    decisions: o.contacts + o.arrivals,
    decide: async (i) => {
      await sendAll(redis, workspace, [
        i < o.contacts ? queue(`c${i}`, needs(i)) : available(`late${i - o.contacts}`),
      ]);
      return clock.dispatch();
    },
  };
}

/** Every k-subset of `items`, in order, stopping after `limit`. */
function subsets(items: readonly string[], k: number, limit: number): string[][] {
  const out: string[][] = [];
  const chosen: string[] = [];
  const walk = (from: number) => {
    if (out.length >= limit) return;
    if (chosen.length === k) {
      out.push([...chosen]);
      return;
    }
    for (let i = from; i < items.length && out.length < limit; i++) {
      chosen.push(items[i]!);
      walk(i + 1);
      chosen.pop();
    }
  };
  walk(0);
  return out;
}

/**
 * A many-skilled agent: one agent holding 32 skills against `contacts` queued contacts, each
 * needing a distinct set of 4 of those skills; the agent completes and takes work again `cycles` times.
 * With `channels`, the workspace declares that many and the contacts are spread over them (the
 * agent takes any channel, so its pool looks for queues on every one). With `levels`, the agent
 * holds every skill at level 5 (160 routing skills) and each contact needs its skills at minimum
 * levels 1..5.
 */
export async function wideSetUp(
  redis: RedisClient,
  workspace: string,
  o: { contacts: number; cycles: number; channels?: number; levels?: boolean; policy?: Policy },
): Promise<ShapeRun> {
  await ensureGroup(redis, workspace);
  const skills = Array.from({ length: 32 }, (_, i) => `s${String(i).padStart(2, '0')}`);
  const sets = subsets(skills, 4, o.contacts);
  const channels = channelsOf(o.channels ?? 1);
  const agentSkills = o.levels ? skills.flatMap((s) => atLevel(s, 5)) : skills;
  const needs = (set: string[], i: number) =>
    o.levels ? set.map((s, k) => routingSkill(s, ((i + k) % 5) + 1)) : set;
  await sendAll(redis, workspace, [
    ...(channels.length > 1 ? [declare(channels, o.policy)] : settingsFor(o.policy)),
    register('wide', agentSkills),
    ...sets.map((set, i) =>
      queue(`c${i}`, needs(set, i), i % 10, channels.length > 1 ? channels[i % channels.length] : undefined),
    ),
  ]);
  await dispatchPending(redis, workspace);
  const clock = new StepClock(redis, workspace);
  return {
    clock,
    // The agent made available, then each cycle: it completes what it holds and takes work again.
    decisions: 1 + o.cycles,
    decide: async (i) => {
      if (i === 0) {
        await sendAll(redis, workspace, [available('wide')]);
        return clock.dispatch();
      }
      const doc = JSON.parse((await redis.hget(workspaceKeys(workspace).agents, 'wide')) ?? '{}') as {
        activeContacts?: string[];
      };
      const held = doc.activeContacts?.[0];
      if (!held) return 0;
      await sendAll(redis, workspace, [{ type: 'CompleteContact', contactId: held }]);
      return clock.dispatch();
    },
  };
}

const LARGE_SKILLS = Array.from({ length: 50 }, (_, i) => `k${String(i).padStart(2, '0')}`);

function draw(rng: Rng, min: number, max: number): string[] {
  const n = min + Math.floor(rng() * (max - min + 1));
  const pool = [...LARGE_SKILLS];
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(...pool.splice(Math.floor(rng() * pool.length), 1));
  return out;
}

/** `large`'s skills of an agent: with levels, each at a level 1..5 (its routing skills up to it). */
const agentDraw = (rng: Rng, levels: boolean | undefined): string[] =>
  levels ? draw(rng, 3, 8).flatMap((s) => atLevel(s, 1 + Math.floor(rng() * 5))) : draw(rng, 3, 8);
/** `large`'s requirements of a contact: with levels, each at a minimum level 1..5. */
const contactDraw = (rng: Rng, levels: boolean | undefined): string[] =>
  levels ? draw(rng, 1, 3).map((s) => routingSkill(s, 1 + Math.floor(rng() * 5))) : draw(rng, 1, 3);

/**
 * BENCH.md's `large` workload at one queue length, set up: 50 skills, `agents` agents with 3..8 of
 * them, `queued` contacts needing 1..3 with priorities 0..9; each decision makes the next agent
 * available against the queue, and it takes the first contact it can serve. With `levels`, each
 * agent skill is at a level 1..5 and each requirement at a minimum level 1..5.
 */
export async function largeQueueSetUp(
  redis: RedisClient,
  workspace: string,
  o: { agents: number; queued: number; decisions: number; rng: Rng; levels?: boolean },
): Promise<ShapeRun> {
  await ensureGroup(redis, workspace);
  const agents = Array.from({ length: o.agents }, (_, i) => ({
    id: `g${i}`,
    skills: agentDraw(o.rng, o.levels),
  }));
  await sendAll(
    redis,
    workspace,
    agents.map((a) => register(a.id, a.skills)),
  );
  const contacts: Command[] = [];
  for (let i = 0; i < o.queued; i++)
    contacts.push(queue(`q${i}`, contactDraw(o.rng, o.levels), Math.floor(o.rng() * 10)));
  await sendAll(redis, workspace, contacts);
  await dispatchPending(redis, workspace);
  const clock = new StepClock(redis, workspace);
  return {
    clock,
    decisions: Math.min(o.decisions, o.agents),
    decide: async (i) => {
      await sendAll(redis, workspace, [available(agents[i]!.id)]);
      return clock.dispatch();
    },
  };
}

/**
 * `large` at every queue length: each set up first, then their decisions taken in turn (one at
 * each length, again and again), so a change in the machine's speed during the run (a 2-core
 * machine's speed moves within minutes) weighs on every length alike and their ratio stays fair.
 */
async function largeQueues(
  redis: RedisClient,
  base: string,
  o: ShapeOptions,
  rng: (seed: number) => Rng,
): Promise<Record<string, StepFigures>> {
  const set: ShapeRun[] = [];
  for (const size of o.sizes)
    set.push(
      await largeQueueSetUp(redis, `${base}-large-${size}`, {
        agents: o.agents,
        queued: size,
        decisions: o.decisions,
        rng: rng(o.seed),
        levels: o.levels,
      }),
    );
  const figures = await inTurn(redis, set);
  return Object.fromEntries(o.sizes.map((size, i) => [size, figures[i]!]));
}

/**
 * The `large` pool: every one of `agents` agents (3..8 of 50 skills) available and nobody
 * waiting; contacts needing 1..3 skills arrive one at a time. With `levels`, as largeQueue's.
 */
export async function largePool(
  redis: RedisClient,
  workspace: string,
  o: { agents: number; decisions: number; rng: Rng; levels?: boolean },
): Promise<StepFigures> {
  await ensureGroup(redis, workspace);
  const agents = Array.from({ length: o.agents }, (_, i) => ({
    id: `g${i}`,
    skills: agentDraw(o.rng, o.levels),
  }));
  await sendAll(redis, workspace, [
    ...agents.map((a) => register(a.id, a.skills)),
    ...agents.map((a) => available(a.id)),
  ]);
  await dispatchPending(redis, workspace);
  const clock = new StepClock(redis, workspace);
  await clock.start();
  for (let i = 0; i < o.decisions; i++) {
    await sendAll(redis, workspace, [queue(`p${i}`, contactDraw(o.rng, o.levels), Math.floor(o.rng() * 10))]);
    await clock.dispatch();
  }
  return clock.figures();
}

/**
 * Most-skilled's own worst case: `sets` agents (up to the limit of distinct skill sets per skill),
 * each with its own skill set holding A at a level 1..5 and a skill of its own, capacity 2, all
 * available; contacts needing A arrive one at a time and each is completed after the next arrives,
 * so every decision looks at every pool holding A.
 */
export async function skilledShape(
  redis: RedisClient,
  workspace: string,
  o: { sets: number; decisions: number; policy?: Policy },
): Promise<StepFigures> {
  await ensureGroup(redis, workspace);
  const ids = Array.from({ length: o.sets }, (_, i) => `k${i}`);
  await sendAll(redis, workspace, [
    ...settingsFor(o.policy),
    ...ids.map((id, i) => register(id, [routingSkill('A', (i % 5) + 1), `own${i}`], 2)),
    ...ids.map(available),
  ]);
  await dispatchPending(redis, workspace);
  const clock = new StepClock(redis, workspace);
  await clock.start();
  for (let i = 0; i < o.decisions; i++) {
    await sendAll(redis, workspace, [
      queue(`s${i}`, ['A'], i % 3),
      ...(i > 0 ? [{ type: 'CompleteContact' as const, contactId: `s${i - 1}` }] : []),
    ]);
    await clock.dispatch();
  }
  return clock.figures();
}

/** The policies `bench policy` compares, by name. */
export const POLICIES: Record<string, Policy> = {
  'longest-available': {},
  aged: { priorityWeightMs: 10_000 },
  'most-skilled': { agentSelection: 'most-skilled' },
  'least-occupied': { agentSelection: 'least-occupied' },
};

/**
 * Every routing policy on the shapes that cost it most: split (`n` + `n` agents), wide with levels
 * (`contacts` distinct sets), and most-skilled's walk over `sets` skill sets; the worst and median
 * dispatch step of each, as Redis times it.
 */
export async function policyWorkload(
  redis: RedisClient,
  base: string,
  o: { n: number; contacts: number; sets: number; decisions: number },
): Promise<object> {
  const names = Object.keys(POLICIES);
  // Split and wide: every policy set up first, then their decisions in turn; skilled one by one.
  const split: ShapeRun[] = [];
  const wide: ShapeRun[] = [];
  for (const name of names)
    split.push(
      await splitSetUp(redis, `${base}-${name}-split`, {
        n: o.n,
        contacts: 20,
        arrivals: o.decisions,
        policy: POLICIES[name],
      }),
    );
  const splitFigures = await inTurn(redis, split);
  for (const name of names)
    wide.push(
      await wideSetUp(redis, `${base}-${name}-wide`, {
        contacts: o.contacts,
        cycles: o.decisions,
        levels: true,
        policy: POLICIES[name],
      }),
    );
  const wideFigures = await inTurn(redis, wide);
  const out: Record<string, Record<string, StepFigures>> = {};
  let worst = 0;
  for (const [i, name] of names.entries()) {
    const runs = {
      split: splitFigures[i]!,
      wideLevels: wideFigures[i]!,
      skilled: await skilledShape(redis, `${base}-${name}-skilled`, {
        sets: o.sets,
        decisions: o.decisions,
        policy: POLICIES[name],
      }),
    };
    out[name] = runs;
    for (const r of Object.values(runs)) worst = Math.max(worst, r.worstRedisStepUs ?? 0);
  }
  return { policies: out, worstRedisStepUs: worst };
}

export type ShapeWorkload = 'split' | 'wide' | 'large';

export interface ShapeOptions {
  readonly sizes: readonly number[];
  readonly agents: number;
  readonly decisions: number;
  readonly seed: number;
  /** Agents' skills at levels 1..5, contacts needing minimum levels 1..5. */
  readonly levels?: boolean;
}

/** The sizes each shape compares when none are given: today's code took over 20 ms a step at the larger. */
export const DEFAULT_SIZES: Record<ShapeWorkload, readonly number[]> = {
  split: [2_000, 32_000],
  wide: [5_000, 35_000],
  large: [1_000, 100_000, 1_000_000],
};

/** Runs a shape at each size in a workspace of its own and compares the largest with the smallest. */
export async function shapeWorkload(
  redis: RedisClient,
  base: string,
  workload: ShapeWorkload,
  o: ShapeOptions,
  rng: (seed: number) => Rng,
): Promise<object> {
  let runs: Record<string, StepFigures> = {};
  if (workload === 'large') runs = await largeQueues(redis, base, o, rng);
  else {
    // Every size set up first, then their decisions in turn (as `large`'s queue lengths).
    const set: ShapeRun[] = [];
    for (const size of o.sizes) {
      const ws = `${base}-${workload}-${size}`;
      set.push(
        workload === 'split'
          ? await splitSetUp(redis, ws, { n: size, contacts: 20, arrivals: o.decisions, levels: o.levels })
          : await wideSetUp(redis, ws, { contacts: size, cycles: o.decisions, levels: o.levels }),
      );
    }
    const figures = await inTurn(redis, set);
    runs = Object.fromEntries(o.sizes.map((size, i) => [size, figures[i]!]));
  }
  const pool =
    workload === 'large'
      ? await largePool(redis, `${base}-large-pool`, {
          agents: o.agents,
          decisions: o.decisions,
          rng: rng(o.seed + 1),
          levels: o.levels,
        })
      : undefined;
  const all = [...Object.values(runs), ...(pool ? [pool] : [])];
  const first = runs[o.sizes[0]!]!;
  const last = runs[o.sizes[o.sizes.length - 1]!]!;
  const ratio =
    first.medianRedisStepUs && last.medianRedisStepUs
      ? round(last.medianRedisStepUs / first.medianRedisStepUs, 2)
      : null;
  return {
    runs,
    ...(pool ? { pool } : {}),
    medianRatioLargestToSmallest: ratio,
    worstRedisStepUs: Math.max(...all.map((r) => r.worstRedisStepUs ?? 0)),
  };
}
