import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import { redisAdvice } from '../redis/advice.ts';
import type { RedisWatch } from '../redis/health-watch.ts';
import { KEY_ROOT, workspaceKeys } from '../redis/keys.ts';
import { luaScript, type RedisClient, runLua } from '../redis/scripts.ts';
import { type Problem, problem, sendProblem } from './problem.ts';

/**
 * What one caller, one instance and one request may take (docs/SECURITY.md, "Limits"): a request
 * rate per API key counted in Redis (so it holds across instances), WebSocket connections per key
 * (in Redis too) and per instance, the size of the request line and headers, and how long a client
 * may take to send a request or leave a connection idle; and which browser origins may call it.
 */
export interface LimitSettings {
  /** Requests per second per caller and the burst a whole budget lets through; undefined: no limit. */
  readonly rateLimit: { readonly perSecond: number; readonly burst: number } | undefined;
  /** Open WebSockets per caller, across instances; undefined: no cap. */
  readonly wsMaxPerKey: number | undefined;
  /** Open WebSockets on this instance; undefined: no cap. */
  readonly wsMaxPerInstance: number | undefined;
  /** Largest request line and headers, bytes (Node's maxHeaderSize; larger: 431). */
  readonly maxHeaderBytes: number;
  /** Longest request target (path and query), bytes (longer: 414). */
  readonly maxUrlBytes: number;
  /** How long a client may take to send the request line and headers (408 after). */
  readonly headersTimeoutMs: number;
  /** How long a client may take to send a whole request, body included (408 after). */
  readonly requestTimeoutMs: number;
  /** How long a kept-alive connection may sit idle between requests before it is closed. */
  readonly keepAliveTimeoutMs: number;
  /** Browser origins allowed to call the API (CORS); empty: none, and no CORS header is sent. */
  readonly corsOrigins: readonly string[];
  /**
   * How often the open sockets' slots are renewed, ms; undefined: SOCKET_SLOT_TTL_MS / 3. No
   * setting sets it: tests shorten it so as not to wait for a round.
   */
  readonly socketSlotRenewMs?: number;
}

const RATE = luaScript('rateLimit', new URL('../redis/lua/rate-limit-1.lua', import.meta.url));
export const SOCKET_SLOTS = luaScript(
  'socketSlots',
  new URL('../redis/lua/socket-slots-1.lua', import.meta.url),
);

/** A socket's slot lapses this long after its instance last renewed it (an instance that died). */
export const SOCKET_SLOT_TTL_MS = 60_000;

/** The Fastify options that bound what a client can hold: header size and the timeouts. */
export function serverLimitOptions(s: LimitSettings): Pick<
  FastifyServerOptions,
  'requestTimeout' | 'keepAliveTimeout'
> & {
  http: {
    maxHeaderSize: number;
    headersTimeout: number;
    requestTimeout: number;
    connectionsCheckingInterval: number;
  };
} {
  return {
    http: {
      maxHeaderSize: s.maxHeaderBytes,
      headersTimeout: s.headersTimeoutMs,
      requestTimeout: s.requestTimeoutMs,
      // Node checks the two timeouts above this often (30 s by default): a slow client is cut
      // off within a second of its deadline instead.
      connectionsCheckingInterval: Math.min(1000, s.headersTimeoutMs),
    },
    requestTimeout: s.requestTimeoutMs,
    keepAliveTimeout: s.keepAliveTimeoutMs,
  };
}

/**
 * Who a request is counted against: its API key (set by authentication, which runs before), or
 * without one (AUTH=off, the routes open to everyone) the client's address. A key's counters live
 * under its workspace's hash tag; an address's under `sb:addr:`.
 */
export function callerKeys(req: FastifyRequest): { readonly rate: string; readonly sockets: string } {
  const p = req.principal;
  if (p) {
    const prefix = workspaceKeys(p.workspace).prefix;
    return { rate: `${prefix}rate:${p.keyId}`, sockets: `${prefix}sockets:${p.keyId}` };
  }
  return { rate: `${KEY_ROOT}:addr:rate:${req.ip}`, sockets: `${KEY_ROOT}:addr:sockets:${req.ip}` };
}

/** What a browser script of an allowed origin may send and read (CORS_ORIGINS). */
const CORS_HEADERS = 'Authorization, Content-Type, Idempotency-Key, X-Request-Id';
const CORS_EXPOSED = 'Retry-After, X-Request-Id, Location, Idempotent-Replayed';

