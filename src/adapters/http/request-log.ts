/**
 * One log line per request, written when the answer has gone: method, URL, status, time taken,
 * the client address (`req.ip`: X-Forwarded-For only from the proxies in TRUST_PROXY) and what
 * the route added (a command's id, type and position). Its level (`requestLevel`): 5xx at warn
 * (but `/health`'s 503, the load balancer's answer while paused or stopping, at debug);
 * refused (4xx), answered 202 (no outcome in time) or slower than SLOW_REQUEST_MS at info; the
 * rest at debug, so a busy instance's log at info holds what needs a look.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * What the route adds to the request's one log line. On the request itself, not in a WeakMap
     * keyed by it: V8's young-generation collection holds a long-lived WeakMap's values as live
     * whatever their keys (src/adapters/http/frames.ts).
     */
    logFields?: Record<string, unknown>;
  }
}

/** Adds fields to the request's one log line. */
export function addLogFields(req: FastifyRequest, more: Record<string, unknown>): void {
  req.logFields = { ...req.logFields, ...more };
}

/**
 * The URL as logged: the value of a `ticket` query parameter (a live feed's one-time WebSocket
 * ticket) replaced, so a ticket a request left unused (a plain GET of the feed, a try on another
 * workspace) cannot be read from the log and spent.
 */
export function loggedUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((p) => {
      const eq = p.indexOf('=');
      const name = eq < 0 ? p : p.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // Not decodable: compared as it is.
      }
      return decoded === 'ticket' ? `${name}=[redacted]` : p;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

/** Health checks and scrapes, polled by HAProxy and Prometheus: at debug whatever their time. */
const QUIET_ROUTES = new Set(['/health', '/status', '/metrics']);

/** The level of a request's line. */
export function requestLevel(
  status: number,
  ms: number,
  route: string,
  slowRequestMs: number,
): 'warn' | 'info' | 'debug' {
  // /health's 503 is its answer to the load balancer (paused, stopping), asked every second by
  // each of them: the pause is said once as it starts (composition-root.ts), the stop too.
  if (route === '/health' && status === 503) return 'debug';
  if (status >= 500) return 'warn';
  if (QUIET_ROUTES.has(route)) return 'debug';
  return status >= 400 || status === 202 || ms >= slowRequestMs ? 'info' : 'debug';
}

export function installRequestLog(app: FastifyInstance, slowRequestMs: number): void {
  app.addHook('onResponse', (req, reply, done) => {
    const status = reply.statusCode;
    const ms = reply.elapsedTime;
    const level = requestLevel(status, ms, req.routeOptions.url ?? '', slowRequestMs);
    if ((req.log as Logger).isLevelEnabled(level))
      req.log[level](
        {
          method: req.method,
          url: loggedUrl(req.url),
          status,
          ms: Math.round(ms * 10) / 10,
          ip: req.ip,
          ...req.logFields,
        },
        'request',
      );
    done();
  });
}
