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

/** Query parameters whose value is a credential whatever it holds: a feed's ticket, RFC 6750's token. */
const SECRET_PARAMS = new Set(['ticket', 'access_token']);

/**
 * A key's or a ticket's secret wherever it stands in a URL (a key sent as `?key=`, pasted into a
 * path): the key id before it is public and stays. Its characters are base64url, never encoded.
 */
const SECRET_TOKEN = /(sb_[0-9a-f]{16}_|wst_)[A-Za-z0-9_-]{43}/g;

/**
 * The URL as logged: the value of a `ticket` query parameter (a live feed's one-time WebSocket
 * ticket) or an `access_token` one (where RFC 6750 puts a bearer token) replaced, and the secret of
 * every API key or ticket elsewhere in it, so neither a key a client put in its URL (refused: keys
 * go in the Authorization header) nor a ticket a request left unused (a plain GET of the feed, a
 * try on another workspace) can be read from the log and used.
 */
export function loggedUrl(url: string): string {
  const masked = url.replace(SECRET_TOKEN, '$1[redacted]');
  const q = masked.indexOf('?');
  if (q < 0) return masked;
  const params = masked
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
      return SECRET_PARAMS.has(decoded) ? `${name}=[redacted]` : p;
    });
  return `${masked.slice(0, q)}?${params.join('&')}`;
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
