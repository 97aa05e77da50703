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
import { startRedisCluster } from '../../topology/redis-cluster.ts';
import { startRedisServer } from '../../topology/redis-server.ts';
import { seededRandom } from '../sim/random.ts';
import { nowNs, round, seconds } from '../sim/stats.ts';
import { perAssignment, type ScriptTime, scriptCalls, startScriptTiming } from './redis-time.ts';
import { at, type Row, type RowMaker, row } from './report.ts';
import {
  type Agent,
  appendAndProject,
  availableCommands,
  type Note,
  queueCommands,
  registerCommands,
  seedAgents,
} from './workspace.ts';

export interface ClusterBenchOptions {
  readonly agents: number;
  /** Contacts queued in each workspace. */
  readonly contacts: number;
  readonly dispatchBatch: number;
  readonly projectBatch: number;
  readonly seed: number;
}

/** Workspaces drained at once on each busy master (and on the single Redis). */
export const PER_MASTER = 2;
const MASTERS = 3;

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
  readonly workspacesPerMaster: number;
  /** Redis µs per assignment cycle on the single Redis, per Lua step and total. */
  readonly singleUsPerAssignment: Record<string, number>;
  /** The same on each master of the cluster (by port), one master busy at a time. */
  readonly masterUsPerAssignment: Record<string, Record<string, number>>;
  /** The worst master's total over the single Redis's total (target 1.2 at most). */
  readonly worstMasterRatio: number | null;
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

export async function clusterWorkload(o: ClusterBenchOptions, note: Note): Promise<ClusterFigures> {
  const rng = seededRandom(o.seed);
  const agents = seedAgents(o.agents, rng);
  const single = await startRedisServer({ appendonly: false });
  let singleUs: Record<string, number>;
  let singlePerS: number;
  try {
    const redis = connectRedis({ url: single.url }, { commandTimeout: 60_000 });
    try {
      note('single Redis: throughput, then Redis µs per assignment');
      const untimed = ['cs-run-a', 'cs-run-b'];
      await Promise.all(untimed.map((ws) => prepare(redis, ws, agents, o)));
      singlePerS = (await drainAll(redis, untimed, o)).perS;
      const timed = ['cs-timed-a', 'cs-timed-b'];
      await Promise.all(timed.map((ws) => prepare(redis, ws, agents)));
      singleUs = await timedDrain(redis, timed, o);
    } finally {
      redis.disconnect();
    }
  } finally {
    await single.stop();
  }

  note(`starting a Redis Cluster of ${MASTERS} masters (no replicas, AOF off)`);
  const cluster = await startRedisCluster({
    masters: MASTERS,
    replicasPerMaster: 0,
    args: ['--appendonly', 'no'],
  });
  try {
    const seeds = cluster.nodes.map((n) => `${n.host}:${n.port}`);
    const redis = connectRedis({ clusterNodes: seeds }, { commandTimeout: 60_000 });
    try {
      await redis.ping();
      const ports = cluster.nodes.map((n) => n.port);
      // Workspaces named so each master holds enough for every phase: the throughput runs with
      // 1, 2 and 3 masters busy, then one timed set.
      const names = await spreadWorkspaces(redis, ports, PER_MASTER * (1 + MASTERS));
      const phases: ClusterPhase[] = [];
      const clients = ports.map((port) => connectRedis({ url: `redis://127.0.0.1:${port}` }));
      try {
        for (let busy = 1; busy <= MASTERS; busy++) {
          const ws = ports.slice(0, busy).flatMap((p) => names.get(p)!.splice(0, PER_MASTER));
          note(`${busy} master(s) busy: ${ws.length} workspaces drained at once`);
          await Promise.all(ws.map((w) => prepare(redis, w, agents, o)));
          const cpu0 = await Promise.all(clients.map(redisCpu));
          const driver0 = process.cpuUsage();
          const run = await drainAll(redis, ws, o);
          const driver = process.cpuUsage(driver0);
          const cpu1 = await Promise.all(clients.map(redisCpu));
          phases.push({
            masters: busy,
            assignments: run.assignments,
            assignmentsPerS: run.perS,
            seconds: round(run.seconds, 3) ?? 0,
            redisCpuPercent: cpu1.map((c, i) => Math.round(((c - cpu0[i]!) / run.seconds) * 100)),
            driverCpuPercent: Math.round(((driver.user + driver.system) / 1e6 / run.seconds) * 100),
          });
        }
      } finally {
        for (const c of clients) c.disconnect();
      }
      // Timed after the throughput runs, as on the single Redis (its scripts loaded, warm).
      const masterUs: Record<string, Record<string, number>> = {};
      for (const port of ports) {
        note(`master ${port}: Redis µs per assignment`);
        const ws = names.get(port)!.splice(0, PER_MASTER);
        await Promise.all(ws.map((w) => prepare(redis, w, agents)));
        masterUs[port] = await timedDrain(redis, ws, o, port);
      }
      const totals = Object.values(masterUs).map((m) => m.total ?? 0);
      const meanUs = totals.reduce((a, b) => a + b, 0) / totals.length;
      const perMaster = meanUs > 0 ? Math.round(1e6 / meanUs) : null;
      const cores = os.cpus().length;
      return {
        cores,
        workspacesPerMaster: PER_MASTER,
        singleUsPerAssignment: singleUs,
        masterUsPerAssignment: masterUs,
        worstMasterRatio: singleUs.total ? round(Math.max(...totals) / singleUs.total, 2) : null,
        singleAssignmentsPerS: singlePerS,
        phases,
        modelPerMasterPerS: perMaster,
        modelAggregatePerS: perMaster === null ? null : perMaster * MASTERS,
        limitedBy: limitedBy(cores, phases),
      };
    } finally {
      redis.disconnect();
    }
  } finally {
    await cluster.stop();
  }
}

