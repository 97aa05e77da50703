/**
 * `cluster`: scale-out across shards. A workspace's keys share one hash tag, so a Redis Cluster
 * spreads workspaces over its masters and each master routes its own. This workload starts a
 * private single redis-server and a private 3-master Redis Cluster (no replicas, AOF off, as the
 * single one), picks workspace names so each master holds `PER_MASTER` of them, and runs the
 * `seed` cycle (contacts appended and projected, dispatch, completion appended and projected, zero
 * handle time) on them:
 *
 * 1. Aggregate assignments/s with 1, 2 and 3 masters busy at once (untimed), with each master's
 *    and this process's CPU over the run (and PER_MASTER workspaces on the single Redis).
 * 2. Redis's own µs per assignment (SLOWLOG, every Lua step of the cycle), on the single Redis and
 *    on each master in turn (one master busy at a time, so each is measured as the single one is):
 *    what being one shard of a cluster costs an assignment; and the throughput it implies when
 *    each master has a core of its own (1e6 / µs per assignment, times the masters).
 */
import os from 'node:os';
import { connectRedis } from '../../adapters/redis/client.ts';
import { appendCommand } from '../../adapters/redis/command-log.ts';
import { workspaceKeys } from '../../adapters/redis/keys.ts';
import type { RedisClient } from '../../adapters/redis/scripts.ts';
import { defaultDispatcherOptions, dispatchPending } from '../../dispatcher/dispatcher.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../projections/projector.ts';
import { type RedisClusterHandle, startRedisCluster } from '../../topology/redis-cluster.ts';
import { startRedisServer } from '../../topology/redis-server.ts';
import { seededRandom } from '../sim/random.ts';
import { median, nowNs, round, seconds } from '../sim/stats.ts';
import { perAssignment, scriptTimes, startScriptTiming } from './redis-time.ts';
import { assignmentReader } from './seed.ts';
import {
  type Agent,
  appendAndProject,
  availableCommands,
  type Note,
  queueCommands,
  registerCommands,
  seedAgents,
  uncovered,
} from './workspace.ts';

export interface ClusterBenchOptions {
  readonly agents: number;
  /** Contacts queued in each workspace. */
  readonly contacts: number;
  readonly dispatchBatch: number;
  readonly projectBatch: number;
  readonly dispatchStepMs: number;
  readonly projectStepMs: number;
  readonly seed: number;
}

/** Workspaces drained at once on each busy master (and on the single Redis). */
export const PER_MASTER = 2;
export const MASTERS = 3;

export interface ClusterPhase {
  readonly masters: number;
  readonly assignments: number;
  readonly assignmentsPerS: number;
  readonly seconds: number;
  /** CPU each master used over the phase, % of one core. */
  readonly redisCpuPercent: number[];
  /** CPU this process (the driver of every drain) used over the phase, % of one core. */
  readonly driverCpuPercent: number;
}

export interface ClusterFigures {
  readonly cores: number;
  /** The machine's 1-minute load average at the end (other processes included). */
  readonly loadAverage: number;
  readonly workspacesPerMaster: number;
  /** Timed rounds (single Redis, then each master, in turn); each figure is their median. */
  readonly rounds: number;
  /** Redis µs per assignment cycle on the single Redis (SLOWLOG), per Lua step and total. */
  readonly singleUsPerAssignment: Record<string, number>;
  /** The same on each master of the cluster (by port), one master busy at a time. */
  readonly masterUsPerAssignment: Record<string, Record<string, number>>;
  /** Redis main-thread CPU µs per assignment (INFO cpu) in the same timed runs. */
  readonly singleCpuUsPerAssignment: number | null;
  readonly masterCpuUsPerAssignment: Record<string, number | null>;
  /** The worst master's SLOWLOG total over the single Redis's. */
  readonly worstMasterRatio: number | null;
  /** The worst master's main-thread CPU per assignment over the single Redis's (target 1.2 at most). */
  readonly worstMasterCpuRatio: number | null;
  /** Aggregate assignments/s of PER_MASTER workspaces on the single Redis, at once. */
  readonly singleAssignmentsPerS: number;
  readonly phases: ClusterPhase[];
  /** 1e6 / the mean master µs per assignment: one master's ceiling when Redis is the bottleneck. */
  readonly modelPerMasterPerS: number | null;
  /** modelPerMasterPerS times the masters: the cluster's ceiling with a core per master. */
  readonly modelAggregatePerS: number | null;
  /** What the machine allowed, in words. */
  readonly limitedBy: string;
}

