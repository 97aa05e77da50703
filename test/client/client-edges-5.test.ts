/**
 * A base URL with credentials in it (`http://user:secret@host`): fetch refuses to make a request of
 * one ("Request cannot be constructed from a URL that includes credentials: <the URL>"), in Node
 * as in browsers, so no call of such a client can ever reach a server. It is the caller's mistake,
 * as a URL with no `http://` is: a TypeError at once, nothing sent, no retry, and a message that
 * does not repeat the credentials. It was a `network` failure, tried again for seconds as if the
 * server were down, whose message (and `detail`) carried the password; a live subscription with
 * tickets, and `retryFirst`, tried again without end, telling the password to `onError` each time.
 */
import { SwitchboardError } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientFixture, startClientFixture } from './fixture.ts';
import { readyFailure, settingsOnUnusableUrl } from './unusable-url.ts';

const WS = 'client-edges-5';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS]);
}, 30_000);
afterAll(async () => p?.stop());

const withCredentials = (url: string) => url.replace(/^http:\/\//, 'http://ops:hunter2@');

describe('a base URL with credentials', () => {
  it('is a TypeError that does not repeat them, before anything is sent, never retried', async () => {
    const good = p.main.url!;
    const cases: [string, { url: string; failover?: string[] }][] = [
      ["the client's url", { url: withCredentials(good) }],
      ['a failover URL', { url: good, failover: [withCredentials(good)] }],
    ];
    for (const [what, urls] of cases) {
      const { err, sent, retried, elapsedMs } = await settingsOnUnusableUrl(p, WS, urls, what);
      expect(err, what).toBeInstanceOf(TypeError);
      expect(err, what).not.toBeInstanceOf(SwitchboardError);
      expect(err.message, what).not.toContain('hunter2');
      expect(err.message, what).toMatch(/credentials/);
      expect(err.message, what).toContain(good.replace(/^http:\/\//, '')); // which URL: its host
      expect(elapsedMs, what).toBeLessThan(1000); // four retries would take 3 s
      expect(retried, what).toEqual([]);
      expect(sent, what).toEqual([]);
    }
  });
});

describe('the live feed on such a URL', () => {
  it('ends at once with the TypeError, by ticket or header, retryFirst or not', async () => {
    for (const auth of ['ticket', 'header'] as const)
      for (const retryFirst of [true, false]) {
        const what = `${auth}, retryFirst ${retryFirst}`;
        const errors: Error[] = [];
        const started = Date.now();
        const sub = p
          .client(WS, { url: withCredentials(p.main.url!), backoffMs: 50 })
          .subscribe({ auth, retryFirst, backoffMs: 50, onError: (e) => errors.push(e) }, () => {});
        try {
          const err = await readyFailure(sub.ready, errors);
          expect(err, what).toBeInstanceOf(TypeError);
          expect(err.message, what).toMatch(/credentials/);
          await sub.ended;
          expect(errors, what).toHaveLength(1);
          expect(errors.map((e) => e.message).join('\n'), what).not.toContain('hunter2');
          expect(sub.reconnects, what).toBe(0);
          expect(Date.now() - started, what).toBeLessThan(3000);
        } finally {
          sub.close();
        }
      }
  });
});
