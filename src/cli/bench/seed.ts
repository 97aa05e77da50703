/**
 * `seed`: the reference ACD's simulator workload as a dispatch drain. `contacts` contacts queued up
 * front, `agents` agents all available; the dispatcher step runs while every assignment at once
 * completes (zero handle time), so routing is the bottleneck. `routing` counts only the time
 * inside dispatchPending; `loop` the whole drain, including the CompleteContact appends and their
 * projection. With `offers` (`--offers`), the workspace's offerTimeoutMs is OFFERS_TIMEOUT_MS: each
 * decision is an offer, accepted (AcceptOffer) and then completed in the same round, so the cycle
 * has one more command appended and projected.
 */

import { connectRedis } from '../../adapters/redis/client.ts';
import { stepAppend } from '../../adapters/redis/command-log.ts';
import { workspaceKeys } from '../../adapters/redis/keys.ts';
import type { RedisClient } from '../../adapters/redis/scripts.ts';
import { defaultDispatcherOptions, dispatchPending } from '../../dispatcher/dispatcher.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../projections/projector.ts';
import { seededRandom } from '../sim/random.ts';
import { nowNs, round, seconds } from '../sim/stats.ts';
import {
  commandsShare,
  mainThreadCpuUs,
  perAssignment,
  SlowlogFull,
  scriptTimes,
  startScriptTiming,
} from './redis-time.ts';
import {
  appendAndProject,
  availableCommands,
  type Note,
  queueCommands,
  registerCommands,
  seedAgents,
  sharedRedisHint,
  uncovered,
} from './workspace.ts';

export interface SeedOptions {
  readonly agents: number;
  readonly contacts: number;
  /** Concurrent dispatch loops. */
  readonly clients: number;
  readonly dispatchBatch: number;
  readonly projectBatch: number;
  readonly dispatchStepMs: number;
  readonly projectStepMs: number;
  readonly seed: number;
  readonly redisUrl: string | undefined;
  /** Offers on: each decision is accepted (AcceptOffer) before its completion. */
  readonly offers?: boolean;
}

/** The offer timeout of `--offers`: long enough that no offer of the drain expires. */
export const OFFERS_TIMEOUT_MS = 60_000;

export interface SeedFigures {
  readonly assignments: number;
  /** Assignments per second of the dispatch step alone (time inside dispatchPending). */
  readonly routingPerS: number;
  /** Assignments per second of the whole drain, completes and projection included. */
  readonly loopPerS: number;
  readonly routingSeconds: number;
  readonly loopSeconds: number;
  /** Loop iterations: dispatch, then complete and project what it assigned. */
  readonly rounds: number;
  readonly unassignable: number;
  readonly setupSeconds: number;
  /**
   * Redis's own µs per assignment, per Lua step and in total, over the whole cycle (the contact
   * appended and projected, the dispatch, the completion appended and projected).
   */
  readonly redisUsPerAssignment?: Record<string, number>;
  /**
   * Of redisUsPerAssignment's total, the share spent inside the Redis commands the steps ran (each
   * logged by SLOWLOG too); the rest is the steps' Lua: decoding and encoding documents, building
   * events and views, routing keys.
   */
  readonly redisCommandsShare?: number;
  /**
   * Redis main-thread CPU µs per assignment over the same cycle (INFO cpu), in the run without
   * SLOWLOG timing: everything the server did, the bench's own reads of the events included.
   */
  readonly redisCpuUsPerAssignment?: number;
}

/** Reads the AssignmentMade events after a cursor, one caller at a time. */
export function assignmentReader(workspace: string, from: string) {
  const read = decisionReader(workspace, from);
  /** The contacts of the new AssignmentMade events since the last call (serialized between loops). */
  return async (conn: RedisClient): Promise<string[]> => (await read(conn)).map((d) => d.contactId);
}

/** Like assignmentReader, with the agent of each decision (whom an offer is made to). */
export function decisionReader(workspace: string, from: string) {
  const k = workspaceKeys(workspace);
  let cursor = from;
  let reading: Promise<unknown> = Promise.resolve();
  return (conn: RedisClient): Promise<{ contactId: string; agentId: string }[]> => {
    const run = reading.then(async () => {
      const entries = (await conn.xrange(k.events, `(${cursor}`, '+', 'COUNT', 50_000)) as [
        string,
        string[],
      ][];
      const made: { contactId: string; agentId: string }[] = [];
      for (const [id, fields] of entries) {
        cursor = id;
        if (fields[1] !== 'AssignmentMade') continue;
        const env = JSON.parse(fields[3] ?? '{}') as { data?: { contactId?: string; agentId?: string } };
        if (env.data?.contactId)
          made.push({ contactId: env.data.contactId, agentId: env.data.agentId ?? '' });
      }
      return made;
    });
    reading = run.catch(() => {});
    return run;
  };
}

export async function seedWorkload(
  url: string,
  workspace: string,
  o: SeedOptions,
  note: Note,
): Promise<SeedFigures> {
  const figures = await seedRun(url, workspace, o, note, false);
  // Redis's time per step is read in a second run of its own (SLOWLOG at a 0 threshold slows
  // every call), and on a private Redis only (it changes the SLOWLOG settings).
  if (o.redisUrl !== undefined) return figures;
  note('again, with Redis timing each Lua step');
  const timed = await seedRun(url, `${workspace}-timed`, o, () => {}, true).catch((err: unknown) => {
    // Too many steps for SLOWLOG to keep: the throughput figures stand, without the per-step ones.
    if (!(err instanceof SlowlogFull)) throw err;
    note(`no redisUsPerAssignment: ${err.message}`);
    return undefined;
  });
  if (timed === undefined) return figures;
  return {
    ...figures,
    ...(timed.redisUsPerAssignment ? { redisUsPerAssignment: timed.redisUsPerAssignment } : {}),
    ...(timed.redisCommandsShare !== undefined ? { redisCommandsShare: timed.redisCommandsShare } : {}),
  };
}

