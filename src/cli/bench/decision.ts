/**
 * `decision`: the cost of one routing decision against the queue length. Each of `queues` contacts
 * waits in a workspace of its own with no agent available; `decisions` agents then become
 * available one at a time, the queue lengths taking turns, and each dispatch step is timed
 * (including the Redis round trip); each queue holds a contact for every agent's skills. BENCH.md
 * wants the median with the longest queue under 1.5 times the median with the shortest.
 */
import { connectRedis } from '../../adapters/redis/client.ts';
import { appendCommand } from '../../adapters/redis/command-log.ts';
import { defaultDispatcherOptions, dispatchPending } from '../../dispatcher/dispatcher.ts';
import type { Command } from '../../domain/commands.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../projections/projector.ts';
import { type Rng, seededRandom } from '../sim/random.ts';
import { median, nowNs, percentile, round } from '../sim/stats.ts';
import {
  type Agent,
  appendAndProject,
  dropWorkspace,
  type Note,
  queueCommands,
  registerCommands,
  seedAgents,
  sharedRedisHint,
} from './workspace.ts';

/** Decisions per queue length made before the timed ones. */
export const DECISION_WARMUP = 20;

export interface DecisionOptions {
  /** Queue lengths to compare, each at least `decisions + DECISION_WARMUP`. */
  readonly queues: readonly number[];
  readonly decisions: number;
  readonly dispatchBatch: number;
  readonly projectBatch: number;
  readonly dispatchStepMs: number;
  readonly projectStepMs: number;
  readonly seed: number;
  readonly redisUrl: string | undefined;
}

export interface DecisionFigures {
  readonly medianUs: Record<string, number | null>;
  readonly p90Us: Record<string, number | null>;
  /** Median with the longest queue over median with the shortest (BENCH.md: under 1.5). */
  readonly ratio: number | null;
  readonly decisions: number;
}

/**
 * `size` contacts with the reference ACD's random skills, but the first one per agent needing that
 * agent's skills: every skill pair then has at least as many contacts as agents holding it, so each
 * agent made available finds one to take however short the queue (at least one per agent, as the
 * options check). With random skills only, a short queue could hold fewer contacts of a pair than
 * agents of it, and the run failed with an agent that made 0 assignments.
 */
function queueFor(agents: readonly Agent[], size: number, rng: Rng): Command[] {
  return queueCommands(size, rng).map((c, j) =>
    c.type === 'QueueContact' && j < agents.length ? { ...c, skills: agents[j]!.skills } : c,
  );
}

export async function decisionWorkload(
  url: string,
  base: string,
  o: DecisionOptions,
  note: Note,
): Promise<DecisionFigures> {
  const redis = connectRedis({ url });
  const dispatchOpts = {
    ...defaultDispatcherOptions,
    batch: o.dispatchBatch,
    stepBudgetMs: o.dispatchStepMs,
  };
  const projectOpts = { ...defaultProjectorOptions, batch: o.projectBatch, stepBudgetMs: o.projectStepMs };
  const workspaces = o.queues.map((size) => `${base}-decision-${size}`);
  try {
    // The same agents and the same kind of queue for every size: only the length differs.
    let agents: Agent[] = [];
    for (const [i, size] of o.queues.entries()) {
      const workspace = workspaces[i]!;
      const rng = seededRandom(o.seed);
      agents = seedAgents(DECISION_WARMUP + o.decisions, rng);
      await ensureGroup(redis, workspace);
      note(`queueing ${size} contacts in ${workspace}`);
      await appendAndProject(redis, workspace, registerCommands(agents));
      await appendAndProject(redis, workspace, queueFor(agents, size, rng), { chunk: 5000 });
      // Nobody is available: the dispatcher looks at every new contact once and finds no agent.
      const idle = await dispatchPending(redis, workspace, { ...dispatchOpts, batch: 1000 });
      if (idle !== 0) throw new Error(`expected no assignment with no agent available, got ${idle}`);
    }
    // Agents become available one at a time, the sizes taking turns, so warm-up and drift fall
    // on every size alike; the first few decisions of each are not timed.
    const times: number[][] = o.queues.map(() => []);
    note(`timing ${o.decisions} decisions per queue length`);
    for (const [n, a] of agents.entries()) {
      for (const [i, workspace] of workspaces.entries()) {
        await appendCommand(redis, {
          workspace,
          command: { type: 'ChangeAgentState', agentId: a.id, state: 'available' },
        });
        await projectPending(redis, workspace, [], projectOpts);
        const s = nowNs();
        const made = await dispatchPending(redis, workspace, dispatchOpts);
        const us = Number(nowNs() - s) / 1000;
        if (made !== 1)
          throw new Error(
            `agent ${a.id} made ${made} assignments in ${workspace}, expected 1${sharedRedisHint(o.redisUrl)}`,
          );
        if (n >= DECISION_WARMUP) times[i]!.push(us);
      }
    }
    const medianUs: Record<string, number | null> = {};
    const p90Us: Record<string, number | null> = {};
    o.queues.forEach((size, i) => {
      medianUs[String(size)] = round(median(times[i]!));
      p90Us[String(size)] = round(percentile(times[i]!, 90));
    });
    const first = median(times[0]!);
    const last = median(times[times.length - 1]!);
    return {
      medianUs,
      p90Us,
      ratio: first && last ? round(last / first, 2) : null,
      decisions: o.decisions,
    };
  } finally {
    if (o.redisUrl) for (const w of workspaces) await dropWorkspace(redis, w).catch(() => {});
    redis.disconnect();
  }
}
