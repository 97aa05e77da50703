/**
 * A ticket's upgrade is paid for by its ticket: with RATE_LIMIT=1 (bursts of 1), a key that asks
 * for a ticket then opens the live feed with it at once is not refused a 429 at the upgrade (the
 * ticket request spent the second's one request). Each ticket opens one upgrade, so the key's
 * budget still bounds its feeds; a request with the key itself still spends it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ClientFixture, startClientFixture } from './fixture.ts';

const WS = 'client-ticket-budget';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS], { RATE_LIMIT: '1', RATE_LIMIT_BURST: '1' });
}, 30_000);
afterAll(async () => p?.stop());

it('a ticket subscription opens at one request a second: the upgrade spends no second request', async () => {
  const client = p.client(WS, { retries: 0 });
  const errors: Error[] = [];
  const sub = client.subscribe({ auth: 'ticket', onError: (err) => errors.push(err) }, () => undefined);
  try {
    await sub.ready;
    expect(errors).toEqual([]);
  } finally {
    sub.close();
  }
  // The key's own requests still spend its budget: the ticket took this second's one.
  await expect(client.whoami()).rejects.toMatchObject({ status: 429 });
}, 10_000);
