/**
 * The live feed's query is encoded: an `after` (or a type) with a character of the query syntax in
 * it (`&`, `#`, `=`) reaches the server whole, which refuses it naming the field (as `listEvents`
 * sends it), rather than cut at the `&` into another query: an `after=` the server accepts and a
 * parameter of its own (`heartbeat=0` here, turning the heartbeats off unasked), the feed opened
 * on it, and the subscription holding a position that is none (compared with an event of the same
 * millisecond, BigInt of its rest throws from the socket's message event).
 */
import type { SwitchboardError } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../support/wait.ts';
import { type ClientFixture, startClientFixture } from './fixture.ts';

const WS = 'client-live-query-enc';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS]);
}, 30_000);
afterAll(async () => p?.stop());

describe('the live subscription', () => {
  it('an after= with a query character is refused whole (400 naming after), not cut into another query', async () => {
    const c = p.client(WS);
    await c.registerAgent({ id: 'enc-1', skills: ['English'] });
    const first = (await c.listEvents({ limit: 1 })).events[0]!.position;
    await c.registerAgent({ id: 'enc-2', skills: ['English'] });
    const errors: Error[] = [];
    const got: string[] = [];
    const sub = c.subscribe(
      { after: `${first}&heartbeat=0`, heartbeatMs: 0, onError: (e) => errors.push(e) },
      (e) => got.push(e.position),
    );
    try {
      const err = (await sub.ready.then(
        () => undefined,
        (e: unknown) => e,
      )) as SwitchboardError | undefined;
      await sleep(200);
      expect(
        got,
        `the feed opened on a query cut at the &: position ${sub.position}, errors ${errors.map((e) => e.message).join('; ')}`,
      ).toEqual([]);
      expect(err?.status).toBe(400);
      expect(err?.errors.map((e) => e.path)).toContain('after');
      expect(errors).toHaveLength(1);
    } finally {
      sub.close();
    }
  });
});