/**
 * The CORS headers of an answer to a request from `origin`: none unless it is one of `allowed`
 * (CORS_ORIGINS). The same on every answer, a route's or one written before any route runs
 * (src/adapters/http/edge.ts: headers too large, a bad percent-encoding), so a page of an allowed
 * origin can read each refusal's problem+json.
 */
export function corsHeaders(allowed: ReadonlySet<string>, origin: unknown): Record<string, string> {
  if (typeof origin !== 'string' || !allowed.has(origin)) return {};
  return {
    'access-control-allow-origin': origin,
    vary: 'Origin',
    'access-control-expose-headers': CORS_EXPOSED,
  };
}

/** Routes no limit applies to: the load balancer's health check and Prometheus's scrape. */
const UNLIMITED = new Set(['/health', '/metrics']);

function refuse(req: FastifyRequest, reply: FastifyReply, p: Problem, retryAfterS?: number): void {
  // An upgrade refused is a connection ended: its socket belongs to no HTTP parser any more.
  if (req.ws) reply.header('connection', 'close');
  if (retryAfterS !== undefined) reply.header('retry-after', String(retryAfterS));
  sendProblem(reply, p);
}

/**
 * How long a request waits for its rate-limit count. Redis not answering within it counts as not
 * reachable, as for the instance's own check (src/adapters/redis/health-watch.ts, 1 s), after
 * which nothing is counted: the request goes on. Before, the count waited the whole command
 * timeout (2 s) and the request then its own, so the first requests after Redis stopped answering
 * got their 503 after 4 s rather than 2 s (test/e2e/ops-edges-1.test.ts).
 */
const COUNT_WAIT_MS = 1000;

export interface LimitDeps {
  readonly redis: RedisClient;
  readonly watch: RedisWatch;
  readonly logger: Logger;
  readonly config: LimitSettings;
}

/**
 * Adds the limits' hooks to the app. The URL check is an onRequest hook added after the others,
 * authentication's among them (server.ts installs it before these): a request target longer than
 * MAX_URL_BYTES is a 414 on the open routes (/status, /openapi.json, ...) and on a workspace route
 * for a key that may use it, but a workspace route's request refused by authentication is answered
 * by it first: 401 without a valid key, 403 for another workspace's key, a role that may not use
 * the route or an agent key naming another agent in the path. (Node's maxHeaderSize bounds the
 * request line before any hook all the same: 431.) The rate limit in preParsing, after every
 * onRequest hook and before any body is read, so only a request that authenticated spends its
 * key's budget; the WebSocket caps in preHandler, once the live route has accepted the query,
 * right before the upgrade. When Redis cannot be reached the limits that count in it let requests
 * through: the route answers its own 503.
 */
