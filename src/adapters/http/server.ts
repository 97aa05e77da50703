import type { IncomingMessage } from 'node:http';
import websocket from '@fastify/websocket';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { REPORT_DEFECT } from '../redis/advice.ts';
import type { StepAppend } from '../redis/command-log.ts';
import type { EventHistory } from '../redis/event-log.ts';
import type { RedisWatch } from '../redis/health-watch.ts';
import type { RedisClient } from '../redis/scripts.ts';
import type { TailHub } from '../redis/tail.ts';
import { installAuth } from './auth.ts';
import { commandRoutes } from './commands.ts';
import {
  badHandshake,
  clientErrorHandler,
  expectationProblem,
  fragmentProblem,
  frameworkProblem,
  handshakeProblem,
  headersProblem,
  onWebSocketClientError,
  refuseConnect,
  refuseExpectation,
} from './edge.ts';
import { intervalRoutes } from './intervals.ts';
import { contentEncodingProblem, parseJsonBody } from './json-body.ts';
import { keyRoutes } from './keys.ts';
import { lazyChild } from './lazy-logger.ts';
import { corsHeaders, installLimits, type LimitSettings, serverLimitOptions } from './limits.ts';
import { liveRoutes, resumeAfter } from './live.ts';
import type { Metrics } from './metrics.ts';
import { openapiRoute } from './openapi.ts';
import { operationRoutes, type RoleReport } from './operations.ts';
import { pageRoutes } from './pages.ts';
import {
  archiveUnreadable,
  HistoryUnreadableError,
  internalError,
  isRedisUnavailable,
  ProblemError,
  problem,
  redisUnavailable,
  redisUnavailableLog,
  sendProblem,
} from './problem.ts';
import { queryRoutes } from './queries.ts';
import { requestIdOfRequest } from './request-id.ts';
import { installRequestLog, logRequest } from './request-log.ts';
import { type StateAt, stateRoutes } from './state.ts';

export { MAX_REQUEST_ID, requestIdOf } from './request-id.ts';

/** A step of this process's projector right behind a tick's appends (src/app/composition-root.ts). */
export interface ProjectSoon {
  /** Whether this process's projector serves the workspace: only then is `append` of use. */
  serves(workspace: string): boolean;
  /**
   * Appends the command in the workspace's next projector step, sent at the end of this tick with
   * the tick's other commands, which applies it: resolves as append-command-4.lua answers.
   */
  append(workspace: string, append: StepAppend): Promise<unknown[]>;
}

/** The part of the configuration the API reads (src/app/config.ts documents each). */
export interface ApiSettings extends LimitSettings {
  readonly commandTimeoutMs: number;
  readonly queryTimeoutMs: number;
  readonly bodyLimit: number;
  readonly idempotencyTtlS: number;
  readonly durability: 'local' | 'replicated';
  readonly replicaWaitMs: number;
  readonly liveMaxBufferedBytes: number;
  readonly liveMaxHeldEvents: number;
  /** A live feed silent this long sends a heartbeat message; undefined: none (LIVE_HEARTBEAT_MS). */
  readonly liveHeartbeatMs?: number | undefined;
  /** How often a live feed is pinged (LIVE_PING_MS); 15 s when not given. */
  readonly livePingMs?: number;
  /** on: API keys are required on every workspace route (src/adapters/http/auth.ts). */
  readonly auth: 'on' | 'off';
  /** Proxies whose X-Forwarded-For gives the client address (TRUST_PROXY); none when empty. */
  readonly trustProxy?: readonly string[];
  /** A request this slow logs its line at info (SLOW_REQUEST_MS); default 1000. */
  readonly slowRequestMs?: number;
}

