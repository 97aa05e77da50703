import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger, FastifyError } from 'fastify';
import { fieldLines } from './field-lines.ts';
import { corsHeaders } from './limits.ts';
import { givenTimes, PROBLEM_TYPE, type Problem, problem } from './problem.ts';
import { requestIdOfRequest } from './request-id.ts';
import { loggedUrl } from './request-log.ts';

/**
 * Errors met before a request reaches a route: the HTTP parser's, the router's and the WebSocket
 * handshake's. Each library answers them in its own format (JSON, text/html); these answer the
 * problem+json that every other error of Switchboard is.
 */

/**
 * A whole HTTP/1.1 answer, for sockets that no fastify reply owns; the connection is closed after it.
 * `head`: the answer to a HEAD request, which has no body (its Content-Length says what it would be).
 */
export function rawProblemResponse(p: Problem, headers: Record<string, string> = {}, head = false): string {
  const body = JSON.stringify(p);
  const lines = [
    `HTTP/1.1 ${p.status} ${STATUS_CODES[p.status] ?? ''}`,
    `Content-Type: ${PROBLEM_TYPE}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n${head ? '' : body}`;
}

function writeAndClose(socket: Duplex, text: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  // Destroyed only once written: destroying at once could drop the answer it explains.
  socket.end(text, () => socket.destroy());
}

/**
 * The Origin header among the bytes of a request refused unparsed (headers too large arrive whole
 * on most connections, as a browser sends them), or undefined.
 */
function originOfBytes(raw: unknown): string | undefined {
  if (!Buffer.isBuffer(raw)) return undefined;
  // No quantifier that can backtrack: the bytes are a client's (up to a socket read), and a
  // pattern trimming blanks itself took time in the square of a padded line's length.
  const value = /\r\norigin:([^\r\n]*)\r\n/i.exec(raw.toString('latin1'))?.[1];
  if (value === undefined) return undefined;
  // The blanks HTTP allows around a value (space, tab), not every white space trim() takes.
  let from = 0;
  let to = value.length;
  while (from < to && (value[from] === ' ' || value[from] === '\t')) from++;
  while (to > from && (value[to - 1] === ' ' || value[to - 1] === '\t')) to--;
  return value.slice(from, to);
}

/**
 * Node's `clientError`: the bytes are not an HTTP request this server can parse. `corsOrigins`
 * (CORS_ORIGINS): a page of one of them gets the CORS headers of any other refusal, so that it can
 * read this one (headers too large are a browser's too: a large cookie, a long header).
 */
export function clientErrorHandler(log: FastifyBaseLogger, corsOrigins: readonly string[] = []) {
  const allowed = new Set(corsOrigins);
  return (err: Error & { code?: string; rawPacket?: unknown }, socket: Duplex): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    // The request refused was a HEAD when the bytes that failed begin with one (headers too large
    // arrive whole on most connections): its answer has no body, or the client reads garbage.
    const head =
      Buffer.isBuffer(err.rawPacket) && err.rawPacket.subarray(0, 5).toString('latin1') === 'HEAD ';
    // No request to take an id from: a new one, in the answer and the log line, as for any request.
    const reqId = randomUUID();
    log.debug({ reqId, err: err.message, code: err.code }, 'unparsable request');
    // Bytes pipelined after a request still being answered: ours goes out once that answer has,
    // not inside it (node itself would cut the connection and lose that answer).
    const answering = (socket as unknown as { _httpMessage?: NodeJS.EventEmitter | null })._httpMessage;
    const p =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT'
        ? problem(
            408,
            'request-timeout',
            'Request timeout',
            'The request did not arrive in time; send it again.',
          )
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? problem(
              431,
              'headers-too-large',
              'Headers too large',
              'The request line and headers are larger than this server reads; send smaller ones.',
            )
          : problem(
              400,
              'malformed-request',
              'Malformed HTTP request',
              `The request is not valid HTTP/1.1 (${err.code ?? 'parse error'}): the request target and header values must be printable ASCII without control characters. Nothing was changed.`,
            );
    // Unless the request answered is the one still arriving (a body sent too slowly, timed out):
    // its handler waits for the rest, so this is its answer.
    const arriving = answering as
      | (NodeJS.EventEmitter & { req?: IncomingMessage; headersSent?: boolean })
      | null;
    const isArriving = !!(arriving?.req && !arriving.req.complete && !arriving.headersSent);
    const headers = {
      'X-Request-Id': reqId,
      ...(allowed.size > 0
        ? corsHeaders(allowed, isArriving ? arriving?.req?.headers.origin : originOfBytes(err.rawPacket))
        : {}),
    };
    if (answering && !isArriving)
      answering.once('finish', () => writeAndClose(socket, rawProblemResponse(p, headers, head)));
    else writeAndClose(socket, rawProblemResponse(p, headers, head));
  };
}

