/**
 * The live feed of a workspace (`/v1/workspaces/{ws}/events/live`) as a subscription that resumes
 * by itself: it remembers the last position it is done with (the last event handed on, or the one
 * the server's close advertises as `after=<position>`), and when the socket closes or fails it opens
 * again from there with backoff. The server replays from that position with no gap and no
 * duplicate; the subscription drops anything at or before it all the same.
 *
 * A path can also die without a close (a load balancer's address moved, a NAT forgot the
 * connection): the server sends a heartbeat message on a feed that has been silent for its
 * interval, so a socket that hears nothing for twice that long is taken for dead, dropped, and
 * opened again from the last position like any other close.
 */
import type { SwitchboardClient } from './client.ts';
import {
  ARCHIVE_UNREADABLE,
  LiveFeedClosedError,
  notANumber,
  POSITION,
  retryAfterMsOf,
  SwitchboardError,
  unsendablePath,
  unusableBaseUrl,
} from './errors.ts';
import type { EventEnvelope, EventType, Position } from './types.ts';

export interface SubscribeOptions {
  /** Only these event types (the server filters). */
  readonly types?: readonly EventType[];
  /** Only the events about this agent (what an agent desktop needs; an agent key is held to its own). */
  readonly agent?: string;
  /**
   * Everything after this position first, then live events. Without it the feed starts at the
   * moment it opens, and resumes from the position the server names as it opens (its first
   * heartbeat's `after`), or from a later event or heartbeat's.
   */
  readonly after?: Position;
  /**
   * How the key is sent: `header` (Authorization on the upgrade; Node's `ws` only) or `ticket`
   * (a one-time ticket from POST /ws-tickets before each connection, what browsers need). Default:
   * header where the WebSocket class takes headers, ticket otherwise.
   */
  readonly auth?: 'header' | 'ticket';
  /** Try again when the very first connection fails too (default: the first failure ends it). */
  readonly retryFirst?: boolean;
  /**
   * Backoff between connections: from `backoffMs` (250) doubling to `maxBackoffMs` (5000); back to
   * `backoffMs` once a socket has received something.
   */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
  /**
   * The server's heartbeat interval until its first heartbeat names it (`everyMs`; default 10 000,
   * the server's LIVE_HEARTBEAT_MS default). A socket that hears nothing (no event, no heartbeat)
   * for twice the interval once it is open (the handshake's limit is the client's `timeoutMs`) is
   * taken for a dead path: dropped and opened again from the last position. 0: never (a server
   * with LIVE_HEARTBEAT_MS=off).
   */
  readonly heartbeatMs?: number;
  /** Each time a socket opened (the first and every resume). */
  readonly onOpen?: (info: { readonly after: Position | undefined; readonly reconnects: number }) => void;
  /** Each time a socket closed: its code and reason, and in how long the next opens (null: it will not). */
  readonly onClose?: (info: {
    readonly code: number;
    readonly reason: string;
    readonly retryInMs: number | null;
  }) => void;
  /**
   * A failure: a socket error, a refused handshake (a SwitchboardError; in Node with the problem the
   * server answered), a ticket refused, a close with 1011 (the server failed the feed), an
   * exception of `onEvent` (or the rejection of an async one), and so of `onOpen` and `onClose`;
   * those it tries again after too. It may call close(): no further try is left scheduled, and a
   * first connection's failure is still the one `ready` rejects with. A close with 1011 is a
   * LiveFeedClosedError; one over a hole of the archive ends the subscription and names in `hole`
   * (`resumeAfter`) where the history reads again: a new subscription with `after: resumeAfter`
   * reads on, the events in the hole lost, when the application chooses it.
   */
  readonly onError?: (err: Error) => void;
}

export interface Subscription {
  /** Ends it: no more events, no reconnection. */
  close(): void;
  /** The last position it is done with (handed on, or passed over by the server's filters). */
  readonly position: Position | undefined;
  /** Times it opened again after a close or a failure. */
  readonly reconnects: number;
  /** Settles when the first socket opens; rejects when that fails (unless `retryFirst`), and the subscription ends. */
  readonly ready: Promise<void>;
  /** Settles when the subscription has ended: closed, or stopped by a refusal it cannot get past. */
  readonly ended: Promise<void>;
}

/** A heartbeat message of the feed (not an event: no `type`, no `position`). */
interface Heartbeat {
  readonly heartbeat: { readonly after?: unknown; readonly everyMs?: unknown };
}