async function seedRun(
  url: string,
  workspace: string,
  o: SeedOptions,
  note: Note,
  timed: boolean,
): Promise<SeedFigures> {
  const redis = connectRedis({ url });
  const clients = [redis, ...Array.from({ length: o.clients - 1 }, () => connectRedis({ url }))];
  try {
    const k = workspaceKeys(workspace);
    const rng = seededRandom(o.seed);
    const agents = seedAgents(o.agents, rng);
    const contacts = queueCommands(o.contacts, rng);
    const unassignable = uncovered(agents, contacts);
    if (unassignable > 0)
      note(
        `${unassignable} contacts need a skill pair no agent holds; they stay queued (try another --seed)`,
      );
    const setupStart = nowNs();
    await ensureGroup(redis, workspace);
    note(`setting up ${o.agents} agents and ${o.contacts} contacts${o.offers ? ', offers on' : ''}`);
    if (o.offers)
      await appendAndProject(redis, workspace, [
        {
          type: 'ChangeSettings',
          offerTimeoutMs: OFFERS_TIMEOUT_MS,
          wrapUpMs: 0,
          missedOfferPresence: 'away',
          maxWaitMs: null,
        },
      ]);
    await appendAndProject(redis, workspace, registerCommands(agents));
    await appendAndProject(redis, workspace, availableCommands(agents));
    // From the contacts' appends and projection on: every step of an assignment's cycle.
    if (timed) await startScriptTiming(redis);
    const cpuStart = timed ? 0 : await mainThreadCpuUs(redis);
    await appendAndProject(redis, workspace, contacts);
    const setupSeconds = seconds(nowNs() - setupStart);
    const target = o.contacts - unassignable;

    // Where the drain's AssignmentMade events start.
    const takeAssigned = decisionReader(
      workspace,
      ((await redis.xrevrange(k.events, '+', '-', 'COUNT', 1)) as [string, string[]][])[0]?.[0] ?? '0-0',
    );

    const dispatchOpts = {
      ...defaultDispatcherOptions,
      batch: o.dispatchBatch,
      stepBudgetMs: o.dispatchStepMs,
    };
    const projectOpts = { ...defaultProjectorOptions, batch: o.projectBatch, stepBudgetMs: o.projectStepMs };
    let assignments = 0;
    let rounds = 0;
    let inFlight = 0;
    let since = 0n;
    let routingNs = 0n;
    let endNs: bigint | undefined;
    let idleStreak = 0;
    const hardStop = Date.now() + 600_000;
    note(`draining with ${o.clients} dispatch loop(s)`);
    const t0 = nowNs();

    const loop = async (conn: RedisClient) => {
      while (endNs === undefined && idleStreak <= 10 * o.clients && Date.now() < hardStop) {
        if (inFlight++ === 0) since = nowNs();
        let made: number;
        try {
          made = await dispatchPending(conn, workspace, dispatchOpts);
        } finally {
          if (--inFlight === 0) routingNs += nowNs() - since;
        }
        rounds++;
        assignments += made;
        if (assignments >= target) {
          endNs ??= nowNs();
          break;
        }
        // Zero handle time: every assigned contact completes at once (an offer is accepted
        // first: both are sent in this order on one connection); projecting the completions
        // puts the agents back in the availability sets (and on the work list).
        // The step appends them itself, as the API's step does for commands without an Idempotency-Key.
        const done = await takeAssigned(conn);
        const entries = done.flatMap(({ contactId, agentId }) => [
          ...(o.offers
            ? [stepAppend({ workspace, command: { type: 'AcceptOffer', contactId, agentId } })]
            : []),
          stepAppend({ workspace, command: { type: 'CompleteContact', contactId } }),
        ]);
        const applied = await projectPending(
          conn,
          workspace,
          [],
          projectOpts,
          undefined,
          entries.length > 0 ? { entries, onAppended: () => {} } : undefined,
        );
        idleStreak = made === 0 && done.length === 0 && applied === 0 ? idleStreak + 1 : 0;
      }
    };
    await Promise.all(clients.map((c) => loop(c)));
    const loopNs = (endNs ?? nowNs()) - t0;

    const recorded = Number((await redis.hget(k.stats, 'assignments')) ?? 0);
    if (recorded !== assignments)
      throw new Error(
        `the bench counted ${assignments} assignments, the workspace's stats ${recorded}${sharedRedisHint(o.redisUrl)}`,
      );
    if (assignments < target)
      throw new Error(`the drain stalled after ${assignments} of ${target} assignments`);
    const cpuUs = timed ? undefined : (await mainThreadCpuUs(redis)) - cpuStart;
    const times = timed ? await scriptTimes(redis) : undefined;
    const redisUs = times ? perAssignment(times, assignments) : undefined;
    return {
      assignments,
      routingPerS: Math.round(assignments / seconds(routingNs)),
      loopPerS: Math.round(assignments / seconds(loopNs)),
      routingSeconds: round(seconds(routingNs), 3) ?? 0,
      loopSeconds: round(seconds(loopNs), 3) ?? 0,
      rounds,
      unassignable,
      setupSeconds: round(setupSeconds, 2) ?? 0,
      ...(redisUs ? { redisUsPerAssignment: redisUs } : {}),
      ...(times ? { redisCommandsShare: commandsShare(times) } : {}),
      ...(cpuUs !== undefined && Number.isFinite(cpuUs)
        ? { redisCpuUsPerAssignment: Math.round((cpuUs / assignments) * 10) / 10 }
        : {}),
    };
  } finally {
    for (const c of clients) c.disconnect();
  }
}
