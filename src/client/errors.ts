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
  }

  /** The problem type's last segment: "agent-not-found" for `/problems/agent-not-found`. */
  get slug(): string {
    return this.type.slice(this.type.lastIndexOf('/') + 1);
  }
}

function asProblem(body: unknown): ProblemDetails | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as Record<string, unknown>;
  return typeof b.type === 'string' && typeof b.title === 'string' && typeof b.status === 'number'
    ? (b as unknown as ProblemDetails)
    : undefined;
}

/**
 * What a refusal asked to wait, in ms (at most a minute): a problem's `retryAfterMs`, else its
 * `Retry-After` header (seconds or an HTTP date); 0 when neither says.
 */
export function retryAfterMsOf(header: string | null | undefined, body: unknown): number {
  const fromBody = (body as { retryAfterMs?: unknown } | null | undefined)?.retryAfterMs;
  if (typeof fromBody === 'number' && fromBody >= 0) return Math.min(fromBody, 60_000);
  if (!header) return 0;
  const s = Number(header);
  const ms = Number.isFinite(s) ? s * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(0, ms), 60_000) : 0;
}

/** Which of `names` in `o` is given but no number (NaN, or a text that is none), told as a mistake. */
export function notANumber(o: object, names: readonly string[]): string | undefined {
  for (const name of names) {
    const v = (o as Record<string, unknown>)[name];
    if (v !== undefined && Number.isNaN(Number(v)))
      return `the option ${name} is ${typeof v === 'number' ? 'NaN' : JSON.stringify(v)}: it takes a number`;
  }
  return undefined;
}
