import { Counter, Gauge, type Registry } from 'prom-client';
import type { QueueStats, WorkspaceStats } from '../../domain/stats.ts';
import { globalKeys, workspaceKeys } from '../redis/keys.ts';
import { readStats } from '../redis/projection-reads.ts';
import { redisClockNow } from '../redis/redis-clock.ts';
import type { RedisClient } from '../redis/scripts.ts';
import { foldWaits, type WaitCounts, WaitHistogramMetric } from './wait-histogram.ts';

/**
 * The workspaces' own figures on /metrics (docs/METRICS.md): queue depth by skill set, each queue's
 * longest wait, service level, mean wait and agents able to serve it, the workspace's longest wait,
 * agents by state and the contact counters, read from Redis (`readStats`, what GET /stats answers)
 * when Prometheus scrapes, for the workspaces this instance serves. The reads share a time budget:
 * a workspace not read within it is reported `switchboard_workspace_up 0` and its other series are
 * left out of that scrape, so a slow or unreachable Redis cannot hang a scrape.
 */

/** Queues (skill sets) per workspace given their own series; the rest are summed under `_other`. */
export const MAX_SKILL_SET_SERIES = 50;
/** Workspaces reported per scrape (by name); more are left out and counted. */
export const MAX_WORKSPACES = 100;
/** The whole scrape's budget for the workspace reads. */
export const SCRAPE_BUDGET_MS = 1_000;
/** Without worker roles (an API-only instance): the workspaces with a command in this window. */
const ACTIVE_WINDOW_MS = 60 * 60_000;
const CONCURRENCY = 8;
/** Commands not yet applied are counted up to this many (a scrape reads at most this many entries). */
export const LAG_COUNT_MAX = 1_000;

const COUNTERS = [
  ['contactsQueuedSoFar', 'switchboard_workspace_contacts_queued_total', 'Contacts queued in the workspace'],
  [
    'assignments',
    'switchboard_workspace_assignments_total',
    'Assignments (and offers) made in the workspace',
  ],
  ['completed', 'switchboard_workspace_contacts_completed_total', 'Contacts completed in the workspace'],
  ['abandoned', 'switchboard_workspace_contacts_abandoned_total', 'Contacts abandoned by the customer'],
  ['expired', 'switchboard_workspace_contacts_expired_total', 'Contacts that left after their maximum wait'],
  [
    'transferred',
    'switchboard_workspace_contacts_transferred_total',
    'Contacts transferred back to the queue',
  ],
] as const satisfies readonly (readonly [keyof WorkspaceStats, string, string])[];

