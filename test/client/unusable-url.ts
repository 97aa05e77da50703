/** A client on a base URL fetch cannot call: what one `getSettings()`, or a live feed, on it comes to. */
import { sleep } from '../support/wait.ts';
import type { ClientFixture } from './fixture.ts';

export interface UnusableUrlCall {
  /** What `getSettings()` rejected with (an Error saying `answered` if it resolved). */
  readonly err: Error;
  /** Each request handed to fetch, as `METHOD url`. */
  readonly sent: readonly string[];
  /** Each `onRetry` told (the client backs off 200 ms between tries). */
  readonly retried: readonly unknown[];
  /** From the call to its end. */
  readonly elapsedMs: number;
}

/** `getSettings()` on a client of `ws` made with `urls` (`url`, `failover`); `what` names the case. */
export async function settingsOnUnusableUrl(
  p: ClientFixture,
  ws: string,
  urls: { url: string; failover?: string[] },
  what: string,
): Promise<UnusableUrlCall> {
  const sent: string[] = [];
  const retried: unknown[] = [];
  const c = p.client(ws, {
    ...urls,
    backoffMs: 200,
    onRetry: (i) => {
      retried.push(i);
      return undefined;
    },
    fetch: (url, init) => {
      sent.push(`${init?.method} ${url}`);
      return fetch(url, init);
    },
  });
  const started = Date.now();
  const err = await c.getSettings().then(
    () => new Error(`${what}: answered`),
    (e: unknown) => e as Error,
  );
  return { err, sent, retried, elapsedMs: Date.now() - started };
}

/**
 * What a live subscription's `ready` rejected with, or, if it opened or is still trying after 3 s,
 * an Error saying so (with how many failures `errors`, its `onError` list, holds by then).
 */
export const readyFailure = (ready: Promise<unknown>, errors: readonly Error[]): Promise<Error> =>
  Promise.race([
    ready.then(
      () => new Error('opened'),
      (e: unknown) => e as Error,
    ),
    sleep(3000).then(() => new Error(`still trying after 3 s, ${errors.length} failures told`)),
  ]);
