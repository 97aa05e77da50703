/**
 * A request fetch cannot send at all (a header value with a line break, a body JSON cannot write)
 * is the caller's mistake: a TypeError at once, nothing sent, no retry, rather than a "network"
 * failure tried again for seconds (and at each failover URL) as if the server were unreachable.
 */
import { SwitchboardError } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientFixture, startClientFixture } from './fixture.ts';

const WS = 'client-unsendable';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS]);
}, 30_000);
afterAll(async () => p?.stop());

describe('a request that cannot be sent', () => {
  it('is a TypeError before anything is sent, never retried, the value not repeated', async () => {
    const sent: string[] = [];
    const retried: unknown[] = [];
    const options = {
      backoffMs: 200,
      onRetry: (i: unknown) => {
        retried.push(i);
        return undefined;
      },
      fetch: (url: string | URL | Request, init?: RequestInit) => {
        sent.push(`${init?.method} ${url}`);
        return fetch(url, init);
      },
    };
    const c = p.client(WS, options);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const secret = 'line\nbreak';
    const calls: [string, () => Promise<unknown>][] = [
      [
        'a key with a line break',
        () => c.queueContact({ id: 'u-1', skills: ['s'] }, { idempotencyKey: secret }),
      ],
      ['a BigInt in the body', () => c.queueContact({ id: 'u-2', skills: ['s'], attributes: { n: 1n } })],
      ['a cycle in the body', () => c.queueContact({ id: 'u-3', skills: ['s'], attributes: cyclic })],
      ['an API key with a line break', () => p.client(WS, { ...options, key: `sb_${secret}` }).getSettings()],
    ];
    for (const [what, call] of calls) {
      const started = Date.now();
      const err = await call().then(
        () => new Error(`${what}: sent`),
        (e: unknown) => e as Error,
      );
      expect(err, what).toBeInstanceOf(TypeError);
      expect(err, what).not.toBeInstanceOf(SwitchboardError);
      expect(err.message, what).not.toContain(secret);
      expect(Date.now() - started, what).toBeLessThan(150);
    }
    expect(sent).toEqual([]);
    expect(retried).toEqual([]);
    const queued = (await p.client(WS).listEvents({ types: ['ContactQueued'] })).events;
    expect(queued).toEqual([]);
  });

  it('a live subscription with such a key ends at once with the TypeError, retryFirst or not', async () => {
    for (const auth of ['header', 'ticket'] as const)
      for (const retryFirst of [false, true]) {
        const what = `${auth}, retryFirst ${retryFirst}`;
        const errors: Error[] = [];
        const started = Date.now();
        const sub = p
          .client(WS, { key: 'sb_line\nbreak', retries: 0 })
          .subscribe({ auth, retryFirst, backoffMs: 50, onError: (e) => errors.push(e) }, () => {});
        const err = await sub.ready.then(
          () => new Error(`${what}: opened`),
          (e: unknown) => e as Error,
        );
        await sub.ended;
        expect(err, what).toBeInstanceOf(TypeError);
        expect(err.message, what).not.toContain('line\nbreak');
        expect(errors, what).toHaveLength(1);
        expect(sub.reconnects, what).toBe(0);
        expect(Date.now() - started, what).toBeLessThan(1000);
      }
  });
});