export interface ApiDeps {
  readonly redis: RedisClient;
  readonly tails: TailHub;
  readonly config: ApiSettings;
  readonly watch: RedisWatch;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly roles: () => RoleReport;
  readonly version: string;
  /**
   * With the projector role in this process: the workspace's new commands applied right behind
   * this tick's appends (src/app/composition-root.ts), so the outcome comes sooner.
   */
  readonly projectSoon?: ProjectSoon;
  /** The event history (GET /events, a live feed's replay): across the archive when there is one. */
  readonly history?: EventHistory;
  /** The state at an event position (GET /state?at=): the composition root's replay (src/audit/state-at.ts). */
  readonly stateAt?: StateAt;
  /**
   * True once the instance is stopping (a SIGTERM): during its drain (LB_DRAIN_MS) it still serves,
   * but `/health` answers 503 `shutting-down` and `/status` says `stopping`, so a load balancer
   * checking `/health` takes it out before it closes.
   */
  readonly stopping?: () => boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    deps: ApiDeps;
  }
}

/** The HTTP and WebSocket API. Every error leaves as problem+json; no input can crash it. */
export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const logger = deps.logger as FastifyBaseLogger;
  let closing = false;
  const limits = serverLimitOptions(deps.config);
  const corsOrigins = new Set(deps.config.corsOrigins);
  const app = Fastify({
    loggerInstance: logger,
    // A request's logger is made when it first writes a line (most requests write none at warn).
    childLoggerFactory: (parent, bindings, options) =>
      (Object.keys(options).length > 0
        ? parent.child(bindings, options)
        : lazyChild(parent as Logger, bindings)) as FastifyBaseLogger,
    bodyLimit: deps.config.bodyLimit,
    requestIdHeader: false,
    genReqId: (req) => requestIdOfRequest(req),
    // One line per request, after the answer (request-log.ts), rather than fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: deps.config.trustProxy?.length ? [...deps.config.trustProxy] : false,
    // Fastify's own 503 while closing is plain JSON: the onRequest hook below answers it instead.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // Header size and the timeouts that cut slow clients off (src/adapters/http/limits.ts).
    ...limits,
    // A request without Host is answered by the hook below (problem+json), not by Node's bare 400.
    http: { ...limits.http, requireHostHeader: false },
    routerOptions: { maxParamLength: 200, ignoreTrailingSlash: true },
    clientErrorHandler: clientErrorHandler(logger, deps.config.corsOrigins),
    // No hook runs for these: their CORS headers (as limits.ts sets them), line and count are here.
    frameworkErrors: (err, req, reply) => {
      // Timed from here, as fastify's `elapsedTime` of every other request is from its route's
      // handler: both are called by the router in the tick Node read the request's headers.
      const start = performance.now();
      reply.header('x-request-id', req.id);
      for (const [name, value] of Object.entries(corsHeaders(corsOrigins, req.headers.origin)))
        reply.header(name, value);
      if ((req.raw as IncomingMessage & { upgrade?: boolean }).upgrade) {
        // No hook runs for these, so the websocket plugin does not end the upgrade's socket,
        // which no HTTP parser owns any more: nothing would ever close it.
        reply.header('connection', 'close');
        reply.raw.once('finish', () => req.raw.socket.destroy());
      }
      const p = frameworkProblem(err, req.raw.url ?? '');
      if (p.status >= 500) req.log.error({ err }, 'routing failed');
      // The request's line and its count, which the onResponse hooks would have written (on
      // 'finish', as theirs: an answer the client did not take is no request's line there either).
      reply.raw.once('finish', () => {
        const ms = performance.now() - start;
        logRequest(req, reply.statusCode, ms, '', deps.config.slowRequestMs ?? 1000);
        deps.metrics.httpRequests.observe(
          { method: req.method, route: 'unknown', status: String(reply.statusCode) },
          ms / 1000,
        );
      });
      sendProblem(reply, p);
    },
  });
  app.decorate('deps', deps);
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });

  // Empty bodies are allowed on body-less commands; anything else must be JSON.
  app.removeAllContentTypeParsers(); // text/plain included: a non-JSON body answers 415
  // Read as bytes: a body that is not UTF-8 is refused (json-body.ts), not decoded leniently.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => {
    const parsed = parseJsonBody(body as Buffer);
    if ('problem' in parsed) done(new ProblemError(parsed.problem), undefined);
    else done(null, parsed.value);
  });

  // A body in a content coding is refused before it is read (json-body.ts).
  app.addHook('preParsing', (req, reply, payload, done) => {
    const h = req.headers;
    const hasBody = h['transfer-encoding'] !== undefined || Number(h['content-length'] ?? 0) > 0;
    const coded = contentEncodingProblem(h['content-encoding'], hasBody);
    if (!coded) return done(null, payload);
    reply.header('accept-encoding', 'identity');
    sendProblem(reply, coded);
  });

  // Hooks that run for every request take a callback (no promise each time).
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    const bad = headersProblem(req.raw) ?? fragmentProblem(req.raw.url ?? '');
    if (!closing && !bad) return done();
    reply.header('connection', 'close');
    // An upgrade's socket belongs to no HTTP parser: answered alone, it would stay open, and the
    // server's close would wait for it for ever (as frameworkErrors above does).
    if ((req.raw as IncomingMessage & { upgrade?: boolean }).upgrade)
      reply.raw.once('finish', () => req.raw.socket.destroy());
    if (bad) return sendProblem(reply, bad);
    reply.header('retry-after', '1');
    sendProblem(
      reply,
      problem(
        503,
        'shutting-down',
        'Shutting down',
        'This instance is stopping; send the request again (another instance will take it).',
      ),
    );
  });
  installRequestLog(app, deps.config.slowRequestMs ?? 1000);
  // Whatever answers an upgrade (a route's check, the router, the error handler) refuses it.
  app.addHook('onSend', (req, reply, payload, done) => {
    endsUpgrade(req, reply);
    done(null, payload);
  });
  app.addHook('onResponse', (req, reply, done) => {
    deps.metrics.httpRequests.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    done();
  });

  app.setErrorHandler((err: FastifyError | ProblemError, req, reply) => {
    if (err instanceof ProblemError) return sendProblem(reply, err.problem);
    if (err instanceof HistoryUnreadableError) {
      req.log.error({ workspace: err.workspace, err: err.message }, 'history unreadable from the archive');
      return sendProblem(reply, archiveUnreadable(err.workspace, req.id, err.hole));
    }
    if (isRedisUnavailable(err)) {
      req.log.warn({ err: err.message }, redisUnavailableLog(err));
      reply.header('retry-after', '1');
      return sendProblem(reply, redisUnavailable(err, req.method === 'GET' || req.method === 'HEAD'));
    }
    const status = (err as FastifyError).statusCode ?? 500;
    if (status >= 500) {
      req.log.error({ err }, `request failed; answered 500. ${REPORT_DEFECT}`);
      return sendProblem(reply, internalError(req.id));
    }
    const code = (err as FastifyError).code ?? '';
    const slug =
      status === 413
        ? 'body-too-large'
        : status === 415
          ? 'unsupported-media-type'
          : code === 'FST_ERR_CTP_INVALID_JSON_BODY'
            ? 'invalid-json'
            : 'bad-request';
    const detail =
      status === 413
        ? `The body is larger than ${deps.config.bodyLimit} bytes; send a smaller one.`
        : status === 415
          ? 'Send the body as application/json.'
          : err.message;
    return sendProblem(
      reply,
      problem(
        status,
        slug,
        status === 413 ? 'Body too large' : status === 415 ? 'Unsupported media type' : 'Bad request',
        detail,
      ),
    );
  });

  app.setNotFoundHandler((req, reply) =>
    sendProblem(
      reply,
      problem(
        404,
        'no-route',
        'No such route',
        `${req.method} ${req.url.split('?')[0]} is not a route of this API; see /openapi.json.`,
      ),
    ),
  );

  await app.register(websocket, {
    // An open socket's errors are the client's (a frame the protocol forbids, one over maxPayload,
    // a reset): logged as what they are, not as the server's errors; the socket is ended.
    errorHandler(err, socket, req) {
      const code = (err as Error & { code?: string }).code ?? '';
      if (code.startsWith('WS_ERR_'))
        req.log.info({ code, reason: err.message }, 'websocket closed: protocol error');
      else req.log.debug({ code, reason: err.message }, 'websocket error');
      socket.terminate();
    },
    options: { maxPayload: 4096 },
    preClose(done) {
      // Upgraded sockets are not tracked by fastify: close them before the server drains.
      for (const client of this.websocketServer.clients) {
        const after = resumeAfter.get(client)?.();
        client.close(1001, `server shutting down; reconnect${after ? ` with after=${after}` : ''}`);
      }
      done();
    },
  });
  app.websocketServer.on('wsClientError', onWebSocketClientError(logger));
  // An upgrade's 101 is written by the WebSocket server, which no hook sees (the reply is
  // hijacked): it carries the request id as every answer does, and gets its request line and its
  // count (status 101, by route) as it goes out.
  const upgrades = new WeakMap<IncomingMessage, { req: FastifyRequest; start: number }>();
  app.addHook('onRequest', (req, _reply, done) => {
    if (req.ws) upgrades.set(req.raw, { req, start: performance.now() });
    done();
  });
  app.websocketServer.on('headers', (headers: string[], raw: IncomingMessage) => {
    const upgrade = upgrades.get(raw);
    if (!upgrade) return;
    upgrades.delete(raw);
    const { req, start } = upgrade;
    headers.push(`X-Request-Id: ${req.id}`);
    // The 101 is written right after this event: the line follows it.
    process.nextTick(() => {
      const ms = performance.now() - start;
      const route = req.routeOptions.url ?? 'unknown';
      logRequest(req, 101, ms, route, deps.config.slowRequestMs ?? 1000);
      deps.metrics.httpRequests.observe({ method: req.method, route, status: '101' }, ms / 1000);
    });
  });
  app.server.on('connect', refuseConnect(logger));
  app.server.on('checkExpectation', refuseExpectation(logger));
  // After the plugin's own hook, which marks upgrades (req.ws): a bad handshake is answered here,
  // before any route runs or any body is read.
  app.addHook('onRequest', (req, reply, done) => {
    if (!req.ws || req.routeOptions.url === undefined) return done(); // no route: the 404 answers
    // Node checks no Expect on an upgrade: an expectation it cannot meet is refused as on requests.
    const expectation = expectationProblem(req.raw);
    if (expectation) {
      reply.header('connection', 'close');
      return sendProblem(reply, expectation);
    }
    // A route that is no WebSocket route would upgrade and close at once: refuse it before.
    const isLive = (req.routeOptions.config as { websocket?: boolean } | undefined)?.websocket === true;
    const handshake = handshakeProblem(req.raw);
    const bad = isLive
      ? handshake
      : {
          problem: badHandshake([
            ...(handshake?.problem.errors ?? []),
            {
              path: 'url',
              message: `${req.url.split('?')[0]} is not a WebSocket route; the live feed is /v1/workspaces/{ws}/events/live`,
            },
          ]),
          headers: handshake?.headers ?? {},
        };
    if (!bad) return done();
    reply.header('connection', 'close');
    for (const [k, v] of Object.entries(bad.headers)) reply.header(k, v);
    sendProblem(reply, bad.problem);
  });
  // API keys and roles, before any workspace route runs (after a bad handshake is answered).
  if (deps.config.auth === 'on') installAuth(app);
  // After every onRequest hook (authentication too): the rate limit and the WebSocket caps.
  installLimits(app, deps);
  await app.register(operationRoutes);
  await app.register(openapiRoute);
  await app.register(commandRoutes, { prefix: '/v1/workspaces/:ws' });
  await app.register(queryRoutes, { prefix: '/v1/workspaces/:ws' });
  await app.register(stateRoutes, { prefix: '/v1/workspaces/:ws' });
  await app.register(intervalRoutes, { prefix: '/v1/workspaces/:ws' });
  await app.register(liveRoutes, { prefix: '/v1/workspaces/:ws' });
  await app.register(keyRoutes, { prefix: '/v1/workspaces/:ws' });
  await app.register(pageRoutes); // the wallboard (/) and the agent desktop (/agent)
  return app;
}

/**
 * An upgrade answered with anything but its 101 is refused, and its socket is ended once answered
 * (no HTTP parser owns it any more): the answer says `Connection: close`, so no client sends another
 * request on it.
 */
function endsUpgrade(req: FastifyRequest, reply: FastifyReply): void {
  if ((req.raw as IncomingMessage & { upgrade?: boolean }).upgrade) reply.header('connection', 'close');
}
