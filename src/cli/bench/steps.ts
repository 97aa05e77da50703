/**
 * `steps`: this checkout's routing steps against another checkout's (`--switchboard <dir>`), by
 * Redis's own clock. Both run on one Redis, each in a workspace of its own with the same agents,
 * and the rounds alternate between them (which one goes first alternates too). In a round each
 * queues the same contacts (as many as there are agents) and projects them, makes its agents
 * available, runs a dispatch step and projects the completions of what it assigned. Each step is
 * timed by Redis's commandstats (the µs of FCALL and EVALSHA, reset before the step), so both
 * meet the machine's speed as it moves: two separate runs of `seed` differ by more than the few
 * per cent a change to a step is worth, and the ratio of interleaved rounds does not. Each ratio is
 * the median of the rounds' own ratios, so a round in which the machine stalled one side (Redis's
 * µs are wall time inside the call) does not carry it; each side's µs are over all its rounds.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type AppendRequest, appendCommand } from '../../adapters/redis/command-log.ts';
import { entryType, parseFields, type StreamEntry } from '../../adapters/redis/event-log.ts';
import { workspaceKeys } from '../../adapters/redis/keys.ts';
import type { RedisClient } from '../../adapters/redis/scripts.ts';
import {
  type DispatcherOptions,
  defaultDispatcherOptions,
  dispatchPending,
} from '../../dispatcher/dispatcher.ts';
import type { Command } from '../../domain/commands.ts';
import {
  defaultProjectorOptions,
  ensureGroup,
  type ProjectorOptions,
  projectPending,
} from '../../projections/projector.ts';
import type { Rng } from '../sim/random.ts';
import { median } from '../sim/stats.ts';
import { redisStats } from './redis-time.ts';
import { availableCommands, type Note, queueCommands, registerCommands, seedAgents } from './workspace.ts';

export interface StepsOptions {
  readonly agents: number;
  readonly rounds: number;
  readonly seed: number;
  /** The root of the other checkout. */
  readonly switchboard: string;
}

/** Redis µs a step spends per command it applies or decision it makes. */
export interface StepCosts {
  readonly queueUs: number;
  readonly dispatchUs: number;
  readonly completeUs: number;
  /** The three: one contact queued, assigned and completed. */
  readonly cycleUs: number;
  readonly decisions: number;
}

export interface StepsFigures {
  readonly rounds: number;
  readonly this: StepCosts;
  readonly other: StepCosts;
  /** This checkout's cost over the other's in a round, the median over rounds, per step and for the cycle (below 1: this is cheaper). */
  readonly ratio: {
    readonly queue: number;
    readonly dispatch: number;
    readonly complete: number;
    readonly cycle: number;
  };
}

/** What the workload calls of a checkout: its append, its steps and their default options. */
interface Tree {
  appendCommand(redis: RedisClient, req: AppendRequest): Promise<unknown>;
  ensureGroup(redis: RedisClient, workspace: string): Promise<void>;
  projectPending(
    redis: RedisClient,
    workspace: string,
    delivered: string[],
    opts: ProjectorOptions,
  ): Promise<number>;
  dispatchPending(redis: RedisClient, workspace: string, opts: DispatcherOptions): Promise<number>;
  readonly defaultProjectorOptions: ProjectorOptions;
  readonly defaultDispatcherOptions: DispatcherOptions;
}

const THIS: Tree = {
  appendCommand,
  ensureGroup,
  projectPending,
  dispatchPending,
  defaultProjectorOptions,
  defaultDispatcherOptions,
};

/**
 * The other checkout's modules, loaded from its own files (they load its own Lua). Through tsx's
 * own loader, asked for here: the bench may run from a build, without tsx registered.
 */
async function treeOf(root: string): Promise<Tree> {
  const { tsImport } = await import('tsx/esm/api');
  const load = (file: string) => tsImport(pathToFileURL(path.join(root, file)).href, import.meta.url);
  const [log, projector, dispatcher] = await Promise.all([
    load('src/adapters/redis/command-log.ts'),
    load('src/projections/projector.ts'),
    load('src/dispatcher/dispatcher.ts'),
  ]);
  return {
    appendCommand: log.appendCommand,
    ensureGroup: projector.ensureGroup,
    projectPending: projector.projectPending,
    dispatchPending: dispatcher.dispatchPending,
    defaultProjectorOptions: projector.defaultProjectorOptions,
    defaultDispatcherOptions: dispatcher.defaultDispatcherOptions,
  };
}

/** Redis µs inside Lua steps (Redis Functions, or scripts for a tree that runs them so) while `run` runs. */
async function stepUs(redis: RedisClient, run: () => Promise<unknown>): Promise<number> {
  await redis.config('RESETSTAT');
  await run();
  return (await redisStats(redis)).evalUs;
}

interface Side {
  readonly tree: Tree;
  readonly workspace: string;
  lastEvent: string;
  /** Each round's µs and counts, in order. */
  readonly rounds: Tally[];
}

interface Tally {
  us: { queue: number; dispatch: number; complete: number };
  counts: { queued: number; decisions: number; completed: number };
}

