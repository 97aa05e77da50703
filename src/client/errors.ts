/**
 * A hole in the history (a part of the archive that cannot be read: docs/API.md
 * `/problems/archive-unreadable`): the events after `lostAfter` and before `resumeAt` are lost;
 * `after=resumeAfter` (a `listEvents`, `allEvents` or `subscribe` the application makes) reads on
 * past them. Each is null where the server does not tell it. The client never skips a hole by
 * itself: reading on past it is the application's choice.
 */
export interface ArchiveHole {
  /** The last position before the hole that reads (null: from the start, or not known). */
  readonly lostAfter: string | null;
  /** The first position after the hole that reads (null: not known). */
  readonly resumeAt: string | null;
  /** The `after=` that reads on from `resumeAt` (null with it). */
  readonly resumeAfter: string | null;
}

/**
 * Every failure the client reports: an answer of Switchboard outside 2xx (its problem+json:
 * type, title, detail, errors), or no answer at all (`status` "network" or "timeout").
 */
export interface ProblemDetails {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail?: string;
  readonly errors?: readonly { readonly path: string; readonly message: string }[];
  readonly [more: string]: unknown;
}

export class SwitchboardError extends Error {
  override readonly name = 'SwitchboardError';
  /** The HTTP status, or "network" (unreachable) / "timeout" (no answer in time). */
  readonly status: number | 'network' | 'timeout';
  /** The problem type (`/problems/...`); "network" or "timeout" when there was no answer. */
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  /** Each bad field of a 400, as the server named it. */
  readonly errors: readonly { readonly path: string; readonly message: string }[];
  /** The whole problem document (extra members such as `lastPosition`, `retryAfterMs`), when there was one. */
  readonly problem: ProblemDetails | undefined;
  /** The body as received (text when it was not JSON). */
  readonly body: unknown;
  readonly method: string;
  readonly path: string;
  /** Tries made, the first included. */
  readonly attempts: number;
  /**
   * The Idempotency-Key of a command (the one given, or the one the client made for the call):
   * a command that may have landed (no answer, a timeout, a 503 `not-replicated`) is sent again
   * safely with `{idempotencyKey: err.idempotencyKey}`, never with a new key.
   */
  readonly idempotencyKey: string | undefined;
  /**
   * A 503 `/problems/archive-unreadable`: the hole its body names (`lostAfter`, `resumeAt`,
   * `resumeAfter`); undefined for any other failure.
   */
  readonly hole: ArchiveHole | undefined;
  /**
   * What the answer asked to wait before another try, in ms: its `Retry-After` (seconds or an HTTP
   * date) or the problem's `retryAfterMs`, as said (no cap); 0 when it said nothing.
   */
  readonly retryAfterMs: number;

  constructor(init: {
    status: number | 'network' | 'timeout';
    method: string;
    path: string;
    body?: unknown;
    detail?: string;
    attempts?: number;
    idempotencyKey?: string | undefined;
    /** Said after the detail (the problem's or `detail`): what the client knows of the answer besides. */
    note?: string;
    /** The answer's `Retry-After` header, when it had one. */
    retryAfter?: string | null;
  }) {
    const p = asProblem(init.body);
    const said = p?.detail ?? init.detail ?? (typeof init.body === 'string' ? init.body.slice(0, 200) : '');
    const detail = init.note ? (said ? `${said} (${init.note})` : init.note) : said;
    super(
      `${init.method} ${init.path}: ${init.status}${p ? ` ${p.title}` : ''}${detail ? ` (${detail})` : ''}`,
    );
    this.status = init.status;
    this.type = p?.type ?? (typeof init.status === 'number' ? 'about:blank' : init.status);
    this.title = p?.title ?? (typeof init.status === 'number' ? `HTTP ${init.status}` : init.status);
    this.detail = detail;
    this.errors = p?.errors ?? [];
    this.problem = p;
    this.body = init.body;
    this.method = init.method;
    this.path = init.path;
    this.attempts = init.attempts ?? 1;
    this.idempotencyKey = init.idempotencyKey;
    this.hole = p?.type === ARCHIVE_UNREADABLE ? holeOf(p) : undefined;
    this.retryAfterMs = retryAfterMsOf(init.retryAfter, init.body, Number.POSITIVE_INFINITY);
  }

  /** The problem type's last segment: "agent-not-found" for `/problems/agent-not-found`. */
  get slug(): string {
    return this.type.slice(this.type.lastIndexOf('/') + 1);
  }
}

/** The problem type of a history the archive cannot give whole. */
export const ARCHIVE_UNREADABLE = '/problems/archive-unreadable';

/** A stream position as Switchboard writes it (`<ms>-<seq>`, each a 64-bit unsigned integer). */
export const POSITION = /^\d{1,20}-\d{1,20}$/;

const positionOrNull = (v: unknown): string | null => (typeof v === 'string' && POSITION.test(v) ? v : null);

function holeOf(p: ProblemDetails): ArchiveHole {
  return {
    lostAfter: positionOrNull(p.lostAfter),
    resumeAt: positionOrNull(p.resumeAt),
    resumeAfter: positionOrNull(p.resumeAfter),
  };
}

/**
 * The live feed closed by the server with a failure (1011): its `code` and `reason`; `type` the
 * problem type the reason names (`/problems/archive-unreadable`), and then `hole`, where the
 * history reads again when the reason tells it (`; resumeAfter=<position>`): `resumeAfter` and
 * `resumeAt`, `lostAfter` null (the close does not name it).
 */