export function createWorkspaceMetrics(registry: Registry) {
  const registers = [registry];
  return {
    up: new Gauge({
      name: 'switchboard_workspace_up',
      help: 'Whether the workspace figures were read from Redis within the scrape budget (1) or not (0)',
      labelNames: ['workspace'],
      registers,
    }),
    queued: new Gauge({
      name: 'switchboard_workspace_queued_contacts',
      help: 'Contacts waiting (queued) in the workspace',
      labelNames: ['workspace'],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'switchboard_queue_depth',
      help: `Queued contacts by channel and skill set (the ${MAX_SKILL_SET_SERIES} deepest per workspace; the rest summed as skills="_other")`,
      labelNames: ['workspace', 'channel', 'skills'],
      registers,
    }),
    skillSets: new Gauge({
      name: 'switchboard_queue_skill_sets',
      help: 'Queues (channel and skill set) with contacts waiting, including those summed as _other',
      labelNames: ['workspace'],
      registers,
    }),
    longestWait: new Gauge({
      name: 'switchboard_longest_wait_seconds',
      help: 'How long the oldest queued contact of the workspace has waited',
      labelNames: ['workspace'],
      registers,
    }),
    serviceLevel: new Gauge({
      name: 'switchboard_service_level_ratio',
      help: "Share of the last minutes' decisions made within 20 s of the contact's arrival (absent: no decision)",
      labelNames: ['workspace'],
      registers,
    }),
    recentWait: new Gauge({
      name: 'switchboard_recent_mean_wait_seconds',
      help: "Mean wait to the decision of the last minutes' decisions (absent: no decision)",
      labelNames: ['workspace'],
      registers,
    }),
    queueLongestWait: new Gauge({
      name: 'switchboard_queue_longest_wait_seconds',
      help: `How long each queue's oldest waiting contact has waited (0: none waits; the ${MAX_SKILL_SET_SERIES} queues of switchboard_queue_depth, the rest as _other: their longest)`,
      labelNames: ['workspace', 'channel', 'skills'],
      registers,
    }),
    queueServiceLevel: new Gauge({
      name: 'switchboard_queue_service_level_ratio',
      help: "Share of each queue's last minutes' decisions made within 20 s of the contact's arrival (absent: no decision)",
      labelNames: ['workspace', 'channel', 'skills'],
      registers,
    }),
    queueRecentWait: new Gauge({
      name: 'switchboard_queue_recent_mean_wait_seconds',
      help: "Mean wait to the decision of each queue's last minutes' decisions (absent: no decision)",
      labelNames: ['workspace', 'channel', 'skills'],
      registers,
    }),
    occupancy: new Gauge({
      name: 'switchboard_occupancy_ratio',
      help: 'Contacts held (offers included) over the capacity of the agents present (absent: none present)',
      labelNames: ['workspace'],
      registers,
    }),
    recentEnded: new Gauge({
      name: 'switchboard_recent_contacts_ended',
      help: "Contacts abandoned (how=abandoned) or expired (how=expired) in the last minutes' window, every queue's (at most 64 a queue)",
      labelNames: ['workspace', 'how'],
      registers,
    }),
    queueOccupancy: new Gauge({
      name: 'switchboard_queue_occupancy_ratio',
      help: "Contacts held over the capacity of each queue's agents present (absent: none present; not for _other)",
      labelNames: ['workspace', 'channel', 'skills'],
      registers,
    }),
    queueRecent: new Gauge({
      name: 'switchboard_queue_recent_contacts',
      help: "Each queue's decisions (what=assigned), abandons (abandoned) and expirations (expired) in the last minutes' window (at most 64 each)",
      labelNames: ['workspace', 'channel', 'skills', 'what'],
      registers,
    }),
    queueAgents: new Gauge({
      name: 'switchboard_queue_agents',
      help: "Agents who may take each queue's contacts (its skills at their levels, its channel), by state",
      labelNames: ['workspace', 'channel', 'skills', 'state'],
      registers,
    }),
    agents: new Gauge({
      name: 'switchboard_agents',
      help: 'Agents by state (offline, available, away, busy, wrapup, reserved)',
      labelNames: ['workspace', 'state'],
      registers,
    }),
    counters: COUNTERS.map(
      ([field, name, help]) =>
        [field, new Counter({ name, help, labelNames: ['workspace'], registers })] as const,
    ),
    projectorLag: new Gauge({
      name: 'switchboard_projector_lag_seconds',
      help: 'Age of the oldest command appended but not yet applied by the projector (0: all applied)',
      labelNames: ['workspace'],
      registers,
    }),
    projectorLagCommands: new Gauge({
      name: 'switchboard_projector_lag_commands',
      help: `Commands appended but not yet applied by the projector (counted up to ${LAG_COUNT_MAX})`,
      labelNames: ['workspace'],
      registers,
    }),
    /** Each decision's wait, counted in Redis (wait-histogram.ts). */
    waits: new WaitHistogramMetric(registry),
    readSeconds: new Gauge({
      name: 'switchboard_workspace_metrics_read_seconds',
      help: 'How long the last scrape took to read the workspace figures from Redis',
      registers,
    }),
    leftOut: new Gauge({
      name: 'switchboard_workspace_metrics_left_out',
      help: `Workspaces not reported in the last scrape: more than ${MAX_WORKSPACES}`,
      registers,
    }),
    /**
     * The workspaces the last scrape reported: when the registry cannot be read in time (Redis
     * does not answer), an instance without worker roles reports them again, as not up.
     */
    reported: [] as string[],
  };
}

export type WorkspaceMetrics = ReturnType<typeof createWorkspaceMetrics>;

/**
 * The workspaces to report: this process's workers' ones (`loops`: it has projector or dispatcher
 * loops, which report what they serve, none while a standby), or (an API-only instance, or one
 * whose workers serve none without those loops) the recently active.
 */
export async function metricWorkspaces(
  redis: RedisClient,
  served: readonly string[],
  loops = false,
): Promise<string[]> {
  if (served.length > 0 || loops) return [...new Set(served)].sort();
  // The registry is scored by Redis's clock (redis-clock.ts), not this host's.
  const since = (await redisClockNow(redis)) - ACTIVE_WINDOW_MS;
  return (await redis.zrangebyscore(globalKeys.activeWorkspaces, since, '+inf')).sort();
}

