import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { createWorkspaceMetrics } from './workspace-metrics.ts';

/** Prometheus metrics of one process, served at /metrics. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'switchboard_' });
  // Gauges named _total, which Prometheus keeps for counters (promtool check metrics flags them):
  // their values are the sums of the per-type gauges of the same name without _total.
  for (const name of ['active_handles', 'active_requests', 'active_resources'])
    registry.removeSingleMetric(`switchboard_nodejs_${name}_total`);
  return {
    registry,
    httpRequests: new Histogram({
      name: 'switchboard_http_request_duration_seconds',
      help: 'HTTP request duration by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    commands: new Counter({
      name: 'switchboard_commands_total',
      help: 'Commands by type and outcome status (202: not known in time)',
      labelNames: ['type', 'status'],
      registers: [registry],
    }),
    subscribers: new Gauge({
      name: 'switchboard_websocket_subscribers',
      help: 'WebSocket subscribers connected to this instance',
      registers: [registry],
    }),
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
