/**
 * `e2e`: one Switchboard process (every role) on the bench's Redis; `POST /contacts` at a fixed
 * offered rate (open loop: each contact is sent at its planned time, without waiting for earlier
 * answers, at most `inFlight` unanswered at once), and the time from just before the POST to its
 * `AssignmentMade` on a WebSocket subscriber. Each assignment is completed as soon as it is seen
 * (not timed), so the agents cycle.
 *
 * Each rate is then offered, for as long, to the bare feed (bare-xadd.ts with BARE_FEED=1: one XADD per request and
 * a reader blocked on the stream that sends each entry to the WebSocket), with the same load
 * generator: the least those hops cost on this machine, the anchor of Switchboard's latencies.
 *
 * The agents are set up through the typed client (src/client), as an integrator would. The timed
 * path (each POST /contacts, each complete, the WebSocket) stays on bare keep-alive requests and a
 * bare socket: measured on this 2-core machine, the client's fetch-based requests cost the load
 * generator enough CPU at 300 contacts/s (600 requests/s with the completes) to move the figures
 * (p50 7 ms bare vs 34-484 ms with the client, in alternating runs), which would then
 * measure the generator, not Switchboard. The Idempotency-Key the client adds costs nothing
 * measurable on the server (p50 3-5 ms with it, bare requests otherwise the same).
 */
import http from 'node:http';
import WebSocket from 'ws';
import { connectRedis } from '../../adapters/redis/client.ts';
import { KEY_ROOT, workspaceKeys } from '../../adapters/redis/keys.ts';
import { SwitchboardClient } from '../../client/index.ts';
import { startRedisCluster } from '../../topology/redis-cluster.ts';
import { pool } from '../sim/http.ts';
import { percentile, round } from '../sim/stats.ts';
import { slotOwner } from './cluster.ts';
import {
  type Asked,
  asDeployed,
  type ChildServer,
  childCommand,
  request,
  sleep,
  startChild,
  startTogether,
} from './http.ts';
import { mainThreadCpuUs } from './redis-time.ts';
import type { Note } from './workspace.ts';

/** The workloads that start a Switchboard process: which checkout's (--switchboard; this one's when absent). */
export interface SwitchboardChoice {
  /** The root of another checkout whose src/main.ts runs as the Switchboard process. */
  readonly switchboard?: string;
}

export interface E2eOptions extends SwitchboardChoice {
  readonly agents: number;
  /** Offered rates, contacts/s, run one after the other against the same process. */
  readonly rates: readonly number[];
  readonly duration: number;
  readonly warmup: number;
  readonly inFlight: number;
  /**
   * Switchboard on a private 3-master Redis Cluster (no replicas, AOF off) instead of the
   * workload's Redis; the bare feed and Redis's CPU figure on the master holding the workspace.
   */
  readonly cluster?: boolean;
}

/** What a run at one rate measured, Switchboard's or the bare feed's. */
export interface E2eLatencies {
  /** Contacts assigned within the run + 2 s, per second of the run. */
  readonly achievedPerS: number;
  /** From just before a POST to its AssignmentMade on a WebSocket (the bare feed: its entry): what agents wait. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly p999Ms: number | null;
  readonly maxMs: number | null;
  /**
   * From just before a POST to its answer, p50 and p99 (Switchboard: the command applied; the bare
   * feed: one XADD; 201 either way): what the client sending contacts waits.
   */
  readonly answerP50Ms: number | null;
  readonly answerP99Ms: number | null;
}