/** Reads every workspace's figures within the budget and sets the metrics from them. */
export async function refreshWorkspaceMetrics(
  m: WorkspaceMetrics,
  redis: RedisClient,
  served: readonly string[],
  budgetMs = SCRAPE_BUDGET_MS,
  loops = false,
): Promise<void> {
  const started = Date.now();
  const deadline = started + budgetMs;
  let workspaces: string[] = [];
  const read = new Map<
    string,
    { stats: WorkspaceStats; lagS: number; lagCommands: number; waits: WaitCounts }
  >();
  try {
    const all = await withinBudget(metricWorkspaces(redis, served, loops), deadline);
    m.leftOut.set(Math.max(0, all.length - MAX_WORKSPACES));
    workspaces = all.slice(0, MAX_WORKSPACES);
  } catch {
    // The registry cannot be read in time (it is not read when workers serve workspaces): those
    // of the last scrape, reported as not up rather than left out, and as many left out.
    workspaces = m.reported;
  }
  m.reported = workspaces;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, workspaces.length) }, async () => {
      while (next < workspaces.length && Date.now() < deadline) {
        const ws = workspaces[next++]!;
        try {
          // Waits and lags by Redis's clock, which timed the arrivals and the commands.
          const now = await withinBudget(redisClockNow(redis, workspaceKeys(ws).contacts), deadline);
          const stats = await withinBudget(readStats(redis, ws, now), deadline);
          // The commands after the applied position (up to LAG_COUNT_MAX, ids only matter): how many,
          // and how long the first has waited to be applied.
          const [next, waits] = await withinBudget(
            Promise.all([
              redis.xrange(workspaceKeys(ws).commands, `(${stats.position}`, '+', 'COUNT', LAG_COUNT_MAX),
              foldWaits(redis, ws, deadline),
            ]),
            deadline,
          );
          const oldest = next[0]?.[0];
          read.set(ws, {
            stats,
            lagS: oldest ? Math.max(0, now - Number(oldest.split('-')[0])) / 1000 : 0,
            lagCommands: next.length,
            waits,
          });
        } catch {
          /* reported as up 0 */
        }
      }
    }),
  );
  // Every series is set anew: a workspace, a skill set or a state gone since leaves no stale value.
  m.up.reset();
  m.queued.reset();
  m.queueDepth.reset();
  m.skillSets.reset();
  m.longestWait.reset();
  m.projectorLag.reset();
  m.projectorLagCommands.reset();
  m.waits.reset();
  m.serviceLevel.reset();
  m.recentWait.reset();
  m.agents.reset();
  m.queueLongestWait.reset();
  m.queueServiceLevel.reset();
  m.queueRecentWait.reset();
  m.queueAgents.reset();
  m.occupancy.reset();
  m.recentEnded.reset();
  m.queueOccupancy.reset();
  m.queueRecent.reset();
  for (const [, c] of m.counters) c.reset();
  for (const ws of workspaces) {
    const r = read.get(ws);
    m.up.set({ workspace: ws }, r ? 1 : 0);
    if (!r) continue;
    const s = r.stats;
    m.projectorLag.set({ workspace: ws }, r.lagS);
    m.projectorLagCommands.set({ workspace: ws }, r.lagCommands);
    m.waits.set(ws, r.waits);
    m.queued.set({ workspace: ws }, s.queued);
    m.longestWait.set({ workspace: ws }, s.longestWaitMs / 1000);
    if (s.window?.serviceLevel != null) m.serviceLevel.set({ workspace: ws }, s.window.serviceLevel);
    if (s.window?.meanWaitMs != null) m.recentWait.set({ workspace: ws }, s.window.meanWaitMs / 1000);
    for (const [state, n] of Object.entries(s.agentsByState)) m.agents.set({ workspace: ws, state }, n);
    if (s.occupancy != null) m.occupancy.set({ workspace: ws }, s.occupancy);
    if (s.window) {
      m.recentEnded.set({ workspace: ws, how: 'abandoned' }, s.window.abandons ?? 0);
      m.recentEnded.set({ workspace: ws, how: 'expired' }, s.window.expirations ?? 0);
    }
    const queues = Object.entries(s.queueByChannel)
      .flatMap(([channel, sets]) =>
        Object.entries(sets).map(([skills, depth]) => ({ channel, skills, depth })),
      )
      .filter((q) => q.depth > 0)
      .sort((a, b) => b.depth - a.depth || (a.channel + a.skills < b.channel + b.skills ? -1 : 1));
    m.skillSets.set({ workspace: ws }, queues.length);
    for (const q of queues.slice(0, MAX_SKILL_SET_SERIES))
      m.queueDepth.set({ workspace: ws, channel: q.channel, skills: q.skills }, q.depth);
    if (queues.length > MAX_SKILL_SET_SERIES)
      m.queueDepth.set(
        { workspace: ws, channel: '_other', skills: '_other' },
        queues.slice(MAX_SKILL_SET_SERIES).reduce((n, q) => n + q.depth, 0),
      );
    setQueueFigures(m, ws, s.queues);
    for (const [field, c] of m.counters) {
      const n = s[field];
      if (typeof n === 'number' && n > 0) c.inc({ workspace: ws }, n);
      else c.inc({ workspace: ws }, 0);
    }
  }
  m.readSeconds.set((Date.now() - started) / 1000);
}

