/**
 * Against a local HTTP server answering the live feed's ticket route with a 429 `Retry-After: 1`
 * (what a real Switchboard's rate limit answers, with a wait a test can time):
 *
 * - Each 429 of the ticket request is waited once, its Retry-After: the ticket request's own
 *   retries and the subscription's next try together never wait twice for one answer.
 */
import { SwitchboardClient, SwitchboardError } from 'switchboard/client';
import { expect, it } from 'vitest';
import { localServer } from '../support/local-server.ts';

async function rateLimitedServer(): Promise<{ url: string; tickets: number[] }> {
  const tickets: number[] = [];
  const { url } = await localServer((req, res) => {
    req.resume();
    if (req.url?.endsWith('/ws-tickets')) tickets.push(Date.now());
    res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '1' });
    res.end(JSON.stringify({ type: '/problems/rate-limited', title: 'Too Many Requests', status: 429 }));
  });
  return { url, tickets };
}

it("each 429 of the ticket request is waited once (its Retry-After), the request's retries and the subscription's next try together", async () => {
  const { url, tickets } = await rateLimitedServer();
  // The ticket request's own retries (1 more try), then the subscription's.
  const client = new SwitchboardClient({ url, key: 'sb_k_s', retries: 1, backoffMs: 10, maxBackoffMs: 10 });
  const errors: Error[] = [];
  const sub = client.subscribe(
    { auth: 'ticket', retryFirst: true, backoffMs: 10, maxBackoffMs: 10, onError: (e) => errors.push(e) },
    () => undefined,
  );
  // Four ticket requests (three waits), or the time three double waits would take.
  for (const t0 = Date.now(); tickets.length < 4 && Date.now() - t0 < 6_500; )
    await new Promise((r) => setTimeout(r, 50));
  sub.close();
  await sub.ended;
  // A ticket request at 0, 1, 2 and 3 s: one a second, each after the wait its 429 asked (a
  // double wait would be 2 s or more; the bound leaves a loaded machine's timers room).
  const gaps = tickets.slice(1, 4).map((at, i) => at - tickets[i]!);
  expect(
    gaps.every((g) => g >= 950 && g < 1_900),
    `gaps between ticket requests: ${gaps.join(', ')} ms`,
  ).toBe(true);
  expect(tickets.length).toBeGreaterThanOrEqual(4);
  expect(errors[0]).toBeInstanceOf(SwitchboardError);
  expect((errors[0] as SwitchboardError).status).toBe(429);
}, 10_000);