const newTally = (): Tally => ({
  us: { queue: 0, dispatch: 0, complete: 0 },
  counts: { queued: 0, decisions: 0, completed: 0 },
});

export async function stepsWorkload(
  redis: RedisClient,
  workspace: string,
  o: StepsOptions,
  random: (seed: number) => Rng,
  note: Note,
): Promise<StepsFigures> {
  note(`loading the steps of ${o.switchboard}`);
  const sides: Side[] = [
    { tree: THIS, workspace: `${workspace}-this` },
    { tree: await treeOf(o.switchboard), workspace: `${workspace}-other` },
  ].map((s) => ({
    ...s,
    lastEvent: '0-0',
    rounds: [],
  }));
  const rng = random(o.seed);
  const agents = seedAgents(o.agents, rng);
  const append = (s: Side, commands: readonly Command[]) =>
    Promise.all(commands.map((command) => s.tree.appendCommand(redis, { workspace: s.workspace, command })));
  const project = (s: Side) =>
    s.tree.projectPending(redis, s.workspace, [], { ...s.tree.defaultProjectorOptions, batch: 200 });
  for (const s of sides) {
    await s.tree.ensureGroup(redis, s.workspace);
    await append(s, registerCommands(agents));
    await project(s);
  }

  note(`${o.rounds} rounds of ${o.agents} contacts, alternating between this checkout and the other`);
  for (let r = 0; r < o.rounds; r++) {
    const contacts = queueCommands(o.agents, rng, `r${r + 1}`);
    for (const s of r % 2 === 0 ? sides : [...sides].reverse()) {
      const t = newTally();
      s.rounds.push(t);
      await append(s, contacts);
      t.us.queue = await stepUs(redis, () => project(s));
      t.counts.queued = contacts.length;
      await append(s, availableCommands(agents));
      await project(s);
      t.us.dispatch = await stepUs(redis, async () => {
        t.counts.decisions = await s.tree.dispatchPending(redis, s.workspace, {
          ...s.tree.defaultDispatcherOptions,
          batch: 64,
        });
      });
      // What it assigned, from its AssignmentMade events.
      const events = (await redis.xrange(
        workspaceKeys(s.workspace).events,
        `(${s.lastEvent}`,
        '+',
      )) as StreamEntry[];
      s.lastEvent = events.at(-1)?.[0] ?? s.lastEvent;
      const assigned = events
        .filter((e) => entryType(e) === 'AssignmentMade')
        .map((e) => (JSON.parse(parseFields(e[1]).event!) as { data: { contactId: string } }).data.contactId);
      await append(
        s,
        assigned.map((contactId): Command => ({ type: 'CompleteContact', contactId })),
      );
      t.us.complete = await stepUs(redis, () => project(s));
      t.counts.completed = assigned.length;
    }
  }

  const costs = ({ us, counts }: Tally): StepCosts => {
    const queueUs = us.queue / Math.max(1, counts.queued);
    const dispatchUs = us.dispatch / Math.max(1, counts.decisions);
    const completeUs = us.complete / Math.max(1, counts.completed);
    return {
      queueUs,
      dispatchUs,
      completeUs,
      cycleUs: queueUs + dispatchUs + completeUs,
      decisions: counts.decisions,
    };
  };
  const total = (rounds: readonly Tally[]): Tally =>
    rounds.reduce((sum, { us, counts }) => {
      for (const k of ['queue', 'dispatch', 'complete'] as const) sum.us[k] += us[k];
      for (const k of ['queued', 'decisions', 'completed'] as const) sum.counts[k] += counts[k];
      return sum;
    }, newTally());
  const [mine, theirs] = sides.map((s) => costs(total(s.rounds))) as [StepCosts, StepCosts];
  if (mine.decisions !== theirs.decisions)
    note(
      `the two checkouts made different decisions (${mine.decisions} and ${theirs.decisions}): their rounds differ`,
    );
  const r1 = (c: StepCosts): StepCosts => ({
    queueUs: Math.round(c.queueUs * 10) / 10,
    dispatchUs: Math.round(c.dispatchUs * 10) / 10,
    completeUs: Math.round(c.completeUs * 10) / 10,
    cycleUs: Math.round(c.cycleUs * 10) / 10,
    decisions: c.decisions,
  });
  const [myRounds, theirRounds] = sides.map((s) => s.rounds.map(costs)) as [StepCosts[], StepCosts[]];
  return {
    rounds: o.rounds,
    this: r1(mine),
    other: r1(theirs),
    ratio: roundsRatio(myRounds, theirRounds),
  };
}

/** The median over rounds of one side's cost over the other's in the same round, per step and for the cycle. */
export function roundsRatio(mine: readonly StepCosts[], theirs: readonly StepCosts[]): StepsFigures['ratio'] {
  const ratio = (k: 'queueUs' | 'dispatchUs' | 'completeUs' | 'cycleUs') =>
    Math.round((median(mine.map((c, i) => c[k] / theirs[i]![k])) ?? Number.NaN) * 1000) / 1000;
  return {
    queue: ratio('queueUs'),
    dispatch: ratio('dispatchUs'),
    complete: ratio('completeUs'),
    cycle: ratio('cycleUs'),
  };
}
