/**
 * A real Switchboard with RATE_LIMIT=1 (bursts of 1): the live feed's ticket request refused with a
 * 429 `rate-limited` (the client's own retries off) holds the subscription's next try to the wait
 * the refusal asked for, not to the plain backoff, which would ask again and again within the
 * second and be refused each time. (The upgrade a ticket opens spends none of the key's budget:
 * test/client/live-ticket-upgrade-budget.test.ts; so the next try opens the feed.)
 */
import { SwitchboardError } from 'switchboard/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ClientFixture, startClientFixture } from './fixture.ts';

const WS = 'client-ticket-429';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS], { RATE_LIMIT: '1', RATE_LIMIT_BURST: '1' });
}, 30_000);
afterAll(async () => p?.stop());

it("a ticket's 429 holds the next try to its retryAfterMs", async () => {
  const client = p.client(WS, { retries: 0 });
  // The key's one request of this second: the ticket request after it is refused.
  await client.whoami().catch(() => undefined);
  // Each try's end: refused (err) or opened (no err).
  const failures: { at: number; err?: Error }[] = [];
  const sub = client.subscribe(
    {
      auth: 'ticket',
      retryFirst: true,
      backoffMs: 10,
      maxBackoffMs: 10,
      onError: (err) => failures.push({ at: Date.now(), err }),
      onOpen: () => {
        failures.push({ at: Date.now() });
      },
    },
    () => undefined,
  );
  // Long enough for the refusal's wait (a second at most) and the try after it.
  await new Promise((r) => setTimeout(r, 1_500));
  sub.close();
  const [first, next] = failures;
  expect(first?.err).toBeInstanceOf(SwitchboardError);
  const refusal = first!.err as SwitchboardError;
  expect(refusal.path).toMatch(/\/ws-tickets$/);
  expect(refusal.status).toBe(429);
  const asked = refusal.problem?.retryAfterMs as number;
  expect(asked).toBeGreaterThan(100);
  // The next try (refused or opened) came no sooner than the refusal asked: not after the 10 ms backoff.
  expect(next).toBeDefined();
  expect(next!.at - first!.at).toBeGreaterThanOrEqual(asked - 20);
}, 10_000);
