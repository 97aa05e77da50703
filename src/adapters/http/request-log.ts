/**
 * One log line per request, written when the answer has gone: method, URL, status, time taken,
 * the client address (`req.ip`: X-Forwarded-For only from the proxies in TRUST_PROXY) and what
 * the route added (a command's id, type and position). Health checks and scrapes (`/health`,
 * `/status`, `/metrics`, polled by HAProxy and Prometheus) log at debug; answers of 5xx at warn;
 * everything else at info.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';

const fields = new WeakMap<FastifyRequest, Record<string, unknown>>();

/** Adds fields to the request's one log line. */
export function addLogFields(req: FastifyRequest, more: Record<string, unknown>): void {
  fields.set(req, { ...fields.get(req), ...more });
}

const QUIET_ROUTES = new Set(['/health', '/status', '/metrics']);

export function installRequestLog(app: FastifyInstance): void {
  app.addHook('onResponse', (req, reply, done) => {
    const status = reply.statusCode;
    const level = status >= 500 ? 'warn' : QUIET_ROUTES.has(req.routeOptions.url ?? '') ? 'debug' : 'info';
    if ((req.log as Logger).isLevelEnabled(level))
      req.log[level](
        {
          method: req.method,
          url: req.url,
          status,
          ms: Math.round(reply.elapsedTime * 10) / 10,
          ip: req.ip,
          ...fields.get(req),
        },
        'request',
      );
    done();
  });
}
