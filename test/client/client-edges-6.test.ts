/**
 * Time options of the client that no try gets past, or that a timer cannot hold:
 *
 * - `timeoutMs` of 0 (or below) timed every try out before it was sent: a call was tried again
 *   and again for seconds and failed as a `timeout`, a live feed was tried for ever with
 *   `retryFirst`. It is a TypeError naming the option, before anything is sent (as NaN is).
 * - a live feed's `heartbeatMs` past what a timer holds (`Infinity`, for "never take the path for
 *   dead until the server names its interval") armed its watchdog with it: Node fires such a timer
 *   after 1 ms with a TimeoutOverflowWarning, so it re-armed every millisecond, warning each time.
 *   `heartbeatMs` of NaN is a TypeError, as the other numeric options are.
 */
import { SwitchboardError } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../support/wait.ts';
import { type ClientFixture, startClientFixture } from './fixture.ts';
import { readyFailure } from './unusable-url.ts';

const WS = 'client-edges-6';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS]);
}, 30_000);
afterAll(async () => p?.stop());

describe('a timeoutMs not above 0', () => {
  it('is a TypeError naming it, nothing sent, on the client or on the call', async () => {
    const cases: [string, number | undefined, number | undefined][] = [
      ["the client's 0", 0, undefined],
      ["the client's -1", -1, undefined],
      ["the call's 0", undefined, 0],
    ];
    for (const [what, clientTimeout, callTimeout] of cases) {
      const sent: string[] = [];
      const c = p.client(WS, {
        backoffMs: 200,
        ...(clientTimeout === undefined ? {} : { timeoutMs: clientTimeout }),
        fetch: (url, init) => {
          sent.push(`${init?.method} ${url}`);
          return fetch(url, init);
        },
      });
      const started = Date.now();
      const err = await c.health(callTimeout === undefined ? {} : { timeoutMs: callTimeout }).then(
        () => new Error(`${what}: answered`),
        (e: unknown) => e as Error,
      );
      expect(err, what).toBeInstanceOf(TypeError);
      expect(err, what).not.toBeInstanceOf(SwitchboardError);
      expect(err.message, what).toMatch(/the option timeoutMs is -?\d: .*above 0 .*Infinity for none/);
      expect(sent, what).toEqual([]);
      expect(Date.now() - started, what).toBeLessThan(1000);
    }
    // Infinity is no limit: the call is made.
    await expect(p.client(WS, { timeoutMs: Number.POSITIVE_INFINITY }).getSettings()).resolves.toBeDefined();
  });

  it("ends a live feed at once, by ticket or header, retryFirst or not (the client's timeoutMs)", async () => {
    for (const auth of ['ticket', 'header'] as const) {
      const errors: Error[] = [];
      const sub = p
        .client(WS, { timeoutMs: 0 })
        .subscribe({ auth, retryFirst: true, backoffMs: 50, onError: (e) => errors.push(e) }, () => {});
      try {
        const err = await readyFailure(sub.ready, errors);
        expect(err, auth).toBeInstanceOf(TypeError);
        expect(err.message, auth).toMatch(/timeoutMs is 0/);
        await sub.ended;
        expect(sub.reconnects, auth).toBe(0);
      } finally {
        sub.close();
      }
    }
  });
});

describe("a live feed's heartbeatMs", () => {
  it('past what a timer holds (Infinity) opens and delivers without a TimeoutOverflowWarning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => {
      if (w.name === 'TimeoutOverflowWarning') warnings.push(w.message);
    };
    process.on('warning', onWarning);
    const seen: string[] = [];
    const errors: Error[] = [];
    const c = p.client(WS);
    const sub = c.subscribe(
      { heartbeatMs: Number.POSITIVE_INFINITY, types: ['AgentRegistered'], onError: (e) => errors.push(e) },
      (e) => {
        seen.push(e.type);
      },
    );
    try {
      await sub.ready;
      await c.registerAgent({ id: 'hb-inf', skills: ['s'] });
      const until = Date.now() + 5000;
      while (seen.length === 0 && Date.now() < until) await sleep(20);
      await sleep(100);
      expect(seen).toEqual(['AgentRegistered']);
      expect(errors).toEqual([]);
      expect(sub.reconnects).toBe(0);
      expect(warnings).toEqual([]);
    } finally {
      sub.close();
      process.off('warning', onWarning);
    }
  });

  it('of NaN ends the feed at once with a TypeError naming it', async () => {
    const errors: Error[] = [];
    const sub = p
      .client(WS)
      .subscribe({ heartbeatMs: Number.NaN, retryFirst: true, onError: (e) => errors.push(e) }, () => {});
    try {
      const err = await readyFailure(sub.ready, errors);
      expect(err).toBeInstanceOf(TypeError);
      expect(err.message).toMatch(/the option heartbeatMs is NaN: it takes a number/);
      await sub.ended;
    } finally {
      sub.close();
    }
  });
});