export class LiveFeedClosedError extends Error {
  override readonly name = 'LiveFeedClosedError';
  readonly code: number;
  readonly reason: string;
  readonly type: string | undefined;
  readonly hole: ArchiveHole | undefined;

  constructor(message: string, code: number, reason: string) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.type = /\((\/problems\/[a-z-]+)\)/.exec(reason)?.[1];
    if (this.type !== ARCHIVE_UNREADABLE) {
      this.hole = undefined;
      return;
    }
    const after = /resumeAfter=(\d{1,20}-\d{1,20})/.exec(reason)?.[1];
    this.hole = {
      lostAfter: null,
      resumeAt: after ? positionSuccessor(after) : null,
      resumeAfter: after ?? null,
    };
  }
}

const MAX_PART = 18446744073709551615n;

/** The position right after `p` (`<ms>-<seq+1>`, or `<ms+1>-0` after the largest sequence). */
function positionSuccessor(p: string): string {
  const [ms, seq] = p.split('-').map(BigInt) as [bigint, bigint];
  return seq < MAX_PART ? `${ms}-${seq + 1n}` : `${ms + 1n}-0`;
}

function asProblem(body: unknown): ProblemDetails | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as Record<string, unknown>;
  return typeof b.type === 'string' && typeof b.title === 'string' && typeof b.status === 'number'
    ? (b as unknown as ProblemDetails)
    : undefined;
}

/** The longest wait a `Retry-After` holds the client to by default (the `maxRetryAfterMs` option). */
export const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;

/**
 * What a refusal asked to wait, in ms (at most `capMs`, default a minute: a proxy asking for hours
 * is tried again after the cap): a problem's `retryAfterMs`, else its `Retry-After` header
 * (seconds or an HTTP date); 0 when neither says.
 */
export function retryAfterMsOf(
  header: string | null | undefined,
  body: unknown,
  capMs: number = DEFAULT_MAX_RETRY_AFTER_MS,
): number {
  const fromBody = (body as { retryAfterMs?: unknown } | null | undefined)?.retryAfterMs;
  if (typeof fromBody === 'number' && fromBody >= 0) return Math.min(fromBody, capMs);
  if (!header) return 0;
  const s = Number(header);
  const ms = Number.isFinite(s) ? s * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(0, ms), capMs) : 0;
}

/**
 * Why fetch cannot call the base URL `url`, when it cannot, said of `what` ("the client's url"):
 * - no http:// or https:// (`127.0.0.1:8080`, another scheme; in a page a relative URL is the
 *   page's own server, which fetch resolves against the page's address);
 * - credentials in it (`http://user:secret@host`): fetch makes no request of such a URL ("Request
 *   cannot be constructed from a URL that includes credentials"), in Node as in browsers. The
 *   message names the URL with its credentials left out (it is logged; they may be a password).
 * `verb`: what cannot be done with it ("called", the live feed's "opened").
 */
export function unusableBaseUrl(url: string, what: string, verb = 'called'): string | undefined {
  const here = (globalThis as { location?: { href?: string } }).location?.href;
  let abs: URL | undefined;
  try {
    abs = new URL(url || '/', here);
  } catch {
    abs = undefined;
  }
  if (!abs || !/^https?:$/.test(abs.protocol))
    return `${what} "${url}" cannot be ${verb}: a base URL starts with http:// or https:// (such as "http://127.0.0.1:8080")`;
  if (/^https?:\/\//i.test(url) && (abs.username !== '' || abs.password !== ''))
    return `${what} "${url.replace(/^(https?:\/\/)[^/?#]*@/i, '$1…@')}" cannot be ${verb}: it has credentials in it (user:password@), which fetch refuses to send; give the API key as the client's key option, and leave them out of the URL`;
  return undefined;
}

/**
 * Why `path` cannot be sent as it is, when it cannot: an id (or workspace) `.` or `..` is a dot
 * segment to every URL parser (fetch's, `ws`'s), which drops it (or the segment before it) and
 * calls another route, and no encoding survives it (`%2E` is one too); an empty id (or workspace)
 * in the API's paths (`/v1/...`) is no segment at all (`/agents/` is the list). The pages' paths
 * are left as given.
 */
export function unsendablePath(path: string): string | undefined {
  const segments = path.split('?')[0]!.split('/').slice(1);
  const dot = segments.find((s) => s === '.' || s === '..');
  if (dot !== undefined)
    return `an id "${dot}" cannot be sent in a URL path (a dot segment, removed by URL parsing)`;
  if (path.startsWith('/v1/') && segments.includes(''))
    return segments[1] === 'workspaces' && segments[2] === ''
      ? 'an empty workspace cannot be sent in a URL path (workspaces are 1..64 characters)'
      : 'an empty id cannot be sent in a URL path (ids are 1..128 characters)';
  return undefined;
}

/**
 * Which of `names` in `o` is given but unusable, told as a mistake: no number (NaN, or a text that
 * is none), or a `timeoutMs` not above 0, which would time every try out before it is sent (no
 * limit is `Infinity`).
 */
export function notANumber(o: object, names: readonly string[]): string | undefined {
  for (const name of names) {
    const v = (o as Record<string, unknown>)[name];
    if (v === undefined) continue;
    if (Number.isNaN(Number(v)))
      return `the option ${name} is ${typeof v === 'number' ? 'NaN' : JSON.stringify(v)}: it takes a number`;
    if (name === 'timeoutMs' && Number(v) <= 0)
      return `the option timeoutMs is ${JSON.stringify(v)}: a try's time limit is a number of milliseconds above 0 (Infinity for none)`;
  }
  return undefined;
}