/** What bounded the aggregate, from the CPU each process used in the busiest phase. */
export function limitedBy(cores: number, phases: readonly ClusterPhase[]): string {
  const last = phases[phases.length - 1];
  if (!last) return 'not measured';
  const used = last.redisCpuPercent.reduce((a, b) => a + b, 0) + last.driverCpuPercent;
  const processes = last.masters + 1;
  return cores < processes
    ? `${cores} cores for ${last.masters} busy masters and the one driver process (${used}% of a core used in all): the cores, not the masters, bound the aggregate; the model says what a core per master would give`
    : `${cores} cores for ${processes} busy processes (${used}% of a core used in all)`;
}

async function redisCpu(redis: RedisClient): Promise<number> {
  const info = (await redis.info('cpu')) as string;
  const f = (name: string) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)?.[1] ?? 0);
  return f('used_cpu_sys') + f('used_cpu_user');
}

/** The port of the master serving each slot, from CLUSTER SLOTS. */
async function slotOwner(redis: RedisClient): Promise<(slot: number) => number | undefined> {
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
  o?: ClusterBenchOptions,
): Promise<void> {
  await ensureGroup(redis, workspace);
  await appendAndProject(redis, workspace, registerCommands(agents));
  await appendAndProject(redis, workspace, availableCommands(agents));
  if (o) await appendAndProject(redis, workspace, contactsOf(o));
}

const contactsOf = (o: ClusterBenchOptions) => queueCommands(o.contacts, seededRandom(o.seed + 1));

interface MasterCall {
  readonly name: string;
  readonly port: number | undefined;
  readonly us: number;
}

function timesOf(calls: readonly MasterCall[]): Record<string, ScriptTime> {
  const out: Record<string, { calls: number; us: number }> = {};
  for (const c of calls) {
    const t = out[c.name] ?? { calls: 0, us: 0 };
    t.calls++;
    t.us += c.us;
    out[c.name] = t;
  }
  return out;
}

/**
 * Queues the contacts and drains `workspaces` at once with Redis timing every Lua step (SLOWLOG on
 * every master), from the contacts' appends on: Redis's µs per assignment of the whole cycle.
 */
async function timedDrain(
  redis: RedisClient,
  workspaces: readonly string[],
  o: ClusterBenchOptions,
  /** On a cluster, the master whose calls count (all of them are its, unless something else ran). */
  port?: number,
): Promise<Record<string, number>> {
  await startScriptTiming(redis);
  await Promise.all(workspaces.map((ws) => appendAndProject(redis, ws, contactsOf(o))));
  const { assignments } = await drainAll(redis, workspaces, o);
  const raw = await scriptCalls(redis);
  const ports = await portsOf(redis, raw);
  const calls = raw.map((c, i) => ({ name: c.name, port: ports[i], us: c.us }));
  return perAssignment(timesOf(calls.filter((c) => port === undefined || c.port === port)), assignments);
}