/** How long close() waits for the server's answer to its close before dropping the socket. */
const CLOSE_GRACE_MS = 1_000;

/** The longest delay a timer holds (setTimeout fires at once past it). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Silence longer than this many heartbeat intervals is a dead path. */
const DEAD_AFTER_INTERVALS = 2;

/** The part of a WebSocket both `ws` and browsers have. */
interface SocketLike {
  onopen: ((e: unknown) => void) | null;
  onmessage: ((e: { data: unknown }) => void) | null;
  onclose: ((e: { code: number; reason: string }) => void) | null;
  onerror: ((e: { message?: string; error?: unknown }) => void) | null;
  close(code?: number, reason?: string): void;
  /** `ws` only: drop the connection at once, with no closing handshake. */
  terminate?(): void;
  readonly readyState: number;
}
type SocketClass = new (url: string, options?: unknown) => SocketLike;

/** Handshake refusals that another try will not get past (401/403 of the key, 400 of the query, ...). */
const FINAL_STATUSES = new Set([400, 401, 403, 404, 414, 426, 431]);
/**
 * A redirect of the upgrade: `ws` does not follow one (nor does a browser's WebSocket), and the same
 * URL tried again meets the same answer, so it ends the subscription, naming where it points.
 */
const isRedirect = (status: number) => status >= 300 && status < 400;

