/**
 * The simulator's view of Switchboard: the typed client (src/client) with every answer reduced to
 * one result (ok with the body, or the failure's status and detail) instead of thrown, since the
 * simulator counts failures by status rather than stopping at them.
 */
import { type Failure, type RetryInfo, SwitchboardClient, SwitchboardError } from '../../client/index.ts';

export type HttpResult =
  | { readonly ok: true; readonly status: number; readonly body: unknown }
  | {
      readonly ok: false;
      readonly status: number | 'network' | 'timeout';
      readonly body: unknown;
      readonly detail: string;
    };

/** Worth another try: the server was unreachable, too slow, or said so (5xx, 429). */
const retryOn = (s: Failure): boolean => typeof s !== 'number' || s >= 500 || s === 429;

export class SwitchboardHttp {
  readonly base: string;
  readonly client: SwitchboardClient;

  constructor(
    url: string,
    timeoutMs = 15_000,
    /** The API key every request carries (Authorization: Bearer), when Switchboard asks for one. */
    key?: string,
  ) {
    this.client = new SwitchboardClient({
      url,
      timeoutMs,
      retries: 0,
      retryOn,
      ...(key !== undefined ? { key } : {}),
    });
    this.base = this.client.url;
  }

  /**
   * One call; with `retry`, the client's retries (same Idempotency-Key, backoff from 250 ms,
   * Retry-After honoured) while `retry.onRetry` does not say stop. `retry.timeoutMs` is each try's
   * limit in place of this one's; once `retry.signal` aborts, nothing more is sent and the try on
   * its way is cut short (answered `network`, "aborted").
   */
  async request(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
    retry?: {
      retries: number;
      onRetry: (info: RetryInfo) => boolean | undefined;
      idempotencyKey?: string;
      timeoutMs?: number;
      signal?: AbortSignal;
    },
  ): Promise<HttpResult> {
    try {
      const a = await this.client.send(method, path, {
        ...(body !== undefined ? { body } : {}),
        headers,
        retries: retry?.retries ?? 0,
        ...(retry ? { onRetry: retry.onRetry } : {}),
        ...(retry?.idempotencyKey !== undefined ? { idempotencyKey: retry.idempotencyKey } : {}),
        ...(retry?.timeoutMs !== undefined ? { timeoutMs: retry.timeoutMs } : {}),
        ...(retry?.signal !== undefined ? { signal: retry.signal } : {}),
      });
      if (a.status >= 200 && a.status < 300) return { ok: true, status: a.status, body: a.body };
      const detail = new SwitchboardError({ status: a.status, method, path, body: a.body }).detail;
      return { ok: false, status: a.status, body: a.body, detail: detail || String(a.status) };
    } catch (err) {
      if (!(err instanceof SwitchboardError) || typeof err.status === 'number') throw err;
      return { ok: false, status: err.status, body: null, detail: err.detail };
    }
  }
}

/** Worth another try: the server was unreachable, too slow, or said so (5xx, 429). */
export function retryable(r: HttpResult): boolean {
  return !r.ok && retryOn(r.status);
}

export { networkDetail } from '../../client/client.ts';

/**
 * Ends the run: Switchboard cannot be reached, or will not take the run's commands (`status`: its
 * answer, when it gave one).
 */
export class FatalError extends Error {
  constructor(
    message: string,
    readonly status?: HttpResult['status'],
    /** The fault of an option (message starts with it): the run exits 2, as for a bad option. */
    readonly usage = false,
  ) {
    super(message);
  }
}

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function pool<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}