/**
 * Node's `connect` event: a CONNECT request (a proxy tunnel). Without a listener Node drops the
 * connection with no answer at all; this answers it.
 */
export function refuseConnect(log: FastifyBaseLogger) {
  return (req: IncomingMessage, socket: Duplex): void => {
    const reqId = requestIdOfRequest(req);
    log.debug({ reqId, url: loggedUrl(req.url ?? '') }, 'CONNECT refused');
    socket.on('error', () => socket.destroy());
    writeAndClose(
      socket,
      rawProblemResponse(
        problem(
          400,
          'bad-request',
          'Bad request',
          'CONNECT is not a method of this API: it is no proxy. Nothing was changed.',
        ),
        { 'X-Request-Id': reqId },
      ),
    );
  };
}

/**
 * The 417 for an `Expect` header other than `100-continue`, or undefined. Node checks it on
 * requests only; an upgrade is checked with this by the server's upgrade hook.
 */
export function expectationProblem(req: IncomingMessage): Problem | undefined {
  const expect = req.headers.expect;
  if (expect === undefined || expect.toLowerCase() === '100-continue') return undefined;
  return problem(
    417,
    'expectation-failed',
    'Expectation failed',
    `This server meets no expectation but "100-continue" (the request's Expect is ${JSON.stringify(
      String(expect).slice(0, 100),
    )}); send it without that header. Nothing was changed.`,
  );
}

/**
 * Node's `checkExpectation`: an `Expect` header other than `100-continue`. Without a listener Node
 * answers a bare 417 itself; this answers it as problem+json, and no route runs.
 */