export interface E2eRateFigures extends E2eLatencies {
  readonly offeredPerS: number;
  /** Contacts POSTed (answered 2xx, or not answered at all). */
  readonly sent: number;
  /**
   * The part of the latency after the decision: from AssignmentMade's `at` (the dispatcher's
   * clock, ms precision) to its receipt, p50 and p99. The rest is the command's way to the decision.
   */
  readonly decisionToReceiptP50Ms: number | null;
  readonly decisionToReceiptP99Ms: number | null;
  /** CPU time (user + system) of the Switchboard process per contact sent, µs, from its /metrics. */
  readonly apiCpuUsPerContact: number | null;
  /**
   * Redis's main-thread CPU time per contact sent, µs (INFO cpu): every step, append, read and
   * reply of the contact's way (queued, assigned, completed), and Switchboard's background work.
   */
  readonly redisCpuUsPerContact: number | null;
  /**
   * The Switchboard process's event-loop delay over the run, p99 and max, ms: how long a timer
   * already due waited for the loop (a long synchronous task, a GC pause). From perf_hooks' monitor
   * as prom-client reports it (reset by the scrape before the run), less its 10 ms sampling interval,
   * which its figures include (an idle process reads p50 10.1 ms).
   */
  readonly apiLoopDelayP99Ms: number | null;
  readonly apiLoopDelayMaxMs: number | null;
  /** The Switchboard process's GC pauses over the run (every kind), and their total, ms. */
  readonly apiGcPauses: number | null;
  readonly apiGcPauseMs: number | null;
  /** POSTs that failed or answered other than 2xx. */
  readonly errors: number;
  /** Planned sends dropped because `inFlight` POSTs were already unanswered. */
  readonly notSentOnTime: number;
  /** Latest a send left after its planned time (the load generator's own lag), ms. */
  readonly maxSendLagMs: number | null;
  /** Sent contacts without an AssignmentMade within the run + 2 s. */
  readonly unassigned: number;
  /** Completes (not timed) that failed. */
  readonly completeErrors: number;
  /**
   * The same rate and duration, right after, against the bare feed (bare-xadd.ts with BARE_FEED=1: one XADD per
   * request, a reader blocked on the stream sending each entry to the WebSocket): the hops alone, on
   * this machine, with this load generator. Absent when not run.
   */
  readonly bare?: E2eBareFigures;
}

/** The bare feed's run: its latencies, and Switchboard's over them (times the floor). */
export interface E2eBareFigures extends E2eLatencies {
  readonly errors: number;
  readonly unassigned: number;
  /** Switchboard's p50 over the bare feed's. */
  readonly p50Ratio: number | null;
  /** Switchboard's p99 over the bare feed's. */
  readonly p99Ratio: number | null;
}

export interface E2eFigures {
  readonly runs: E2eRateFigures[];
  /** The highest offered rate with p99 under 10 ms, no error, nothing dropped or unassigned. */
  readonly highestRateP99Under10ms: number | null;
  /** What Switchboard was asked besides contacts during the warm-up (http.ts asDeployed); null: none. */
  readonly warmupAsked: Asked | null;
}

/** What the Switchboard process says of its own CPU and GC on GET /metrics (prom-client's defaults). */
interface ProcessStats {
  readonly cpuS: number;
  readonly gcPauses: number;
  readonly gcS: number;
  /** Event-loop delay since the previous scrape, seconds. */
  readonly lagP99S: number;
  readonly lagMaxS: number;
}

/** prom-client's event-loop monitor samples every 10 ms (its eventLoopMonitoringPrecision). */
const LOOP_SAMPLE_MS = 10;

async function processStats(agent: http.Agent, base: string): Promise<ProcessStats | null> {
  const r = await request(agent, 'GET', `${base}/metrics`).catch(() => undefined);
  if (r?.status !== 200) return null;
  let cpuS = 0;
  let gcPauses = 0;
  let gcS = 0;
  let lagP99S = 0;
  let lagMaxS = 0;
  for (const line of r.body.split('\n')) {
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (/^switchboard_process_cpu_(user|system)_seconds_total /.test(line)) cpuS += v;
    else if (line.startsWith('switchboard_nodejs_gc_duration_seconds_count{')) gcPauses += v;
    else if (line.startsWith('switchboard_nodejs_gc_duration_seconds_sum{')) gcS += v;
    else if (line.startsWith('switchboard_nodejs_eventloop_lag_p99_seconds ')) lagP99S = v;
    else if (line.startsWith('switchboard_nodejs_eventloop_lag_max_seconds ')) lagMaxS = v;
  }
  return { cpuS, gcPauses, gcS, lagP99S, lagMaxS };
}