/** The port of the master each call ran on (its first key's slot), on a cluster; else undefined. */
async function portsOf(
  redis: RedisClient,
  calls: readonly { firstKey: string }[],
): Promise<(number | undefined)[]> {
  if (!('nodes' in redis)) return calls.map(() => undefined);
  const owner = await slotOwner(redis);
  const byTag = new Map<string, number | undefined>();
  const out: (number | undefined)[] = [];
  for (const c of calls) {
    const tag = /\{[^}]*\}/.exec(c.firstKey)?.[0] ?? c.firstKey;
    if (!byTag.has(tag)) {
      const slot = (await redis.cluster('KEYSLOT', tag)) as number;
      byTag.set(tag, owner(slot));
    }
    out.push(byTag.get(tag));
  }
  return out;
}

async function drainAll(
  redis: RedisClient,
  workspaces: readonly string[],
  o: ClusterBenchOptions,
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
async function drain(redis: RedisClient, workspace: string, o: ClusterBenchOptions): Promise<number> {
  const k = workspaceKeys(workspace);
  const dispatchOpts = { ...defaultDispatcherOptions, batch: o.dispatchBatch };
  const projectOpts = { ...defaultProjectorOptions, batch: o.projectBatch };
  const queued = Number(await redis.hget(k.stats, 'assignments')) || 0;
  let cursor =
    ((await redis.xrevrange(k.events, '+', '-', 'COUNT', 1)) as [string, string[]][])[0]?.[0] ?? '0-0';
  let assignments = 0;
  let idle = 0;
  const hardStop = Date.now() + 600_000;
  while (assignments < o.contacts && idle <= 10 && Date.now() < hardStop) {
    const made = await dispatchPending(redis, workspace, dispatchOpts);
    assignments += made;
    if (assignments >= o.contacts) break;
    const entries = (await redis.xrange(k.events, `(${cursor}`, '+', 'COUNT', 50_000)) as [
      string,
      string[],
    ][];
    const done: string[] = [];
    for (const [id, fields] of entries) {
      cursor = id;
      if (fields[1] !== 'AssignmentMade') continue;
      const env = JSON.parse(fields[3] ?? '{}') as { data?: { contactId?: string } };
      if (env.data?.contactId) done.push(env.data.contactId);
    }
    await Promise.all(
      done.map((contactId) =>
        appendCommand(redis, { workspace, command: { type: 'CompleteContact', contactId } }),
      ),
    );
    const applied = await projectPending(redis, workspace, [], projectOpts);
    idle = made === 0 && done.length === 0 && applied === 0 ? idle + 1 : 0;
  }
  const recorded = (Number(await redis.hget(k.stats, 'assignments')) || 0) - queued;
  if (recorded !== assignments)
    throw new Error(
      `${workspace}: the bench counted ${assignments} assignments, the workspace's stats ${recorded}`,
    );
  return assignments;
}

/**
 * The table rows of a cluster run: each master's µs per assignment against the single Redis's
 * (target within 1.2x), the aggregate with 1 master busy against the single Redis and with 2 and 3
 * against 1, and the throughput the µs imply with a core per master.
 */
export const clusterRows: RowMaker = (run) => {
  const f = run.figures as ClusterFigures;
  const single = {
    name: 'single Redis, same cycle',
    value: at(f, 'singleUsPerAssignment.total'),
    unit: 'µs',
  };
  const rows: Row[] = Object.entries(f.masterUsPerAssignment).map(([port, us], i) =>
    row(`cluster: Redis µs per assignment, master ${i + 1} (:${port})`, at(us, 'total'), 'µs', single, {
      on: 'ratio',
      op: '<=',
      value: 1.2,
    }),
  );
  const one = f.phases[0];
  for (const p of f.phases)
    rows.push(
      row(
        `cluster: aggregate, ${p.masters} master${p.masters > 1 ? 's' : ''} busy (${f.cores} cores)`,
        p.assignmentsPerS,
        'assignments/s',
        p.masters === 1
          ? { name: 'single Redis, same workspaces', value: f.singleAssignmentsPerS, unit: 'assignments/s' }
          : { name: '1 master busy', value: one?.assignmentsPerS ?? null, unit: 'assignments/s' },
      ),
    );
  const last = f.phases[f.phases.length - 1];
  rows.push(
    row(
      `cluster: model, ${MASTERS} masters with a core each (1e6 / µs × masters)`,
      f.modelAggregatePerS,
      'assignments/s',
      last
        ? {
            name: `measured, ${last.masters} masters busy`,
            value: last.assignmentsPerS,
            unit: 'assignments/s',
          }
        : undefined,
    ),
  );
  return rows;
};