export function comparePositions(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const d = BigInt(am) - BigInt(bm) || BigInt(as) - BigInt(bs);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

let nodeWs: Promise<SocketClass> | undefined;
async function socketClass(client: SwitchboardClient): Promise<{ cls: SocketClass; headers: boolean }> {
  if (client.options.WebSocket) return { cls: client.options.WebSocket as SocketClass, headers: false };
  const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
  if (isNode) {
    // The `ws` package takes headers on the upgrade; loaded only where it is used.
    nodeWs ??= import('ws').then((m) => (m.default ?? m.WebSocket) as unknown as SocketClass);
    return { cls: await nodeWs, headers: true };
  }
  const global = (globalThis as { WebSocket?: SocketClass }).WebSocket;
  if (!global) throw new Error('no WebSocket class: pass one as the WebSocket option');
  return { cls: global, headers: false };
}

/**
 * ws:// or wss:// for the client's URL; in a page, a relative URL ('' for the page's own server) too.
 * Any other (`127.0.0.1:8080`, with no scheme; one with credentials, `http://user:secret@host`,
 * which the client's calls cannot make, its tickets included) is a mistake in the options that no
 * try gets past: a TypeError, which ends the subscription, retryFirst or not.
 */
function wsBase(url: string): string {
  const why = unusableBaseUrl(url, "the client's url", 'opened');
  if (why !== undefined) throw new TypeError(why);
  if (/^https?:\/\//i.test(url)) return url.replace(/^http/i, 'ws');
  const here = (globalThis as { location?: { href: string } }).location?.href;
  const abs = new URL(url || '/', here);
  return `${abs.protocol === 'https:' ? 'wss:' : 'ws:'}//${abs.host}${abs.pathname.replace(/\/+$/, '')}`;
}

export function subscribe(
  client: SwitchboardClient,
  o: SubscribeOptions,
  onEvent: (e: EventEnvelope) => void,
): Subscription {
  let position: Position | undefined = o.after;
  let reconnects = 0;
  let closed = false;
  let opened = false;
  let socket: SocketLike | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failures = 0;
  /** The heartbeat interval the server last named; until then `heartbeatMs`. */
  let heartbeatEvery = o.heartbeatMs ?? 10_000;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  /** Aborted by close(): a ticket request still waiting for its answer is given up. */
  const closing = new AbortController();
  let readyResolve!: () => void;
  let readyReject!: (e: Error) => void;
  let endedResolve!: () => void;
  const ready = new Promise<void>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  ready.catch(() => {}); // the caller may never look at it
  const ended = new Promise<void>((res) => {
    endedResolve = res;
  });
  const report = (err: Error) => {
    try {
      o.onError?.(err);
    } catch {
      /* the caller's handler failed: nothing to tell */
    }
  };
  /**
   * The caller's onOpen or onClose: one that throws is told to onError, like onEvent. Thrown from a
   * socket's event, it would be an uncaught exception (the end of a Node process).
   */
  const tell = (f: (() => void) | undefined) => {
    try {
      f?.();
    } catch (err) {
      report(err as Error);
    }
  };

  const end = (err?: Error) => {
    if (closed && !err) return;
    closed = true;
    if (timer) clearTimeout(timer);
    if (watchdog) clearTimeout(watchdog);
    if (!opened) readyReject(err ?? new Error('closed before it opened'));
    endedResolve();
  };

  /**
   * `waitMs`: what a refusal asked to wait (its Retry-After), the least the next try waits. The
   * failure is told to onError last, once the subscription has ended or its next try is set: an
   * onError that calls close() (log it and give up) leaves `ready` rejected with this failure, and
   * no next try scheduled (a timer holding a Node process for the backoff, or a Retry-After).
   */
  const retry = (err: Error | undefined, final: boolean, waitMs = 0): number | null => {
    if (closed) return null;
    if (final || (!opened && !o.retryFirst)) {
      end(err ?? new Error('the live feed could not be opened'));
      if (err) report(err);
      return null;
    }
    failures++;
    const delay = Math.max(
      waitMs,
      Math.min(o.maxBackoffMs ?? 5_000, (o.backoffMs ?? 250) * 2 ** (failures - 1)),
    );
    // A wait past what a timer holds (a Retry-After with `maxRetryAfterMs: Infinity`) is cut to the
    // longest one (about 24.8 days): a timer given more would fire at once.
    timer = setTimeout(
      () => {
        timer = undefined;
        reconnects++;
        void connect();
      },
      Math.min(delay, MAX_TIMER_MS),
    );
    if (err) report(err); // a close() in it clears the timer (end())
    return closed ? null : delay;
  };

  const connect = async (): Promise<void> => {
    if (closed) return;
    let url: string;
    let s: SocketLike;
    /** The handshake's limit this client keeps itself: a socket made without `handshakeTimeout`. */
    let ownHandshakeMs: number | undefined;
    let headers: boolean;
    try {
      // A backoff of NaN (`Number(process.env.X)` of an unset variable) would reconnect with no
      // wait at all, hundreds of times a second: the caller's mistake, which ends it at once.
      const nan =
        notANumber(o, ['backoffMs', 'maxBackoffMs', 'heartbeatMs']) ??
        notANumber(client.options, ['timeoutMs', 'maxRetryAfterMs']);
      if (nan !== undefined) throw new TypeError(`live feed: ${nan}`);
      const found = await socketClass(client);
      const cls = found.cls;
      headers = found.headers;
      const byTicket = client.options.key !== undefined && (o.auth === 'ticket' || !headers);
      // The URL first: one no try can open is not sent a ticket request either.
      const base = wsBase(client.url);
      // A workspace of `.` or `..` is a dot segment, which `ws` (a URL parser) drops: the upgrade
      // would go to another route (GET /v1/events/live), and an empty one has no segment at all.
      // Thrown as every call of such a client is, before anything is sent, never tried again.
      const livePath = `${client.workspacePath}/events/live`;
      const badPath = unsendablePath(livePath);
      if (badPath !== undefined) throw new TypeError(`GET ${livePath}: ${badPath}`);
      const q: string[] = [];
      // Each value encoded, as a query's are: an `after` with a `&` in it (the caller's mistake)
      // reaches the server whole and is refused naming `after`, not cut into another query.
      if (o.types?.length) q.push(`type=${o.types.map((t) => encodeURIComponent(t)).join(',')}`);
      if (o.agent !== undefined) q.push(`agent=${encodeURIComponent(o.agent)}`);
      if (position !== undefined) q.push(`after=${encodeURIComponent(position)}`);
      if (byTicket) {
        // With the position it will open from: one past the last event is refused here with the
        // problem (409 position-ahead, lastPosition) that a page's WebSocket cannot show of a
        // refused upgrade, and no ticket is spent on a socket that could open nothing. Taken as
        // createWsTicket() takes one: a 2xx that is no ticket (a proxy's page, `{}`, null) is a
        // SwitchboardError naming it, and no socket is opened with `ticket=undefined`.
        const ticket = await client.createWsTicket({
          signal: closing.signal,
          ...(position !== undefined ? { after: position } : {}),
        });
        q.push(`ticket=${encodeURIComponent(ticket.ticket)}`);
      }
      if (closed) return;
      url = `${base}${livePath}${q.length ? `?${q.join('&')}` : ''}`;
      // The handshake's time limit is the client's `timeoutMs` (default 15 s), as a request's is;
      // one past what a timer holds (Infinity) is none.
      const timeoutMs = client.options.timeoutMs ?? 15_000;
      const handshake = timeoutMs <= MAX_TIMER_MS ? { handshakeTimeout: timeoutMs } : {};
      s =
        headers && !byTicket && client.options.key !== undefined
          ? new cls(url, {
              headers: { authorization: `Bearer ${client.options.key}` },
              ...handshake,
            })
          : headers
            ? new cls(url, handshake)
            : new cls(url);
      // A WebSocket that takes no options (a browser's, or one given as `WebSocket`) has no
      // handshake limit of its own: the client holds it to `timeoutMs` (below).
      ownHandshakeMs = headers || timeoutMs > MAX_TIMER_MS ? undefined : timeoutMs;
    } catch (err) {
      // A ticket refused (401/403: the key is no good) will not be given on another try either, nor
      // is a request that cannot be sent at all (a TypeError: a key with a line break) ever sent.
      const final =
        err instanceof TypeError ||
        (err instanceof SwitchboardError && typeof err.status === 'number' && FINAL_STATUSES.has(err.status));
      // A ticket refused with a wait asked (a 429 once the request's own retries ran out, a 503) is
      // not asked again before it: the next try waits at least its Retry-After (within the client's
      // `maxRetryAfterMs`), as after a refused upgrade.
      const waitMs = err instanceof SwitchboardError ? Math.min(err.retryAfterMs, client.maxRetryAfterMs) : 0;
      retry(err as Error, final, waitMs);
      return;
    }
    socket = s;
    /** The feed's path as errors name it: no host, no ticket. */
    const shownPath = url.replace(/^wss?:\/\/[^/]+/, '').replace(/ticket=[^&]+/, 'ticket=…');
    let refused: number | undefined;
    /** What the refusal asked to wait before another try (its Retry-After, or `retryAfterMs`). */
    let refusalWaitMs = 0;
    /** The refusal's Retry-After header, as answered: its SwitchboardError's `retryAfterMs`. */
    let refusalRetryAfter: string | undefined;
    /** A redirected upgrade's Location. */
    let location: string | undefined;
    /** The refusal's problem+json (what `ws` lets us read of a refused upgrade), when there was one. */
    let refusal: unknown;
    let failure: Error | undefined;
    /**
     * The failures before this socket, and whether it delivered an event: a 1011 on a socket that
     * delivered none (the server's first heartbeat, then a replay that failed) goes on with the
     * backoff, or a failure every try meets (an archive folder the server cannot read) reconnects
     * every `backoffMs` for ever.
     */
    const failuresBefore = failures;
    let delivered = false;
    // `ws`: a refused upgrade's answer is read (its problem: type, detail, lastPosition, ...), then
    // the handshake is dropped, as `ws` does by itself when nobody listens for it. Browsers show a
    // page nothing of it.
    const emitter = s as unknown as {
      on?: (
        event: 'unexpected-response',
        listener: (req: unknown, res: NodeJS.ReadableStream & { statusCode?: number }) => void,
      ) => void;
    };
    if (headers && typeof emitter.on === 'function')
      emitter.on('unexpected-response', (_req, res) => {
        refused = res.statusCode;
        const answered = (res as unknown as { headers?: Record<string, string | string[] | undefined> })
          .headers;
        const to = answered?.location;
        location = Array.isArray(to) ? to[0] : to;
        const h = answered?.['retry-after'];
        const header = Array.isArray(h) ? h[0] : h;
        refusalRetryAfter = header;
        refusalWaitMs = retryAfterMsOf(header, undefined, client.maxRetryAfterMs);
        let text = '';
        const done = () => {
          try {
            refusal = JSON.parse(text);
          } catch {
            refusal = text || undefined;
          }
          refusalWaitMs = retryAfterMsOf(header, refusal, client.maxRetryAfterMs);
          s.terminate?.();
        };
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (text.length < 65_536) text += chunk;
        });
        res.on('end', done);
        res.on('error', done);
      });
    // The watchdog: anything heard (the open, an event, a heartbeat) moves `heardAt`; a timer
    // looks at it when the silence could have run out, so a busy feed costs no timer per message.
    // It is armed once the socket is open: the handshake's own limit is the client's `timeoutMs`
    // (Infinity none), which a heartbeat interval must not cut short.
    let heardAt = Date.now();
    const deadAfterMs = () => DEAD_AFTER_INTERVALS * heartbeatEvery;
    let confirming = false;
    const watch = (): void => {
      watchdog = undefined;
      if (socket !== s || closed || heartbeatEvery <= 0) return;
      const silentMs = Date.now() - heardAt;
      if (silentMs < deadAfterMs()) {
        confirming = false;
        // An interval past what a timer holds (`heartbeatMs: Infinity`) is looked at again after
        // the longest one: a timer given more fires at once, with a TimeoutOverflowWarning.
        watchdog = setTimeout(watch, Math.min(deadAfterMs() - silentMs, MAX_TIMER_MS));
        return;
      }
      // Once more after the messages already received are read: a timer that ran late (this
      // process was busy) must not take a message waiting in the socket for silence.
      if (!confirming) {
        confirming = true;
        watchdog = setTimeout(watch, 0);
        return;
      }
      // Dead: the socket is dropped without waiting for a closing handshake that cannot come,
      // and the subscription goes on as after any close.
      socket = undefined;
      try {
        if (s.terminate) s.terminate();
        else s.close(4000, 'no heartbeat');
      } catch {
        /* already closing */
      }
      const reason = `nothing received for ${silentMs} ms (heartbeat every ${heartbeatEvery} ms): the path is taken for dead`;
      const retryInMs = retry(new Error(`live feed: ${reason}`), false);
      tell(() => o.onClose?.({ code: 1006, reason, retryInMs }));
    };
    if (watchdog) clearTimeout(watchdog);
    watchdog = undefined;
    // A handshake not answered within `timeoutMs` (a proxy holding the connection, a half-open
    // path) is dropped and tried again, as a dead socket is; the open clears it.
    if (ownHandshakeMs !== undefined) {
      const limitMs = ownHandshakeMs;
      watchdog = setTimeout(() => {
        watchdog = undefined;
        if (socket !== s || closed) return;
        socket = undefined;
        try {
          if (s.terminate) s.terminate();
          else s.close(4000, 'handshake timed out');
        } catch {
          /* already closing */
        }
        const reason = `the upgrade was not answered within ${limitMs} ms (the client's timeoutMs)`;
        const retryInMs = retry(new Error(`live feed: ${reason}`), false);
        tell(() => o.onClose?.({ code: 1006, reason, retryInMs }));
      }, limitMs);
    }
    s.onopen = () => {
      if (socket !== s) return;
      heardAt = Date.now();
      if (closed) return s.close(1000);
      if (watchdog) clearTimeout(watchdog);
      if (heartbeatEvery > 0) watchdog = setTimeout(watch, Math.min(deadAfterMs(), MAX_TIMER_MS));
      const first = !opened;
      opened = true;
      // The backoff starts again once the server has sent something (onmessage), not on the open:
      // a server that accepts each socket and closes it at once is tried ever less often.
      if (first) readyResolve();
      tell(() => o.onOpen?.({ after: position, reconnects }));
    };
    s.onmessage = (m) => {
      if (closed || socket !== s) return;
      heardAt = Date.now();
      let e: EventEnvelope | Heartbeat;
      try {
        e = JSON.parse(String(m.data)) as EventEnvelope | Heartbeat;
      } catch {
        return;
      }
      // Switchboard sends objects only; anything else (a proxy's or a foreign server's) is skipped:
      // `in` on a number, a string or null would throw from the socket's event.
      if (e === null || typeof e !== 'object') return;
      failures = 0; // the path works: a later break retries after the shortest backoff
      if ('heartbeat' in e && e.heartbeat !== null && typeof e.heartbeat === 'object') {
        // Everything up to `after` was sent before it: resuming after it loses nothing.
        const { after, everyMs } = e.heartbeat;
        if (
          typeof after === 'string' &&
          POSITION.test(after) &&
          (position === undefined || comparePositions(after, position) > 0)
        )
          position = after;
        if (typeof everyMs === 'number' && everyMs > 0 && o.heartbeatMs !== 0 && everyMs !== heartbeatEvery) {
          // The server's interval from now on: the watchdog runs on it at once.
          heartbeatEvery = everyMs;
          if (watchdog) clearTimeout(watchdog);
          watchdog = setTimeout(watch, Math.min(deadAfterMs(), MAX_TIMER_MS));
        }
        return;
      }
      // No stream position, no event of Switchboard's: passed over, never the position to resume from
      // (nor compared with one, which would throw from the socket's event).
      if (!('position' in e) || typeof e.position !== 'string' || !POSITION.test(e.position)) return;
      if (position !== undefined && comparePositions(e.position, position) <= 0) return; // seen
      position = e.position;
      delivered = true;
      try {
        // An async handler's rejection is its exception too: told to onError, never left unhandled
        // (which would end a Node process).
        const done = onEvent(e) as unknown;
        if (typeof (done as PromiseLike<unknown> | undefined)?.then === 'function')
          (done as PromiseLike<unknown>).then(undefined, (err: unknown) => report(err as Error));
      } catch (err) {
        report(err as Error);
      }
    };
    s.onerror = (e) => {
      const message = e.message ?? (e.error as Error | undefined)?.message ?? 'WebSocket error';
      // ws: "Unexpected server response: 401" when the handshake is answered with a refusal.
      const m = /Unexpected server response: (\d+)/.exec(message);
      if (m) refused ??= Number(m[1]);
      failure =
        refused !== undefined
          ? new SwitchboardError({
              status: refused,
              method: 'GET',
              path: shownPath,
              ...(refusal !== undefined ? { body: refusal } : {}),
              ...(refusalRetryAfter !== undefined ? { retryAfter: refusalRetryAfter } : {}),
              detail: isRedirect(refused)
                ? `the upgrade was redirected (${refused})${location ? ` to ${location}` : ''}: the live feed does not follow a redirect; set the client's url to the server's own address`
                : `the upgrade was refused: ${refused}`,
            })
          : new Error(`live feed ${shownPath}: ${message}`);
    };
    s.onclose = (c) => {
      if (socket !== s) return;
      socket = undefined;
      if (watchdog) clearTimeout(watchdog);
      watchdog = undefined;
      // The server names the position to resume from (after events its filters passed over).
      const advertised = /after=(\d{1,20}-\d{1,20})/.exec(c.reason ?? '')?.[1];
      if (advertised && (position === undefined || comparePositions(advertised, position) > 0))
        position = advertised;
      // 1011: the server failed the feed. A replay that failed is tried again; a history the
      // archive cannot give whole (a segment missing or damaged) would meet the same damage on
      // every try, so it ends the subscription, as a refusal no try gets past does.
      // Over a hole of the archive the error carries where the history reads again (`hole`,
      // from the reason's `resumeAfter=`): the application's to take or not. The subscription's
      // own position never moves past the hole (that would lose its events unasked).
      const serverError = c.code === 1011;
      if (serverError && !delivered) failures = failuresBefore;
      const closedWith = serverError
        ? new LiveFeedClosedError(
            `live feed ${shownPath}: closed by the server with 1011 (${c.reason || 'no reason'})`,
            c.code,
            c.reason ?? '',
          )
        : undefined;
      // The server's own word (a problem type named, a hole) over a socket error met before it.
      if (closedWith && (failure === undefined || closedWith.type !== undefined)) failure = closedWith;
      const final =
        (refused !== undefined && (FINAL_STATUSES.has(refused) || isRedirect(refused))) ||
        closedWith?.type === ARCHIVE_UNREADABLE;
      // Every failure is told to onError (a refusal another try may get past, a socket error), not
      // only the final ones; a close with no failure (the server's 1001, a 1013) is not one.
      const retryInMs = closed ? null : retry(failure, final, refusalWaitMs);
      tell(() => o.onClose?.({ code: c.code, reason: c.reason ?? '', retryInMs }));
      if (closed) endedResolve();
    };
  };

  void connect();
  return {
    close() {
      if (closed) return;
      end();
      closing.abort();
      const s = socket;
      if (!s || s.readyState > 1) return;
      s.close(1000, 'client closed');
      // A server that does not answer the close (stopped, or on a dead path) would hold the socket,
      // and a Node process with it, for the closing handshake's own timeout (30 s in `ws`): after a
      // short grace the socket is dropped. The timer itself keeps no process alive.
      if (s.terminate) {
        const grace = setTimeout(() => s.terminate?.(), CLOSE_GRACE_MS);
        (grace as { unref?: () => void }).unref?.();
      }
    },
    get position() {
      return position;
    },
    get reconnects() {
      return reconnects;
    },
    ready,
    ended,
  };
}