/**
 * Each queue's longest wait, window figures and agents, from the queues `/stats` lists (those with
 * contacts waiting or decisions in the window): the same MAX_SKILL_SET_SERIES as the queue depth
 * (the deepest, then the busiest in the window), the rest as `_other`: their longest wait, and their
 * service level and mean wait over all their decisions (no agents: they would be counted once per queue).
 */
function setQueueFigures(m: WorkspaceMetrics, workspace: string, all: readonly QueueStats[]): void {
  // Ordered as the queue depth's series (deepest, then by name), so both name the same queues; those
  // with none waiting by their decisions in the window.
  const queues = [...all].sort(
    (a, b) =>
      b.queued - a.queued ||
      (a.queued === 0 ? b.assignments - a.assignments : 0) ||
      (a.channel + a.skills < b.channel + b.skills ? -1 : 1),
  );
  const set = (labels: { workspace: string; channel: string; skills: string }, q: QueueFigures) => {
    if (q.longestWaitMs !== null) m.queueLongestWait.set(labels, q.longestWaitMs / 1000);
    if (q.serviceLevel !== null) m.queueServiceLevel.set(labels, q.serviceLevel);
    if (q.meanWaitMs !== null) m.queueRecentWait.set(labels, q.meanWaitMs / 1000);
    m.queueRecent.set({ ...labels, what: 'assigned' }, q.assignments);
    m.queueRecent.set({ ...labels, what: 'abandoned' }, q.abandons);
    m.queueRecent.set({ ...labels, what: 'expired' }, q.expirations);
  };
  for (const q of queues.slice(0, MAX_SKILL_SET_SERIES)) {
    const labels = { workspace, channel: q.channel, skills: q.skills };
    set(labels, q);
    for (const [state, n] of Object.entries(q.agents)) m.queueAgents.set({ ...labels, state }, n);
    if (q.occupancy !== null) m.queueOccupancy.set(labels, q.occupancy);
  }
  const rest = queues.slice(MAX_SKILL_SET_SERIES);
  if (rest.length === 0) return;
  const decided = rest.reduce((n, q) => n + q.assignments, 0);
  const weighted = (f: (q: QueueStats) => number | null) =>
    decided === 0 ? null : rest.reduce((x, q) => x + (f(q) ?? 0) * q.assignments, 0) / decided;
  // A queue whose oldest is not among the oldest read (null) waited less than any found there: the
  // longest found stands, and with none found the longest is not known (absent).
  const found = rest.flatMap((q) => (q.longestWaitMs ? [q.longestWaitMs] : []));
  const unknown = rest.some((q) => q.longestWaitMs === null);
  set(
    { workspace, channel: '_other', skills: '_other' },
    {
      longestWaitMs: found.length > 0 ? Math.max(...found) : unknown ? null : 0,
      serviceLevel: weighted((q) => q.serviceLevel),
      meanWaitMs: weighted((q) => q.meanWaitMs),
      assignments: decided,
      abandons: rest.reduce((n, q) => n + q.abandons, 0),
      expirations: rest.reduce((n, q) => n + q.expirations, 0),
    },
  );
}

type QueueFigures = Pick<
  QueueStats,
  'longestWaitMs' | 'serviceLevel' | 'meanWaitMs' | 'assignments' | 'abandons' | 'expirations'
>;

function withinBudget<T>(p: Promise<T>, deadline: number): Promise<T> {
  p.catch(() => {}); // a read that ends after the budget is let go
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('over the scrape budget')),
      Math.max(0, deadline - Date.now()),
    );
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