/** The options of a drain, with the assignments it must make in each workspace. */
interface Drain extends ClusterBenchOptions {
  readonly target: number;
}

const ROUNDS = 3;

export async function clusterWorkload(options: ClusterBenchOptions, note: Note): Promise<ClusterFigures> {
  const agents = seedAgents(options.agents, seededRandom(options.seed));
  const o: Drain = { ...options, target: options.contacts - uncovered(agents, contactsOf(options)) };
  const single = await startRedisServer({ appendonly: false });
  const one = connectRedis({ url: single.url }, { commandTimeout: 60_000 });
  let cluster: RedisClusterHandle | undefined;
  let redis: RedisClient | undefined;
  let clients: RedisClient[] = [];
  try {
    note('single Redis: throughput');
    const untimed = ['cs-run-a', 'cs-run-b'];
    await Promise.all(untimed.map((ws) => prepare(one, ws, agents, o)));
    const singlePerS = (await drainAll(one, untimed, o)).perS;

    note(`starting a Redis Cluster of ${MASTERS} masters (no replicas, AOF off)`);
    cluster = await startRedisCluster({
      masters: MASTERS,
      replicasPerMaster: 0,
      args: ['--appendonly', 'no'],
      // The bench's own throw-away cluster on loopback: it measures as the admin (CLUSTER KEYSLOT, INFO).
      openAdmin: true,
    });
    redis = connectRedis(
      { clusterNodes: cluster.nodes.map((n) => `${n.host}:${n.port}`) },
      { commandTimeout: 60_000 },
    );
    await redis.ping();
    const ports = cluster.nodes.map((n) => n.port);
    clients = ports.map((port) => connectRedis({ url: `redis://127.0.0.1:${port}` }));
    // Workspaces named so each master holds enough for every run: the throughput runs with 1, 2
    // and 3 masters busy, then the timed rounds.
    const names = await spreadWorkspaces(redis, ports, PER_MASTER * (MASTERS + ROUNDS));
    const phases: ClusterPhase[] = [];
    for (let busy = 1; busy <= MASTERS; busy++) {
      const ws = ports.slice(0, busy).flatMap((p) => names.get(p)!.splice(0, PER_MASTER));
      note(`${busy} master(s) busy: ${ws.length} workspaces drained at once`);
      await Promise.all(ws.map((w) => prepare(redis!, w, agents, o)));
      const cpu0 = await Promise.all(clients.map((c) => redisCpu(c)));
      const driver0 = process.cpuUsage();
      const run = await drainAll(redis, ws, o);
      const driver = process.cpuUsage(driver0);
      const cpu1 = await Promise.all(clients.map((c) => redisCpu(c)));
      phases.push({
        masters: busy,
        assignments: run.assignments,
        assignmentsPerS: run.perS,
        seconds: round(run.seconds, 3) ?? 0,
        redisCpuPercent: cpu1.map((c, i) => Math.round(((c - cpu0[i]!) / 1e6 / run.seconds) * 100)),
        driverCpuPercent: Math.round(((driver.user + driver.system) / 1e6 / run.seconds) * 100),
      });
    }

    // Timed after the throughput runs (scripts loaded, warm), in rounds that alternate the single
    // Redis and each master, so a busy moment of the machine falls on all of them alike.
    const singleRuns: Timed[] = [];
    const masterRuns = new Map<number, Timed[]>(ports.map((p) => [p, []]));
    for (let r = 0; r < ROUNDS; r++) {
      note(`timed round ${r + 1} of ${ROUNDS}: Redis µs per assignment, single Redis then each master`);
      const ws = [`cs-timed-${r}-a`, `cs-timed-${r}-b`];
      await Promise.all(ws.map((w) => prepare(one, w, agents)));
      singleRuns.push(await timedDrain(one, one, ws, o));
      for (const [i, port] of ports.entries()) {
        const mine = names.get(port)!.splice(0, PER_MASTER);
        await Promise.all(mine.map((w) => prepare(redis!, w, agents)));
        masterRuns.get(port)!.push(await timedDrain(redis, clients[i]!, mine, o));
      }
    }
    const singleUs = medianOf(singleRuns.map((t) => t.us));
    const masterUs = Object.fromEntries(ports.map((p) => [p, medianOf(masterRuns.get(p)!.map((t) => t.us))]));
    const totals = Object.values(masterUs).map((m) => m.total ?? 0);
    const meanUs = totals.reduce((a, b) => a + b, 0) / totals.length;
    const perMaster = meanUs > 0 ? Math.round(1e6 / meanUs) : null;
    const singleCpu = round(median(singleRuns.map((t) => t.cpuUs)));
    const masterCpu = ports.map((p) => [p, round(median(masterRuns.get(p)!.map((t) => t.cpuUs)))] as const);
    const cpus = masterCpu.map(([, us]) => us).filter((us): us is number => us !== null);
    const cores = os.cpus().length;
    return {
      cores,
      loadAverage: round(os.loadavg()[0] ?? 0, 2) ?? 0,
      workspacesPerMaster: PER_MASTER,
      rounds: ROUNDS,
      singleUsPerAssignment: singleUs,
      masterUsPerAssignment: masterUs,
      singleCpuUsPerAssignment: singleCpu,
      masterCpuUsPerAssignment: Object.fromEntries(masterCpu),
      worstMasterRatio: singleUs.total ? round(Math.max(...totals) / singleUs.total, 2) : null,
      worstMasterCpuRatio: singleCpu && cpus.length > 0 ? round(Math.max(...cpus) / singleCpu, 2) : null,
      singleAssignmentsPerS: singlePerS,
      phases,
      modelPerMasterPerS: perMaster,
      modelAggregatePerS: perMaster === null ? null : perMaster * MASTERS,
      limitedBy: limitedBy(cores, os.loadavg()[0] ?? 0, phases),
    };
  } finally {
    for (const c of clients) c.disconnect();
    redis?.disconnect();
    one.disconnect();
    await cluster?.stop();
    await single.stop();
  }
}