export function installLimits(app: FastifyInstance, deps: LimitDeps): void {
  const { watch, config: s } = deps;
  const log = deps.logger.child({ part: 'limits' });
  // The counts go over a connection of their own: a request's check does not queue behind other
  // requests' long reads on the shared one (a replay, a page of events), nor they behind it.
  const counting = s.rateLimit !== undefined || s.wsMaxPerKey !== undefined;
  const redis = counting ? deps.redis.duplicate() : deps.redis;
  /**
   * Whether to count at all: not while Redis is known to be down (the watch saw its PING fail; not
   * before its first PING, at start), nor for a second after a count failed, so requests do not
   * each wait for a timeout before meeting Redis's trouble themselves. That second by the monotonic
   * clock: by Date.now(), a host clock stepped back N s after a failed count turned the rate limit
   * and the per-key WebSocket cap off for N s (test/security/limits-edges-4.test.ts).
   */
  let failedAt = -Infinity;
  const canCount = (): boolean => {
    const w = watch.status;
    return (w.reachable || w.error === 'not checked yet') && performance.now() - failedAt > 1000;
  };
  const countFailed = (what: string, err: unknown): void => {
    failedAt = performance.now();
    log.warn(
      { err: (err as Error).message },
      `${what}; the request was let through uncounted. ${redisAdvice(err)}`,
    );
  };
  /** Gives back the socket slots this instance still holds in Redis (set below when it takes any). */
  let giveSlotsBack = (): Promise<unknown> => Promise.resolve();
  if (counting) {
    redis.on('error', () => {}); // failures surface on the counts, which let the request through
    // QUIT lets counts in flight get their replies rather than failing them (under ioredis's
    // auto-pipelining, which the clients no longer use, a cut even threw outside any request).
    // Redis unreachable while stopping (health-watch.ts): neither is waited for, each would wait
    // out the command timeout; the slots lapse after SOCKET_SLOT_TTL_MS, as a crashed instance's.
    app.addHook('onClose', (_app, done) => {
      void watch
        .unlessUnreachable(
          giveSlotsBack()
            .then(() => redis.quit())
            .catch(() => redis.disconnect()),
        )
        .then((ended) => {
          if (!ended) redis.disconnect();
          done();
        });
    });
  }

  app.addHook('onRequest', (req, reply, done) => {
    const url = req.raw.url ?? '';
    if (url.length <= s.maxUrlBytes) return done();
    refuse(
      req,
      reply,
      problem(
        414,
        'uri-too-long',
        'URI too long',
        `The request target is ${url.length} bytes; this server reads at most ${s.maxUrlBytes}.`,
      ),
    );
  });

  if (s.corsOrigins.length > 0) {
    const allowed = new Set(s.corsOrigins);
    const allowedOrigin = (req: FastifyRequest): string | undefined => {
      const origin = req.headers.origin;
      return typeof origin === 'string' && allowed.has(origin) ? origin : undefined;
    };
    // A preflight: no route answers OPTIONS, and it carries no key; the browser asks before sending.
    app.addHook('onRequest', (req, reply, done) => {
      if (req.method !== 'OPTIONS' || req.headers['access-control-request-method'] === undefined)
        return done();
      if (!allowedOrigin(req)) return done();
      reply
        .code(204)
        .header('access-control-allow-methods', 'GET, POST, PUT, PATCH, DELETE')
        .header('access-control-allow-headers', CORS_HEADERS)
        .header('access-control-max-age', '600')
        .send();
    });
    // On every answer to an allowed origin, refusals by any hook included (a 401 the page can read).
    app.addHook('onSend', (req, reply, payload, done) => {
      for (const [name, value] of Object.entries(corsHeaders(allowed, req.headers.origin)))
        reply.header(name, value);
      done(null, payload);
    });
  }

  const rate = s.rateLimit;
  if (rate) {
    const interval = Math.max(1, Math.floor(1_000_000 / rate.perSecond));
    app.addHook('preParsing', (req, reply, payload, done) => {
      // An upgrade opened by a ticket: its ticket's request was counted, and a ticket opens one
      // upgrade only, so the key's budget still bounds its feeds (a burst of 1 could not open any).
      if (UNLIMITED.has(req.routeOptions.url ?? '') || req.principal?.byTicket || !canCount())
        return done(null, payload);
      // At most COUNT_WAIT_MS: past it the count is given up, as a failure (below).
      let timer: NodeJS.Timeout | undefined;
      Promise.race([
        runLua(redis, RATE, [callerKeys(req).rate], [interval, rate.burst]),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${COUNT_WAIT_MS} ms`)), COUNT_WAIT_MS);
        }),
      ]).then(
        (r) => {
          clearTimeout(timer);
          const [ok, n] = r as [number, number];
          if (ok === 1) return done(null, payload);
          const waitS = Math.max(1, Math.ceil(n / 1_000_000));
          refuse(
            req,
            reply,
            problem(
              429,
              'rate-limited',
              'Too many requests',
              `This ${req.principal ? 'API key' : 'client address'} sent more than ${rate.perSecond} requests a second (bursts of ${rate.burst}); send again in ${waitS} s (Retry-After). Nothing was changed.`,
              { retryAfterMs: Math.ceil(n / 1000) },
            ),
            waitS,
          );
        },
        (err: unknown) => {
          clearTimeout(timer);
          // Counting failed: the request goes on, and meets Redis's trouble itself if it needs Redis.
          countFailed('rate limit not counted', err);
          done(null, payload);
        },
      );
    });
  }

  if (s.wsMaxPerKey === undefined && s.wsMaxPerInstance === undefined) return;
  const instance = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  let serial = 0;
  /** Sockets this instance holds, upgrading or open. */
  let open = 0;
  /** Each caller's slots taken in Redis by this instance, renewed while their sockets are open. */
  const held = new Map<string, Set<string>>();
  /**
   * Renews every caller's slots, and when some renewals fail says so once for the round: one line
   * per key would be thousands every round through an outage when thousands of keys hold sockets.
   */
  let renewing = false;
  const renewAll = async (): Promise<void> => {
    const keys = [...held];
    const failures = (
      await Promise.all(
        keys.map(([key, members]) =>
          runLua(redis, SOCKET_SLOTS, [key], ['keep', SOCKET_SLOT_TTL_MS, ...members]).then(
            () => undefined,
            (err: unknown) => err,
          ),
        ),
      )
    ).filter((err) => err !== undefined);
    if (failures.length === 0) return;
    const first = failures[0];
    log.warn(
      { failed: failures.length, keys: keys.length, err: (first as Error).message },
      `socket slots of ${failures.length} of ${keys.length} callers not renewed (first error: ${(first as Error).message}); they lapse after ${SOCKET_SLOT_TTL_MS} ms unless a later renewal succeeds, and their sockets then no longer count against WS_MAX_PER_KEY. ${redisAdvice(first)}`,
    );
  };
  const renew = setInterval(
    () => {
      // A round still waiting for Redis (its command timeout longer than the interval) is not
      // joined by another: the next round starts once it has ended.
      if (renewing || held.size === 0) return;
      renewing = true;
      void renewAll().finally(() => {
        renewing = false;
      });
    },
    s.socketSlotRenewMs ?? SOCKET_SLOT_TTL_MS / 3,
  );
  renew.unref();
  app.addHook('onClose', (_app, done) => {
    clearInterval(renew);
    done();
  });
  // The sockets still open when the server closes are being closed with it (1001), and their own
  // ZREM would come after the counting connection quit: their slots go before it, rather than
  // lapsing SOCKET_SLOT_TTL_MS later and refusing their clients' reconnects to another instance
  // meanwhile (a key at its WS_MAX_PER_KEY, through a rolling restart).
  giveSlotsBack = () => {
    const all = [...held];
    held.clear();
    return Promise.all(all.map(([key, members]) => redis.zrem(key, ...members).catch(() => {})));
  };

  app.addHook('preHandler', (req, reply, done) => {
    if (!req.ws || (req.routeOptions.config as { websocket?: boolean } | undefined)?.websocket !== true)
      return done();
    if (s.wsMaxPerInstance !== undefined && open >= s.wsMaxPerInstance)
      return refuse(
        req,
        reply,
        problem(
          503,
          'too-many-connections',
          'Too many connections',
          `This instance holds ${s.wsMaxPerInstance} WebSockets, its most; connect again (another instance may take it).`,
        ),
        5,
      );
    const socket = req.raw.socket;
    // The client left while the checks before this ran (a reset, its process gone): the socket has
    // closed already, and its 'close' would never come to give a slot back. Nothing is counted; the
    // upgrade finds the socket ended and opens nothing.
    if (socket.destroyed) return done();
    open++;
    const key = callerKeys(req).sockets;
    const member = `${instance}:${++serial}`;
    let closed = false;
    let taken = false;
    const release = (): void => {
      if (closed) return;
      closed = true;
      open--;
      if (!taken) return;
      const members = held.get(key);
      members?.delete(member);
      if (members?.size === 0) held.delete(key);
      redis.zrem(key, member).catch(() => {}); // a slot left behind lapses by itself
    };
    socket.once('close', release);
    if (s.wsMaxPerKey === undefined || !canCount()) return done();
    runLua(redis, SOCKET_SLOTS, [key], ['take', s.wsMaxPerKey, SOCKET_SLOT_TTL_MS, member]).then(
      (r) => {
        if (r !== 1) {
          release();
          return refuse(
            req,
            reply,
            problem(
              429,
              'too-many-websockets',
              'Too many WebSockets',
              `This ${req.principal ? 'API key' : 'client address'} holds ${s.wsMaxPerKey} open WebSockets, its most; close one first.`,
            ),
            5,
          );
        }
        taken = true;
        if (closed) {
          // The client left while the slot was taken.
          redis.zrem(key, member).catch(() => {});
          return done();
        }
        const members = held.get(key) ?? new Set<string>();
        held.set(key, members);
        members.add(member);
        done();
      },
      (err: unknown) => {
        countFailed('websocket slot not counted', err);
        done();
      },
    );
  });
}
