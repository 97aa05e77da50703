import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { RedisClient } from '../redis/scripts.ts';
import { PROBLEM_TYPE, problem } from './problem.ts';
import { createWorkspaceMetrics, MAX_WORKSPACES, refreshWorkspaceMetrics } from './workspace-metrics.ts';

/**
 * The `workspace` label of a process's own counts (commands, dispatcher steps, subscribers) for
 * workspaces past MAX_WORKSPACES: not a workspace name (those are [A-Za-z0-9_-]), so never one's.
 */
export const OTHER_WORKSPACES = '~other';

/**
 * Bounds the `workspace` label of a process's counters and histograms: the first MAX_WORKSPACES
 * workspaces it counts keep their name for the life of the process (a counter's series must not
 * move), later ones are counted under OTHER_WORKSPACES.
 */
export class WorkspaceLabels {
  private readonly named = new Set<string>();
  constructor(private readonly max = MAX_WORKSPACES) {}

  of(workspace: string): string {
    if (this.named.has(workspace)) return workspace;
    if (this.named.size >= this.max) return OTHER_WORKSPACES;
    this.named.add(workspace);
    return workspace;
  }
}

/** Prometheus metrics of one process, served at /metrics. */
export function createMetrics(maxWorkspaces = MAX_WORKSPACES) {
  const registry = new Registry();
  const labels = new WorkspaceLabels(maxWorkspaces);
  collectDefaultMetrics({ register: registry, prefix: 'switchboard_' });
  // Gauges named _total, which Prometheus keeps for counters (promtool check metrics flags them):
  // their values are the sums of the per-type gauges of the same name without _total.
  for (const name of ['active_handles', 'active_requests', 'active_resources'])
    registry.removeSingleMetric(`switchboard_nodejs_${name}_total`);
  const commands = new Counter({
    name: 'switchboard_commands_total',
    help: 'Commands by workspace, type and outcome status (202: not known in time)',
    labelNames: ['workspace', 'type', 'status'],
    registers: [registry],
  });
  const dispatchStep = new Histogram({
    name: 'switchboard_dispatcher_step_duration_seconds',
    help: "Duration of this process's dispatcher steps (one dispatch Lua call each), by workspace",
    labelNames: ['workspace'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  const archivedSegments = new Counter({
    name: 'switchboard_archiver_segments_written_total',
    help: "Segments this process's archiver wrote to ARCHIVE_DIR since start, by workspace and stream",
    labelNames: ['workspace', 'stream'],
    registers: [registry],
  });
  const archivedEntries = new Counter({
    name: 'switchboard_archiver_entries_archived_total',
    help: "Stream entries this process's archiver moved to ARCHIVE_DIR since start, by workspace and stream",
    labelNames: ['workspace', 'stream'],
    registers: [registry],
  });
  const subscribers = new Gauge({
    name: 'switchboard_websocket_subscribers',
    help: 'WebSocket subscribers connected to this instance, by workspace (those with a live tail here)',
    labelNames: ['workspace'],
    registers: [registry],
  });
  return {
    registry,
    httpRequests: new Histogram({
      name: 'switchboard_http_request_duration_seconds',
      help: 'HTTP request duration by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    commands,
    /** Counts a command's answer (`status`: its HTTP status) in its workspace. */
    countCommand(workspace: string, type: string, status: number | string): void {
      commands.inc({ workspace: labels.of(workspace), type, status: String(status) });
    },
    dispatchStep,
    /** Observes one dispatcher step of `workspace` (the dispatcher's `observeStep`). */
    observeStep(seconds: number, workspace: string): void {
      dispatchStep.observe({ workspace: labels.of(workspace) }, seconds);
    },
    subscribers,
    projected: new Counter({
      name: 'switchboard_projector_commands_applied_total',
      help: 'Commands applied by this process since start',
      registers: [registry],
    }),
    assignments: new Counter({
      name: 'switchboard_dispatcher_assignments_total',
      help: 'Assignments made by this process since start',
      registers: [registry],
    }),
    liveFillEvents: new Counter({
      name: 'switchboard_live_fill_events_total',
      help: "Events this instance's live tails read from the archive since start: trimmed past a tail before it read them (an instance stalled or cut off from Redis while the archiver moved them), handed to its feeds",
      registers: [registry],
    }),
    liveFillFailures: new Counter({
      name: 'switchboard_live_fill_failures_total',
      help: "Fills from the archive this instance's live tails could not make since start (a segment missing or damaged, ARCHIVE_DIR unreadable): each closed the live feeds before the events with 1011; the error logged says what to restore",
      registers: [registry],
    }),
    archivedSegments,
    archivedEntries,
    /** The archiver's counts (src/archive/archiver.ts `ArchiverObserver`). */
    archiver: {
      /** The archiver took `workspace`: its streams' series exist from here, at 0. */
      serving(workspace: string, streams: readonly string[]): void {
        for (const stream of streams) {
          const l = { workspace: labels.of(workspace), stream };
          archivedSegments.inc(l, 0);
          archivedEntries.inc(l, 0);
        }
      },
      /** A segment of `entries` entries written to the stream's archive. */
      archived(workspace: string, stream: string, entries: number): void {
        const l = { workspace: labels.of(workspace), stream };
        archivedSegments.inc(l);
        archivedEntries.inc(l, entries);
      },
    },
    archiveRefused: new Gauge({
      name: 'switchboard_archiver_streams_refused',
      help: "1 for a stream this process's archiver refuses to archive (its archive folder cannot be written, or the archive does not match Redis: the error logged says why), 0 for the others it serves",
      labelNames: ['workspace', 'stream'],
      registers: [registry],
    }),
    /** Each workspace's queues, waits, agents and counters, read from Redis at scrape time. */
    workspaces: createWorkspaceMetrics(registry),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** A counter kept elsewhere (a worker's running count), set to its value at scrape time. */
export function setCounter(counter: Counter, value: number): void {
  counter.reset();
  if (value > 0) counter.inc(value);
}

/**
 * The subscribers of each workspace with a live tail here (0 included), set anew at each scrape:
 * the MAX_WORKSPACES first by name, the rest summed under OTHER_WORKSPACES.
 */
export function setSubscribers(
  gauge: Gauge,
  perWorkspace: ReadonlyMap<string, number>,
  max = MAX_WORKSPACES,
): void {
  gauge.reset();
  const names = [...perWorkspace.keys()].sort();
  for (const ws of names.slice(0, max)) gauge.set({ workspace: ws }, perWorkspace.get(ws) ?? 0);
  if (names.length > max)
    gauge.set(
      { workspace: OTHER_WORKSPACES },
      names.slice(max).reduce((n, ws) => n + (perWorkspace.get(ws) ?? 0), 0),
    );
}

/**
 * The streams an archiver serves, 1 for those it refuses, set anew at each scrape: the
 * MAX_WORKSPACES first workspaces by name, the rest summed per stream under OTHER_WORKSPACES.
 */
export function setArchiveRefused(
  gauge: Gauge,
  streams: readonly { workspace: string; stream: string; refused: boolean }[],
  max = MAX_WORKSPACES,
): void {
  gauge.reset();
  const named = new Set([...new Set(streams.map((s) => s.workspace))].sort().slice(0, max));
  for (const s of streams) {
    const l = { workspace: named.has(s.workspace) ? s.workspace : OTHER_WORKSPACES, stream: s.stream };
    gauge.inc(l, s.refused ? 1 : 0);
  }
}

/** What a process reports besides its metrics: its workers' running counts and workspaces. */
export interface WorkerReport {
  readonly workspaces: readonly string[];
  readonly projectorApplied?: number;
  readonly dispatcherAssignments?: number;
  /** With the archiver role: the streams it serves, and which it refuses. */
  readonly archiverStreams?: readonly { workspace: string; stream: string; refused: boolean }[];
  /** With the api role: each workspace tail's WebSocket subscribers. */
  readonly subscribers?: ReadonlyMap<string, number>;
  /** With the api role: what the tails read from the archive (src/adapters/redis/tail.ts FillCounts). */
  readonly fills?: { readonly events: number; readonly failures: number };
}

/** The /metrics text of a process, its workspaces' figures read first (within their budget). */
export async function metricsText(m: Metrics, redis: RedisClient, r: WorkerReport): Promise<string> {
  if (r.projectorApplied !== undefined) setCounter(m.projected, r.projectorApplied);
  if (r.dispatcherAssignments !== undefined) setCounter(m.assignments, r.dispatcherAssignments);
  if (r.subscribers) setSubscribers(m.subscribers, r.subscribers);
  if (r.fills) {
    setCounter(m.liveFillEvents, r.fills.events);
    setCounter(m.liveFillFailures, r.fills.failures);
  }
  if (r.archiverStreams) setArchiveRefused(m.archiveRefused, r.archiverStreams);
  // Projector or dispatcher loops run here (their counts are reported): theirs, even none.
  const loops = r.projectorApplied !== undefined || r.dispatcherAssignments !== undefined;
  await refreshWorkspaceMetrics(m.workspaces, redis, r.workspaces, undefined, loops);
  return m.registry.metrics();
}

/**
 * GET /metrics on a port of its own (METRICS_PORT): the only /metrics of a process without the
 * api role (a dispatcher's step durations are observed where it runs). Anything else is a 404
 * problem.
 */
export async function serveMetrics(
  host: string,
  port: number,
  m: Metrics,
  text: () => Promise<string>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      text().then(
        (body) => {
          res.writeHead(200, { 'content-type': m.registry.contentType }).end(body);
        },
        (err: Error) => {
          const p = problem(500, 'internal', 'Internal error', err.message);
          res.writeHead(500, { 'content-type': PROBLEM_TYPE }).end(JSON.stringify(p));
        },
      );
      return;
    }
    const p = problem(
      404,
      'no-route',
      'No such route',
      `${req.method} ${path}: this port serves GET /metrics only`,
    );
    res.writeHead(404, { 'content-type': PROBLEM_TYPE }).end(JSON.stringify(p));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