/** Each key's median over the records. */
function medianOf(list: readonly Record<string, number>[]): Record<string, number> {
  const keys = [...new Set(list.flatMap((r) => Object.keys(r)))];
  return Object.fromEntries(keys.map((k) => [k, median(list.flatMap((r) => (k in r ? [r[k]!] : []))) ?? 0]));
}

/** What bounded the aggregate, from the CPU each process used in the busiest phase. */
export function limitedBy(cores: number, load: number, phases: readonly ClusterPhase[]): string {
  const last = phases[phases.length - 1];
  if (!last) return 'not measured';
  const used = last.redisCpuPercent.reduce((a, b) => a + b, 0) + last.driverCpuPercent;
  const each = last.redisCpuPercent.map((p) => `${p}%`).join(', ');
  const saturated = used >= 0.85 * cores * 100;
  return (
    `${cores} cores, load average ${load.toFixed(1)} (other processes included). With ${last.masters} masters busy, ` +
    `the masters used ${each} of a core and the one driver process ${last.driverCpuPercent}%: ${used}% of the ` +
    `${cores * 100}% the cores have. ` +
    (saturated
      ? 'The cores were saturated: CPU, not the masters, bounds the aggregate.'
      : 'This run did not saturate the cores by itself: each drain is one sequential loop waiting on its round trips, and other processes took CPU too.') +
    ' The model is what a core per master would give.'
  );
}

/** CPU µs the server has used: the whole process, or its main thread only. */
async function redisCpu(redis: RedisClient, mainThread = false): Promise<number> {
  const info = (await redis.info('cpu')) as string;
  const suffix = mainThread ? '_main_thread' : '';
  const f = (name: string) => Number(new RegExp(`${name}${suffix}:([0-9.]+)`).exec(info)?.[1] ?? 0);
  return (f('used_cpu_sys') + f('used_cpu_user')) * 1e6;
}

/** The port of the master serving each slot, from CLUSTER SLOTS. */
export async function slotOwner(redis: RedisClient): Promise<(slot: number) => number | undefined> {
  const slots = await redis.cluster('SLOTS');
  return (slot) => {
    const range = slots.find(([from, to]) => slot >= from && slot <= to);
    return range?.[2]?.[1];
  };
}

/**
 * Picks workspace names (`bench-cluster-<i>`) until each master (by port) holds `each` of them.
 */
async function spreadWorkspaces(
  redis: RedisClient,
  ports: readonly number[],
  each: number,
): Promise<Map<number, string[]>> {
  const owner = await slotOwner(redis);
  const out = new Map<number, string[]>(ports.map((p) => [p, []]));
  for (let i = 0; i < 10_000 && [...out.values()].some((l) => l.length < each); i++) {
    const ws = `bench-cluster-${i}`;
    const slot = (await redis.cluster('KEYSLOT', workspaceKeys(ws).commands)) as number;
    const list = out.get(owner(slot) ?? -1);
    if (list && list.length < each) list.push(ws);
  }
  for (const [port, list] of out)
    if (list.length < each) throw new Error(`no workspace name found for the master on port ${port}`);
  return out;
}

