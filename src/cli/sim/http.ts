/**
 * The simulator's view of Switchboard: plain fetch (Node's global fetch keeps connections alive
 * and reuses them) against the public HTTP API, with every failure reduced to one label.
 */

export type HttpResult =
  | { readonly ok: true; readonly status: number; readonly body: unknown }
  | {
      readonly ok: false;
      readonly status: number | 'network' | 'timeout';
      readonly body: unknown;
      readonly detail: string;
    };

export class SwitchboardHttp {
  readonly base: string;

  constructor(
    url: string,
    private readonly timeoutMs = 15_000,
    /** The API key every request carries (Authorization: Bearer), when Switchboard asks for one. */
    private readonly key?: string,
  ) {
    this.base = url.replace(/\/+$/, '');
  }

  async request(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<HttpResult> {
    let res: Response;
    if (this.key !== undefined) headers = { ...headers, authorization: `Bearer ${this.key}` };
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError' || e.name === 'AbortError')
        return { ok: false, status: 'timeout', body: null, detail: `no answer within ${this.timeoutMs} ms` };
      return { ok: false, status: 'network', body: null, detail: networkDetail(e) };
    }
    const text = await res.text().catch(() => '');
    let parsed: unknown = text;
    if (/json/.test(res.headers.get('content-type') ?? '')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        /* keep the text */
      }
    }
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status, body: parsed };
    const problem = parsed as { detail?: unknown; title?: unknown } | null;
    const detail =
      typeof problem === 'object' && problem !== null && typeof problem.detail === 'string'
        ? problem.detail
        : typeof parsed === 'string'
          ? parsed.slice(0, 200)
          : res.statusText;
    return { ok: false, status: res.status, body: parsed, detail };
  }
}

/** Worth another try: the server was unreachable, too slow, or said so (5xx, 429). */
export function retryable(r: HttpResult): boolean {
  return !r.ok && (typeof r.status !== 'number' || r.status >= 500 || r.status === 429);
}

/** The useful part of a fetch failure: "connect ECONNREFUSED 127.0.0.1:8080" rather than "fetch failed". */
export function networkDetail(err: Error & { cause?: { code?: string; message?: string } }): string {
  const cause = err.cause;
  if (cause?.message) return cause.message;
  if (cause?.code) return cause.code;
  return err.message;
}

/** Ends the run: Switchboard cannot be reached, or will not take the run's commands. */
export class FatalError extends Error {}

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