/**
 * V8 flags for the Switchboard process, to compare (BENCH_SWITCHBOARD_NODE_FLAGS, passed in
 * NODE_OPTIONS); none by default, as `npm start` runs it. A larger young generation
 * (`--max-semi-space-size=64`) halved the API's scavenges under the e2e load but made each longer,
 * and the p99 worse (docs/BENCHMARKS.md).
 */
const switchboardNodeFlags = (): string => process.env.BENCH_SWITCHBOARD_NODE_FLAGS ?? '';

/**
 * Starts Switchboard (all roles) in its own process, serving `workspace` only: this checkout's, or
 * that of the checkout at `root` (--switchboard).
 */
export function startSwitchboardProcess(
  redisUrl: string,
  workspace: string,
  root?: string,
  clusterNodes?: readonly string[],
): Promise<ChildServer> {
  return startChild(
    'src/main.ts',
    {
      ...(switchboardNodeFlags()
        ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${switchboardNodeFlags()}`.trim() }
        : {}),
      // A cluster without replicas (--cluster): acknowledged once the master has it, as on one Redis.
      ...(clusterNodes
        ? { REDIS_CLUSTER_NODES: clusterNodes.join(','), REDIS_URL: '', DURABILITY: 'local' }
        : { REDIS_URL: redisUrl, REDIS_CLUSTER_NODES: '' }),
      // The bench's Redis as the bench reaches it: the URL's (or seeds') login, TLS as its scheme
      // says; not the login or TLS files the shell may hold for npm start's Redis, with which the
      // process was refused at start (a login given twice) or logged in otherwise.
      REDIS_USERNAME: '',
      REDIS_PASSWORD: '',
      REDIS_TLS_CA: '',
      REDIS_TLS_CERT: '',
      REDIS_TLS_KEY: '',
      // The process the bench measures, whatever a deployment's instance the shell is set up for:
      // every role (ROLES=api alone would project nothing), acknowledged as on one Redis (the
      // bench's has no replica to wait for), no metrics port of its own.
      ROLES: '',
      ...(clusterNodes ? {} : { DURABILITY: 'local' }),
      REPLICA_WAIT_MS: '',
      METRICS_PORT: '',
      ADVERTISE_ADDRESS: '',
      LOG_LEVEL: 'warn',
      WORKSPACES: workspace,
      DISCOVER_WORKSPACES: 'false',
      // The bench's clients send no API key and come from one address: it measures routing, not
      // key checks or the per-client rate limit; the fan-out opens more sockets than the default caps.
      AUTH: 'off',
      RATE_LIMIT: 'off',
      WS_MAX_PER_KEY: 'off',
      WS_MAX_PER_INSTANCE: 'off',
    },
    '/health',
    30_000,
    root,
  );
}

/** How the notes name the Switchboard process a workload starts. */
export const switchboardName = (root: string | undefined): string =>
  root === undefined
    ? 'Switchboard (src/main.ts, all roles)'
    : `the Switchboard of ${root} (its src/main.ts, all roles)`;

/**
 * Starts the bare anchor (bare-xadd.ts: one XADD per POST /contacts) in its own process on a key
 * of `workspace`'s hash tag; with `feed`, also its reader and WebSocket feed (e2e's anchor).
 */
export function startBareHandler(redisUrl: string, workspace: string, feed: boolean): Promise<ChildServer> {
  return startChild(
    'src/cli/bench/bare-xadd.ts',
    {
      REDIS_URL: redisUrl,
      BARE_KEY: `${KEY_ROOT}:{${workspace}}:${feed ? 'bare-feed' : 'bare-commands'}`,
      ...(feed ? { BARE_FEED: '1' } : {}),
    },
    '/health',
  );
}

export async function e2eWorkload(
  redisUrl: string,
  workspace: string,
  o: E2eOptions,
  note: Note,
): Promise<E2eFigures> {
  // The two processes' builds (childCommand) are made while the cluster starts.
  if (o.cluster)
    for (const [script, root] of [
      ['src/main.ts', o.switchboard],
      ['src/cli/bench/bare-xadd.ts', undefined],
    ] as const)
      void childCommand(script, root);
  const cluster = o.cluster ? await privateCluster(workspace, note) : undefined;
  // On a cluster: the master holding the workspace's slot, where its keys and the bare feed's are.
  const url = cluster?.masterUrl ?? redisUrl;
  note(`starting ${switchboardName(o.switchboard)} and the bare feed (bare-xadd.ts, BARE_FEED=1)`);
  const servers: ChildServer[] = [];
  // Reads Redis's own CPU time (INFO), nothing else.
  const observer = connectRedis({ url });
  const postAgent = new http.Agent({ keepAlive: true, maxSockets: o.inFlight });
  const completeAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const sockets: WebSocket[] = [];
  try {
    const [sb, bareServer] = await startTogether([
      startSwitchboardProcess(url, workspace, o.switchboard, cluster?.seeds),
      startBareHandler(url, workspace, true),
    ]);
    servers.push(sb, bareServer);
    const apiOf = (server: ChildServer) => `${server.base}/v1/workspaces/${encodeURIComponent(workspace)}`;
    note(`registering ${o.agents} agents (skill s), all available`);
    const ids = Array.from({ length: o.agents }, (_, i) => `agent-${i + 1}`);
    const client = new SwitchboardClient({ url: sb.base, workspace });
    await pool(ids, 32, async (id) => {
      await client.registerAgent({ id, skills: ['s'], capacity: 1 });
    });
    await pool(ids, 32, async (id) => {
      await client.setAgentState(id, 'available');
    });

    // contactId -> performance.now() just before its POST, until its AssignmentMade arrives.
    const sentAt = new Map<string, number>();
    let latencies: number[] = [];
    let afterDecision: number[] = [];
    let completeErrors = 0;
    /** A subscriber of `api`'s AssignmentMade: times each contact, and completes it there. */
    const subscribe = async (api: string): Promise<void> => {
      const ws = new WebSocket(`${api.replace(/^http/, 'ws')}/events/live?type=AssignmentMade`);
      sockets.push(ws);
      ws.on('message', (raw) => {
        const at = performance.now();
        let contactId: string | undefined;
        let decidedAt: string | undefined;
        try {
          const e = JSON.parse(raw.toString()) as { at?: string; data?: { contactId?: string } };
          contactId = e.data?.contactId;
          decidedAt = e.at;
        } catch {
          return;
        }
        if (!contactId) return;
        const t = sentAt.get(contactId);
        if (t !== undefined) {
          sentAt.delete(contactId);
          latencies.push(at - t);
          if (decidedAt !== undefined)
            afterDecision.push(performance.timeOrigin + at - Date.parse(decidedAt));
        }
        request(completeAgent, 'POST', `${api}/contacts/${encodeURIComponent(contactId)}/complete`).then(
          (r) => {
            if (r.status < 200 || r.status >= 300) completeErrors++;
          },
          () => {
            completeErrors++;
          },
        );
      });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
    };
    await subscribe(apiOf(sb));
    await subscribe(apiOf(bareServer));

    /**
     * One open-loop run at `rate` for `seconds` against `server`; contact ids start with `prefix`.
     * Switchboard's process and Redis's CPU are read around it when `stats` (not for the bare feed).
     */
    const run = async (
      server: ChildServer,
      rate: number,
      seconds: number,
      prefix: string,
      stats: boolean,
    ): Promise<E2eRateFigures> => {
      const api = apiOf(server);
      latencies = [];
      afterDecision = [];
      // This run's POSTs answered 2xx only (an answer that comes after the run is in no run's figures).
      const answered: number[] = [];
      completeErrors = 0;
      const total = Math.max(1, Math.round(rate * seconds));
      const interval = 1000 / rate;
      const mine: string[] = [];
      const failed = new Set<string>();
      let inFlight = 0;
      let errors = 0;
      let dropped = 0;
      let maxLag = 0;
      let i = 0;
      const stats0 = stats ? await processStats(completeAgent, server.base) : null;
      const redis0 = stats ? await mainThreadCpuUs(observer).catch(() => null) : null;
      const t0 = performance.now();
      while (i < total) {
        const now = performance.now();
        while (i < total && t0 + i * interval <= now) {
          const planned = t0 + i * interval;
          const id = `${prefix}-${++i}`;
          if (inFlight >= o.inFlight) {
            dropped++;
            continue;
          }
          inFlight++;
          mine.push(id);
          const s = performance.now();
          maxLag = Math.max(maxLag, s - planned);
          sentAt.set(id, s);
          request(postAgent, 'POST', `${api}/contacts`, { id, skills: ['s'] })
            .then(
              (r) => {
                const good = r.status >= 200 && r.status < 300;
                if (good) answered.push(performance.now() - s);
                return good;
              },
              () => false,
            )
            .then((good) => {
              inFlight--;
              if (!good) {
                errors++;
                failed.add(id);
                sentAt.delete(id);
              }
            });
        }
        if (i >= total) break;
        await sleep(Math.max(1, Math.floor(t0 + i * interval - performance.now())));
      }
      const sendSeconds = Math.max(seconds, (performance.now() - t0) / 1000);
      // Wait for the stragglers, at most until the run's end + 2 s.
      const deadline = t0 + seconds * 1000 + 2000;
      const open = () => mine.filter((id) => sentAt.has(id)).length;
      while (performance.now() < deadline && (inFlight > 0 || open() > 0)) await sleep(10);
      const unassigned = open();
      const stats1 = stats ? await processStats(completeAgent, server.base) : null;
      const redis1 = stats ? await mainThreadCpuUs(observer).catch(() => null) : null;
      for (const id of mine) sentAt.delete(id); // late arrivals are completed but not timed
      const assigned = latencies.length;
      const sorted = [...latencies].sort((a, b) => a - b);
      const decided = [...afterDecision].sort((a, b) => a - b);
      const answers = [...answered].sort((a, b) => a - b);
      return {
        offeredPerS: rate,
        sent: mine.length - failed.size,
        achievedPerS: Math.round(assigned / sendSeconds),
        p50Ms: round(percentile(sorted, 50), 2),
        p99Ms: round(percentile(sorted, 99), 2),
        p999Ms: round(percentile(sorted, 99.9), 2),
        maxMs: round(sorted[sorted.length - 1] ?? null, 2),
        answerP50Ms: round(percentile(answers, 50), 2),
        answerP99Ms: round(percentile(answers, 99), 2),
        decisionToReceiptP50Ms: round(percentile(decided, 50), 2),
        decisionToReceiptP99Ms: round(percentile(decided, 99), 2),
        apiCpuUsPerContact:
          stats0 && stats1 && mine.length > 0
            ? round(((stats1.cpuS - stats0.cpuS) * 1e6) / mine.length, 0)
            : null,
        redisCpuUsPerContact:
          redis0 !== null && redis1 !== null && mine.length > 0
            ? round((redis1 - redis0) / mine.length, 1)
            : null,
        apiLoopDelayP99Ms: stats1 ? round(Math.max(0, stats1.lagP99S * 1000 - LOOP_SAMPLE_MS), 1) : null,
        apiLoopDelayMaxMs: stats1 ? round(Math.max(0, stats1.lagMaxS * 1000 - LOOP_SAMPLE_MS), 1) : null,
        apiGcPauses: stats0 && stats1 ? stats1.gcPauses - stats0.gcPauses : null,
        apiGcPauseMs: stats0 && stats1 ? round((stats1.gcS - stats0.gcS) * 1000, 1) : null,
        errors,
        notSentOnTime: dropped,
        maxSendLagMs: mine.length > 0 ? round(maxLag, 2) : null,
        unassigned,
        completeErrors,
      };
    };

    const first = o.rates[0]!;
    let warmupAsked: Asked | null = null;
    if (o.warmup > 0) {
      note(
        `warming up: ${first} contacts/s for ${o.warmup} s each, health-checked and scraped each second (not reported)`,
      );
      warmupAsked = await asDeployed(completeAgent, sb, true, () =>
        run(sb, first, o.warmup, 'warmup', false),
      );
      await asDeployed(completeAgent, bareServer, false, () =>
        run(bareServer, first, o.warmup, 'bare-warmup', false),
      );
    }
    const runs: E2eRateFigures[] = [];
    for (const [n, rate] of o.rates.entries()) {
      note(`offering ${rate} contacts/s for ${o.duration} s to Switchboard, then to the bare feed`);
      const r = await run(sb, rate, o.duration, `c${n + 1}`, true);
      await sleep(250); // let the completes of this run settle before the next
      const b = await run(bareServer, rate, o.duration, `bare${n + 1}`, false);
      await sleep(250);
      runs.push({ ...r, bare: bareFigures(r, b) });
    }
    const held = runs.filter(
      (r) =>
        r.p99Ms !== null && r.p99Ms < 10 && r.errors === 0 && r.notSentOnTime === 0 && r.unassigned === 0,
    );
    return {
      runs,
      warmupAsked,
      highestRateP99Under10ms: held.length > 0 ? Math.max(...held.map((r) => r.offeredPerS)) : null,
    };
  } finally {
    for (const s of sockets) s.terminate();
    postAgent.destroy();
    completeAgent.destroy();
    observer.disconnect();
    await Promise.all(servers.map((s) => s.stop()));
    await cluster?.stop();
  }
}

/**
 * `--cluster`: a private Redis Cluster of 3 masters (no replicas, AOF off, the admin open, on
 * loopback); its seeds, and the URL of the master holding `workspace`'s slot.
 */
async function privateCluster(
  workspace: string,
  note: Note,
): Promise<{ seeds: string[]; masterUrl: string; stop(): Promise<void> }> {
  note('starting a Redis Cluster of 3 masters (no replicas, AOF off)');
  const cluster = await startRedisCluster({
    masters: 3,
    replicasPerMaster: 0,
    args: ['--appendonly', 'no'],
    openAdmin: true,
  });
  const seeds = cluster.nodes.map((n) => `${n.host}:${n.port}`);
  const admin = connectRedis({ clusterNodes: seeds });
  try {
    const slot = (await admin.cluster('KEYSLOT', workspaceKeys(workspace).commands)) as number;
    const port = (await slotOwner(admin))(slot);
    const master = cluster.nodes.find((n) => n.port === port);
    if (!master) throw new Error(`no master holds slot ${slot}`);
    return { seeds, masterUrl: `redis://${master.host}:${master.port}`, stop: () => cluster.stop() };
  } catch (err) {
    await cluster.stop();
    throw err;
  } finally {
    admin.disconnect();
  }
}

function bareFigures(sb: E2eRateFigures, bare: E2eRateFigures): E2eBareFigures {
  const ratio = (a: number | null, b: number | null) =>
    a !== null && b !== null && b > 0 ? round(a / b, 2) : null;
  return {
    achievedPerS: bare.achievedPerS,
    p50Ms: bare.p50Ms,
    p99Ms: bare.p99Ms,
    p999Ms: bare.p999Ms,
    maxMs: bare.maxMs,
    answerP50Ms: bare.answerP50Ms,
    answerP99Ms: bare.answerP99Ms,
    errors: bare.errors + bare.completeErrors,
    unassigned: bare.unassigned,
    p50Ratio: ratio(sb.p50Ms, bare.p50Ms),
    p99Ratio: ratio(sb.p99Ms, bare.p99Ms),
  };
}
