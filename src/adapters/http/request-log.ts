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
 * path): the key id before it is public and stays. Its characters are base64url, yet a client may
 * percent-encode any of them (`sb%5F...`, a URL encoded twice): it is looked for in the URL as
 * sent and as decoded, once and again.
 */
const SECRET_TOKEN = /(sb_[0-9a-f]{16}_|wst_)[A-Za-z0-9_-]{43}/g;

/** How many times a URL is decoded in the search for a secret (a URL encoded twice, three times). */
const DECODINGS = 3;

const PERCENT = /%[0-9A-Fa-f]{2}/;

/**
 * The ranges of `url` (start, end) that hold a key's or ticket's secret, in any of its decodings:
 * each decoded character keeps the range of the URL it came from.
 */
function secretRanges(url: string): [number, number][] {
  const ranges: [number, number][] = [];
  let text = url;
  // By UTF-16 unit, as matchAll's indices count (not by code point, as Array.from(url) would).
  let from: [number, number][] = Array.from({ length: url.length }, (_c, i) => [i, i + 1]);
  for (let level = 0; ; level++) {
    for (const m of text.matchAll(SECRET_TOKEN)) {
      const start = m.index + m[1]!.length;
      ranges.push([from[start]![0], from[m.index + m[0].length - 1]![1]]);
    }
    if (level === DECODINGS || !PERCENT.test(text)) return ranges;
    let next = '';
    const nextFrom: [number, number][] = [];
    for (let i = 0; i < text.length; i++) {
      const hex = text[i] === '%' ? text.slice(i + 1, i + 3) : '';
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        next += String.fromCharCode(Number.parseInt(hex, 16));
        nextFrom.push([from[i]![0], from[i + 2]![1]]);
        i += 2;
      } else {
        next += text[i];
        nextFrom.push(from[i]!);
      }
    }
    text = next;
    from = nextFrom;
  }
}

const HAS_SECRET = new RegExp(SECRET_TOKEN.source);
const decodeOnce = (text: string) =>
  text.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));

/** Whether `url` or one of its decodings holds a secret: the mapping of ranges is built only then. */
function holdsSecret(url: string): boolean {
  let text = url;
  for (let level = 0; ; level++) {
    if (HAS_SECRET.test(text)) return true;
    if (level === DECODINGS || !PERCENT.test(text)) return false;
    text = decodeOnce(text);
  }
}

/** `url` with every secret's range replaced (each once, however many decodings found it). */
function maskSecrets(url: string): string {
  if (!url.includes('%')) return url.replace(SECRET_TOKEN, '$1[redacted]');
  // Most URLs with a % hold no secret: they cost a few replaces, not a range per character.
  if (!holdsSecret(url)) return url;
  const ranges = secretRanges(url).sort((a, b) => a[0] - b[0]);
  let out = '';
  let at = 0;
  for (const [start, end] of ranges) {
    if (end <= at) continue;
    out += `${url.slice(at, Math.max(at, start))}[redacted]`;
    at = end;
  }
  return out + url.slice(at);
}

/**
 * The URL as logged: the value of a `ticket` query parameter (a live feed's one-time WebSocket
 * ticket) or an `access_token` one (where RFC 6750 puts a bearer token) replaced, and the secret of
 * every API key or ticket elsewhere in it, percent-encoded or not, so neither a key a client put in
 * its URL (refused: keys go in the Authorization header) nor a ticket a request left unused (a
 * plain GET of the feed, a try on another workspace) can be read from the log and used.
 */
export function loggedUrl(url: string): string {
  const masked = maskSecrets(url);
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

/**
 * Writes a request's one line. `route`: the route's pattern (`''` when none matched); the
 * answers written before any route (edge.ts's `frameworkErrors`, which no hook sees) call it too.
 */
export function logRequest(
  req: FastifyRequest,
  status: number,
  ms: number,
  route: string,
  slowRequestMs: number,
): void {
  const level = requestLevel(status, ms, route, slowRequestMs);
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
}

export function installRequestLog(app: FastifyInstance, slowRequestMs: number): void {
  app.addHook('onResponse', (req, reply, done) => {
    logRequest(req, reply.statusCode, reply.elapsedTime, req.routeOptions.url ?? '', slowRequestMs);
    done();
  });
}
