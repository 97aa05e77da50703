import type { FastifyInstance } from 'fastify';
import { docsRoutes } from './docs-ui.ts';
import { metricsText } from './metrics.ts';
import { problem, sendProblem } from './problem.ts';

export interface RoleReport {
  readonly roles: readonly string[];
  readonly workspaces: readonly string[];
  readonly projectorApplied?: number;
  readonly dispatcherAssignments?: number;
  /** With the archiver role: the streams it serves, and which it refuses (/metrics). */
  readonly archiverStreams?: readonly { workspace: string; stream: string; refused: boolean }[];
}

const started = Date.now();

/** Health for the load balancer, status for people, metrics for Prometheus, the API's docs (/docs). */
export async function operationRoutes(app: FastifyInstance): Promise<void> {
  const { watch, metrics, roles, version, tails, redis } = app.deps;

  const stopping = app.deps.stopping ?? (() => false);

  // 200 while this process can serve: the load balancer takes it out when Redis is gone for it,
  // or when it is stopping (it still serves during its drain, LB_DRAIN_MS or longer while requests
  // still arrive, then closes).
  app.get('/health', async (_req, reply) => {
    if (stopping())
      return sendProblem(
        reply.header('retry-after', '1'),
        problem(
          503,
          'shutting-down',
          'Shutting down',
          'This instance is stopping: it answers the requests it still gets for LB_DRAIN_MS (longer while they keep coming), then closes; send new ones to another instance.',
          { state: 'stopping' },
        ),
      );
    const reason = watch.pausedReason;
    if (reason)
      return sendProblem(
        reply.header('retry-after', '1'),
        problem(503, 'redis-unavailable', 'Storage unavailable', reason, { state: 'paused' }),
      );
    return { status: 'ok' };
  });

  app.get('/status', async () => {
    const reason = watch.pausedReason;
    const r = roles();
    return {
      version,
      state: stopping() ? 'stopping' : reason ? 'paused' : 'running',
      ...(reason ? { reason } : {}),
      roles: r.roles,
      workspaces: r.workspaces,
      redis: watch.status,
      // "off" only with AUTH=off: then anyone who reaches the port can do anything.
      auth: app.deps.config.auth,
      uptimeS: Math.round((Date.now() - started) / 1000),
      pid: process.pid,
      subscribers: tails.subscribers,
      ...(r.projectorApplied !== undefined ? { projectorApplied: r.projectorApplied } : {}),
      ...(r.dispatcherAssignments !== undefined ? { dispatcherAssignments: r.dispatcherAssignments } : {}),
    };
  });

  app.get('/metrics', async (_req, reply) => {
    // Bounded (workspace-metrics.ts): a Redis too slow to answer leaves workspace_up 0, not a hung scrape.
    const text = await metricsText(metrics, redis, {
      ...roles(),
      subscribers: tails.subscribersByWorkspace(),
      fills: tails.fills,
    });
    reply.type(metrics.registry.contentType);
    return text;
  });

  await app.register(docsRoutes);
}
