/**
 * What the client makes of a wait the server asks for, and of a live feed's handshake that never
 * answers, against tiny local servers that answer what a real Switchboard cannot be made to: a
 * `Retry-After` of hours (a proxy's), a 429 of the ticket request with only a `Retry-After` header,
 * an upgrade that is accepted on TCP and never answered.
 *
 * - A `Retry-After` holds a retry to at least what it says, up to `maxRetryAfterMs` (default 60 s).
 * - A ticket request refused with a 429 (its own retries spent) holds the subscription's next try
 *   to its `Retry-After`, not to the plain backoff.
 * - The live feed's handshake time limit is the client's `timeoutMs`.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { type RetryInfo, SwitchboardClient, SwitchboardError } from 'switchboard/client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { localServer } from '../support/local-server.ts';

/** An HTTP server answering every request with `answer`; its base URL and the times of its requests. */
/**
 * The first two ticket requests among `hits`, waiting up to 5 s for the second (a loaded machine's
 * timers may be late: no fixed window), then the subscription closed.
 */
async function twoTickets(
  hits: readonly { at: number; path: string }[],
  sub: { close(): void },
): Promise<({ at: number } | undefined)[]> {
  const tickets = () => hits.filter((h) => h.path.endsWith('/ws-tickets'));
  for (const t0 = Date.now(); tickets().length < 2 && Date.now() - t0 < 5_000; )
    await new Promise((r) => setTimeout(r, 20));
  sub.close();
  return tickets().slice(0, 2);
}

async function answering(
  answer: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<{ url: string; hits: { at: number; method: string; path: string }[] }> {
  const hits: { at: number; method: string; path: string }[] = [];
  const { url } = await localServer((req, res) => {
    hits.push({ at: Date.now(), method: req.method ?? '', path: req.url ?? '' });
    req.resume();
    answer(req, res);
  });
  return { url, hits };
}

const rateLimited =
  (retryAfter: string, body?: Record<string, unknown>) =>
  (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(429, {
      'content-type': 'application/problem+json',
      'retry-after': retryAfter,
    });
    res.end(
      JSON.stringify({ type: '/problems/rate-limited', title: 'Too Many Requests', status: 429, ...body }),
    );
  };

/** The first retry's info of a GET /health answered with `answer` (the retry itself not made). */
async function firstRetry(
  answer: Parameters<typeof answering>[0],
  more: Partial<ConstructorParameters<typeof SwitchboardClient>[0]> = {},
): Promise<RetryInfo> {
  const { url } = await answering(answer);
  const seen: RetryInfo[] = [];
  const client = new SwitchboardClient({
    url,
    onRetry: (info) => {
      seen.push(info);
      return false;
    },
    ...more,
  });
  await client.health().catch(() => undefined);
  expect(seen).toHaveLength(1);
  return seen[0]!;
}

describe('Retry-After and maxRetryAfterMs', () => {
  it('waits what Retry-After says, up to 60 s by default (a proxy asking for an hour)', async () => {
    expect((await firstRetry(rateLimited('3'))).delayMs).toBe(3_000);
    expect((await firstRetry(rateLimited('3600'))).delayMs).toBe(60_000);
  });

  it('maxRetryAfterMs sets the cap: lower, higher, or none (Infinity)', async () => {
    expect((await firstRetry(rateLimited('3600'), { maxRetryAfterMs: 500 })).delayMs).toBe(500);
    expect((await firstRetry(rateLimited('120'), { maxRetryAfterMs: 300_000 })).delayMs).toBe(120_000);
    expect(
      (await firstRetry(rateLimited('3600'), { maxRetryAfterMs: Number.POSITIVE_INFINITY })).delayMs,
    ).toBe(3_600_000);
    // The problem's retryAfterMs takes the same cap.
    expect(
      (await firstRetry(rateLimited('1', { retryAfterMs: 90_000 }), { maxRetryAfterMs: 120_000 })).delayMs,
    ).toBe(90_000);
  });

  it('a retry really waits the Retry-After under the cap, and the cap over it', async () => {
    let n = 0;
    const { url, hits } = await answering((req, res) => {
      if (n++ === 0) return rateLimited('3600')(req, res);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
    });
    const client = new SwitchboardClient({ url, backoffMs: 1, maxRetryAfterMs: 400 });
    expect(await client.health()).toEqual({ status: 'ok' });
    expect(hits).toHaveLength(2);
    const gap = hits[1]!.at - hits[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(380);
    expect(gap).toBeLessThan(1_500);
  }, 5_000);

  it('a maxRetryAfterMs of NaN is refused before anything is sent', async () => {
    const { url, hits } = await answering(rateLimited('1'));
    const client = new SwitchboardClient({ url, retries: 0, maxRetryAfterMs: Number.NaN });
    await expect(client.health()).rejects.toThrow(/maxRetryAfterMs is NaN/);
    expect(hits).toHaveLength(0);
  });

  it('a SwitchboardError carries the Retry-After its answer asked for (uncapped)', async () => {
    const { url } = await answering(rateLimited('3600'));
    const client = new SwitchboardClient({ url, retries: 0 });
    const err = await client.health().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SwitchboardError);
    expect((err as SwitchboardError).retryAfterMs).toBe(3_600_000);
  });
});

describe('the live feed', () => {
  it("a ticket's 429 holds the next try to its Retry-After (a header only), not the backoff", async () => {
    const { url, hits } = await answering(rateLimited('1'));
    const client = new SwitchboardClient({ url, key: 'sb_k_s', retries: 0 });
    const errors: Error[] = [];
    const sub = client.subscribe(
      { auth: 'ticket', retryFirst: true, backoffMs: 10, maxBackoffMs: 10, onError: (e) => errors.push(e) },
      () => undefined,
    );
    const [first, second] = await twoTickets(hits, sub);
    // One at once, the next a second later (not one every 10 ms).
    expect(second, 'a second ticket request').toBeDefined();
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(980);
    expect((errors[0] as SwitchboardError).status).toBe(429);
  });

  it("the ticket's Retry-After is held to maxRetryAfterMs", async () => {
    const { url, hits } = await answering(rateLimited('3600'));
    const client = new SwitchboardClient({ url, key: 'sb_k_s', retries: 0, maxRetryAfterMs: 300 });
    const sub = client.subscribe(
      { auth: 'ticket', retryFirst: true, backoffMs: 10, maxBackoffMs: 10 },
      () => undefined,
    );
    const [first, second] = await twoTickets(hits, sub);
    // The next try 300 ms later (the cap), not an hour, nor 10 ms.
    expect(second, 'a second ticket request').toBeDefined();
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(280);
    expect(second!.at - first!.at).toBeLessThan(3_000);
  });

  it("the handshake's time limit is the client's timeoutMs", async () => {
    // Accepts the connection, never answers the upgrade.
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      s.on('error', () => undefined);
      sockets.add(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onTestFinished(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          server.close(() => r());
        }),
    );
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const key of ['sb_k_s', undefined]) {
      const client = new SwitchboardClient({ url, key, timeoutMs: 300 });
      const started = Date.now();
      const sub = client.subscribe({}, () => undefined);
      const outcome = await Promise.race([
        sub.ready.then(
          () => 'opened',
          (e: Error) => `failed: ${e.message}`,
        ),
        new Promise<string>((r) => setTimeout(() => r('still waiting after 2 s'), 2_000)),
      ]);
      sub.close();
      expect(outcome).toMatch(/failed: .*handshake has timed out/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    }
  });
});