export function refuseExpectation(log: FastifyBaseLogger) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const reqId = requestIdOfRequest(req);
    log.debug({ reqId, url: loggedUrl(req.url ?? ''), expect: req.headers.expect }, 'expectation refused');
    const p = expectationProblem(req)!;
    const body = JSON.stringify(p);
    res.writeHead(p.status, {
      'content-type': PROBLEM_TYPE,
      'content-length': Buffer.byteLength(body),
      'x-request-id': reqId,
      connection: 'close',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

/**
 * An HTTP/1.1 request without a Host header (RFC 9112 §3.2), which Node would answer with a bare
 * 400 of its own (the server runs with `requireHostHeader: false` so that this answers instead).
 */
export function missingHost(req: IncomingMessage): Problem | undefined {
  if (req.httpVersion !== '1.1' || req.headers.host !== undefined) return undefined;
  return problem(
    400,
    'bad-request',
    'Bad request',
    'An HTTP/1.1 request must carry a Host header (RFC 9112, section 3.2); send one. Nothing was changed.',
    { errors: [{ path: 'Host', message: 'is required in HTTP/1.1' }] },
  );
}

/**
 * RFC 3986's `host [":" port]` (RFC 9112 §3.2): an IP literal in brackets, or a name or IPv4
 * address (unreserved, percent-encoded and sub-delimiter characters), and digits for the port.
 * Empty is allowed (a request target with no authority).
 */
const HOST_VALUE = /^(?:\[[0-9A-Za-z:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?$/;

/** The host problem of a request with this many Host field lines (see `headersProblem`). */
function hostProblem(req: IncomingMessage, hosts: number): Problem | undefined {
  const host = req.headers.host;
  if (hosts === 1 && host !== undefined && !HOST_VALUE.test(host))
    return problem(
      400,
      'bad-request',
      'Bad request',
      `The Host header ${JSON.stringify(host.slice(0, 100))} is not a host name or address with an optional port (RFC 9112, section 3.2); send the server's. Nothing was changed.`,
      { errors: [{ path: 'Host', message: 'must be a host name or address, with an optional :port' }] },
    );
  if (hosts <= 1) return missingHost(req);
  return problem(
    400,
    'bad-request',
    'Bad request',
    `A request must carry one Host header (RFC 9112, section 3.2); this one has ${hosts}. Send one. Nothing was changed.`,
    { errors: [{ path: 'Host', message: 'must be given once' }] },
  );
}

/** Methods that carry no command: a query reads no Idempotency-Key (docs/API.md), so it is not counted. */
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The headers of a request, checked in one pass over its field lines (it runs for every request):
 *
 * - more than one Host field line, or a Host that is not a host and port (RFC 9112 §3.2: a server
 *   MUST answer 400 to both): Node keeps the first Host and drops the others, so the request would be
 *   served for one Host while a proxy in front may have taken it for the other. An HTTP/1.1 request
 *   with none is refused too (`missingHost`). A `400 bad-request` naming `Host`.
 * - `Authorization`, `Content-Type` (on every request) or `Idempotency-Key` (on a command) given
 *   more than once: Node keeps the first `Authorization` or `Content-Type` and drops the others (a
 *   command sent as `application/json` and `text/plain` was applied, a proxy in front may have read
 *   the other key), and joins `Idempotency-Key`s with ", " (which was then refused for its spaces,
 *   not for what was wrong). A `400 invalid-request` naming each, as a query parameter given twice
 *   is: `is given 2 times: give it once`. (`X-Request-Id` is never refused: request-id.ts.)
 */
export function headersProblem(req: IncomingMessage): Problem | undefined {
  let hosts = 0;
  let authorization = 0;
  let contentType = 0;
  let idempotencyKey = 0;
  const raw = req.rawHeaders;
  // The names' lengths differ: a name is lower-cased only when its length is one of theirs.
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') hosts++;
        break;
      case 12:
        if (name.toLowerCase() === 'content-type') contentType++;
        break;
      case 13:
        if (name.toLowerCase() === 'authorization') authorization++;
        break;
      case 15:
        if (name.toLowerCase() === 'idempotency-key') idempotencyKey++;
        break;
    }
  }
  const host = hostProblem(req, hosts);
  if (host) return host;
  if (authorization < 2 && contentType < 2 && (idempotencyKey < 2 || READS.has(req.method ?? '')))
    return undefined;
  const errors: { path: string; message: string }[] = [];
  if (authorization > 1) errors.push({ path: 'Authorization', message: givenTimes(authorization) });
  if (contentType > 1) errors.push({ path: 'Content-Type', message: givenTimes(contentType) });
  if (idempotencyKey > 1 && !READS.has(req.method ?? ''))
    errors.push({ path: 'Idempotency-Key', message: givenTimes(idempotencyKey) });
  return problem(
    400,
    'invalid-request',
    'Invalid request',
    `The headers have ${errors.length === 1 ? 'a bad field' : `${errors.length} bad fields`}: ${errors
      .map((e) => `${e.path} ${e.message}`)
      .join('; ')}. Nothing was changed.`,
    { errors },
  );
}

/**
 * A `#` in the request target: a fragment is never sent in HTTP (RFC 9112, section 3.2: a path and
 * an optional query), yet the router takes it for the start of the query, so `/agents/a1#x` would
 * be refused for a query parameter `x` never sent, and `/events#limit=1` served as `?limit=1`. It is
 * mostly an id put into the URL unencoded.
 */
export function fragmentProblem(url: string): Problem | undefined {
  const at = url.indexOf('#');
  if (at < 0) return undefined;
  return problem(
    400,
    'invalid-url',
    'Invalid URL',
    `The request target holds a "#" (its character ${at + 1}): a fragment is not sent in HTTP. Leave it out, or encode a "#" meant as data as %23. Nothing was changed.`,
    { errors: [{ path: 'url', message: 'must not hold "#": encode it as %23' }] },
  );
}

/** Errors of fastify's router (the `frameworkErrors` option): bad percent-encoding, over-long parameters. */
export function frameworkProblem(err: FastifyError, url: string): Problem {
  const path = url.split('?')[0] ?? url;
  switch (err.code) {
    case 'FST_ERR_BAD_URL':
      return problem(
        400,
        'invalid-url',
        'Invalid URL',
        `The path ${JSON.stringify(path.slice(0, 200))} has a bad percent-encoding; encode each reserved byte as %XX.`,
      );
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return problem(
        414,
        'uri-too-long',
        'URI too long',
        'A path segment is longer than any workspace or id can be (200 characters); no such resource exists.',
      );
    default:
      return problem(500, 'internal', 'Internal error', 'The server failed to route this request.');
  }
}

const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/;

/**
 * Checks what `ws` would check, first: `ws` answers a bad handshake itself, in text/html. An upgrade
 * of any kind (h2c too) reaches this server only as an attempted WebSocket, so it is judged as one.
 */
export function handshakeProblem(
  req: IncomingMessage,
): { problem: Problem; headers: Record<string, string> } | undefined {
  const errors: { path: string; message: string }[] = [];
  const headers: Record<string, string> = {};
  if (req.method !== 'GET') errors.push({ path: 'method', message: 'must be GET to open a WebSocket' });
  if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket')
    errors.push({ path: 'Upgrade', message: 'must be "websocket": no other protocol is offered' });
  // Node joins a header given twice with ", ": two good keys (or `13` twice) would be refused as
  // one bad value.
  const keys = fieldLines(req, 'sec-websocket-key');
  const versions = fieldLines(req, 'sec-websocket-version');
  const key = req.headers['sec-websocket-key'];
  if (keys > 1) errors.push({ path: 'Sec-WebSocket-Key', message: givenTimes(keys) });
  else if (typeof key !== 'string' || !WEBSOCKET_KEY.test(key))
    errors.push({ path: 'Sec-WebSocket-Key', message: 'must be 16 random bytes in base64' });
  const version = req.headers['sec-websocket-version'];
  if (versions > 1) errors.push({ path: 'Sec-WebSocket-Version', message: givenTimes(versions) });
  else if (version !== '13' && version !== '8') {
    errors.push({ path: 'Sec-WebSocket-Version', message: 'must be 13 (or 8)' });
    headers['sec-websocket-version'] = '13, 8';
  }
  if (errors.length === 0) return undefined;
  return { problem: badHandshake(errors), headers };
}

export function badHandshake(errors: readonly { path: string; message: string }[]): Problem {
  return problem(
    400,
    'bad-handshake',
    'Bad WebSocket handshake',
    `The upgrade is not a WebSocket handshake this server accepts: ${errors
      .map((e) => `${e.path} ${e.message}`)
      .join('; ')}.`,
    { errors },
  );
}

/** `ws`'s own refusals that the check above does not foresee (a malformed Sec-WebSocket-Protocol). */
export function onWebSocketClientError(log: FastifyBaseLogger) {
  return (err: Error, socket: Duplex, req?: IncomingMessage): void => {
    const reqId = req ? requestIdOfRequest(req) : randomUUID();
    log.debug({ reqId, err: err.message }, 'websocket handshake refused');
    const header = /Sec-WebSocket-[A-Za-z]+/.exec(err.message)?.[0] ?? '(handshake)';
    writeAndClose(
      socket,
      rawProblemResponse(badHandshake([{ path: header, message: err.message }]), { 'X-Request-Id': reqId }),
    );
  };
}
