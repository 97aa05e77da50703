/** Waiting in tests: the one `sleep` and the one `waitFor` (polling until a condition holds). */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface WaitOptions {
  /** Give up (throw) after this long. Default 10 s. */
  readonly timeoutMs?: number;
  /** Poll this often. Default 100 ms. */
  readonly everyMs?: number;
}

/**
 * Polls `check` until it returns a value other than undefined/false and resolves with that value;
 * throws after `timeoutMs`, naming `what` (a function: described when it fails) and the last
 * error or value seen. A throwing check counts as not yet.
 */
export async function waitFor<T>(
  what: string | (() => string),
  check: () => Promise<T | undefined | false> | T | undefined | false,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  let last: { error: unknown } | { value: unknown } = { value: undefined };
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
      last = { value: v };
    } catch (error) {
      last = { error };
    }
    if (Date.now() > deadline) {
      const seen = 'error' in last ? `last error: ${String(last.error)}` : `last: ${String(last.value)}`;
      const described = typeof what === 'string' ? what : what();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${described} (${seen})`);
    }
    await sleep(opts.everyMs ?? 100);
  }
}

/** Resolves with what `promise` resolves to and how long it took from now. */
export async function timed<T>(promise: Promise<T>): Promise<{ value: T; elapsedMs: number }> {
  const start = Date.now();
  const value = await promise;
  return { value, elapsedMs: Date.now() - start };
}
