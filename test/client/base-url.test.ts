/**
 * A base URL fetch cannot call at all (no `http://`: `127.0.0.1:8080`, `localhost:8080`, or a
 * scheme other than http and https) is the caller's mistake, like a header fetch cannot send: a
 * TypeError at once that says what the URL must be, nothing sent, no retry. It was a "network"
 * failure (`unknown scheme`, `Invalid URL`) tried again for seconds as if the server were down.
 * A failover URL is checked with `url`: a mistake in it would otherwise stay hidden until the
 * outage it is there for.
 */
import { SwitchboardError } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientFixture, startClientFixture } from './fixture.ts';
import { readyFailure, settingsOnUnusableUrl } from './unusable-url.ts';

const WS = 'client-base-url';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS]);
}, 30_000);
afterAll(async () => p?.stop());

describe('a base URL fetch cannot call', () => {
  it('is a TypeError naming it and what it must be, before anything is sent, never retried', async () => {
    const good = p.main.url!; // http://127.0.0.1:<port>
    const hostPort = good.replace(/^http:\/\//, '');
    const cases: [string, { url: string; failover?: string[] }][] = [
      ['host:port without http://', { url: hostPort }],
      ['localhost:port without http://', { url: hostPort.replace('127.0.0.1', 'localhost') }],
      ['another scheme', { url: `ftp://${hostPort}` }],
      ['a failover URL without http://', { url: good, failover: [hostPort] }],
    ];
    for (const [what, urls] of cases) {
      const { err, sent, retried, elapsedMs } = await settingsOnUnusableUrl(p, WS, urls, what);
      expect(err, what).toBeInstanceOf(TypeError);
      expect(err, what).not.toBeInstanceOf(SwitchboardError);
      expect(err.message, what).toContain(`"${urls.failover?.[0] ?? urls.url}"`);
      expect(err.message, what).toMatch(/http:\/\/ or https:\/\//);
      expect(elapsedMs, what).toBeLessThan(1000); // four retries would take 3 s
      expect(sent, what).toEqual([]);
      expect(retried, what).toEqual([]);
    }
    // The same client with the scheme written answers.
    expect((await p.client(WS, { url: `${good}/` }).getSettings()).offerTimeoutMs).toBeTypeOf('number');
  });
});

describe('the live feed on such a URL', () => {
  it('ends at once with the TypeError, retryFirst or not', async () => {
    const hostPort = p.main.url!.replace(/^http:\/\//, '');
    for (const retryFirst of [true, false]) {
      const what = `retryFirst ${retryFirst}`;
      const errors: Error[] = [];
      const started = Date.now();
      const sub = p
        .client(WS, { url: hostPort })
        .subscribe({ retryFirst, backoffMs: 50, onError: (e) => errors.push(e) }, () => {});
      try {
        const err = await readyFailure(sub.ready, errors);
        expect(err, what).toBeInstanceOf(TypeError);
        expect(err.message, what).toContain(`"${hostPort}"`);
        await sub.ended;
        expect(errors, what).toHaveLength(1);
        expect(sub.reconnects, what).toBe(0);
        expect(Date.now() - started, what).toBeLessThan(3000);
      } finally {
        sub.close();
      }
    }
  });
});