/** Agents registered and available; with `o`, the contacts queued too (else by timedDrain). */
async function prepare(
  redis: RedisClient,
  workspace: string,
  agents: readonly Agent[],
  o?: Drain,
): Promise<void> {
  await ensureGroup(redis, workspace);
  await appendAndProject(redis, workspace, registerCommands(agents));
  await appendAndProject(redis, workspace, availableCommands(agents));
  if (o) await appendAndProject(redis, workspace, contactsOf(o));
}

const contactsOf = (o: ClusterBenchOptions) => queueCommands(o.contacts, seededRandom(o.seed + 1));

interface Timed {
  /** SLOWLOG µs per assignment, per Lua step and total. */
  readonly us: Record<string, number>;
  /** Main-thread CPU µs per assignment of the server (`node`) the workspaces are on. */
  readonly cpuUs: number;
}

/**
 * Queues the contacts and drains `workspaces` at once with Redis timing every Lua step (SLOWLOG on
 * every master), from the contacts' appends on: Redis's µs per assignment of the whole cycle, over
 * the steps of these workspaces (on a cluster, all on the master `node`).
 */
async function timedDrain(
  redis: RedisClient,
  node: RedisClient,
  workspaces: readonly string[],
  o: Drain,
): Promise<Timed> {
  await startScriptTiming(redis);
  const cpu0 = await redisCpu(node, true);
  await Promise.all(workspaces.map((ws) => appendAndProject(redis, ws, contactsOf(o))));
  const { assignments } = await drainAll(redis, workspaces, o);
  const cpuUs = (await redisCpu(node, true)) - cpu0;
  const tags = workspaces.map((w) => `{${w}}`);
  const times = await scriptTimes(redis, (c) => tags.some((t) => c.firstKey.includes(t)));
  return { us: perAssignment(times, assignments), cpuUs: cpuUs / assignments };
}

async function drainAll(
  redis: RedisClient,
  workspaces: readonly string[],
  o: Drain,
): Promise<{ assignments: number; perS: number; seconds: number }> {
  const t0 = nowNs();
  const made = await Promise.all(workspaces.map((ws) => drain(redis, ws, o)));
  const s = seconds(nowNs() - t0);
  const assignments = made.reduce((a, b) => a + b, 0);
  return { assignments, perS: Math.round(assignments / s), seconds: s };
}

/**
 * The seed cycle on one workspace until every contact is assigned: dispatch, then complete what
 * was assigned (zero handle time) and project the completions. Returns the assignments made.
 */
async function drain(redis: RedisClient, workspace: string, o: Drain): Promise<number> {
  const k = workspaceKeys(workspace);
  const dispatchOpts = {
    ...defaultDispatcherOptions,
    batch: o.dispatchBatch,
    stepBudgetMs: o.dispatchStepMs,
  };
  const projectOpts = { ...defaultProjectorOptions, batch: o.projectBatch, stepBudgetMs: o.projectStepMs };
  const queued = Number(await redis.hget(k.stats, 'assignments')) || 0;
  const takeAssigned = assignmentReader(
    workspace,
    ((await redis.xrevrange(k.events, '+', '-', 'COUNT', 1)) as [string, string[]][])[0]?.[0] ?? '0-0',
  );
  let assignments = 0;
  let idle = 0;
  const hardStop = Date.now() + 600_000;
  while (assignments < o.target && idle <= 10 && Date.now() < hardStop) {
    const made = await dispatchPending(redis, workspace, dispatchOpts);
    assignments += made;
    if (assignments >= o.target) break;
    const done = await takeAssigned(redis);
    await Promise.all(
      done.map((contactId) =>
        appendCommand(redis, { workspace, command: { type: 'CompleteContact', contactId } }),
      ),
    );
    const applied = await projectPending(redis, workspace, [], projectOpts);
    idle = made === 0 && done.length === 0 && applied === 0 ? idle + 1 : 0;
  }
  if (assignments < o.target)
    throw new Error(`${workspace}: the drain stalled after ${assignments} of ${o.target} assignments`);
  const recorded = (Number(await redis.hget(k.stats, 'assignments')) || 0) - queued;
  if (recorded !== assignments)
    throw new Error(
      `${workspace}: the bench counted ${assignments} assignments, the workspace's stats ${recorded}`,
    );
  return assignments;
}
