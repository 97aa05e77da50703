/**
 * Edges of the client's requests, against a real Switchboard and real local HTTP servers:
 * - a redirect answered to a command is not followed (fetch sends a 301/302/303 on as a GET
 *   without the body: the command lost, or turned into a query): a SwitchboardError naming the
 *   Location, nothing sent on;
 * - the key and operation methods take a `signal` as the commands and queries do: aborted, nothing
 *   is sent;
 * - a query string in the path and the `query` option are joined with `&`, not a second `?`;
 * - a NaN in a numeric option (`Number(process.env.X)` of an unset variable) is a TypeError naming
 *   it, not a call that never ends (a backoff of NaN: a wait that never ends; retries of NaN:
 *   tries without end; a timeout of NaN: no limit).
 */
import type { IncomingMessage } from 'node:http';
import { SwitchboardError } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localServer } from '../support/local-server.ts';
import { type ClientFixture, failure, startClientFixture } from './fixture.ts';

const WS = 'client-request-edges';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS]);
}, 30_000);
afterAll(async () => p?.stop());

/** Rejects when `call` is still pending after `ms`: a call that would never end. */
const within = <T>(ms: number, call: Promise<T>): Promise<T> =>
  Promise.race([
    call,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`the call is still pending after ${ms} ms`)), ms).unref(),
    ),
  ]);

describe('a redirect answered to a command', () => {
  it('is not followed: a SwitchboardError naming the Location, the command not sent on as a GET', async () => {
    // A proxy in front of Switchboard that moved: every request redirected to Switchboard itself.
    for (const code of [301, 302, 303, 307, 308]) {
      const seen: string[] = [];
      const proxy = await localServer((req, res) => {
        res.writeHead(code, { location: `${p.main.url}${req.url}`, 'content-type': 'text/html' });
        res.end('<html>moved</html>');
      });
      const onRequest = (req: IncomingMessage) => {
        if (req.url?.includes('/contacts')) seen.push(`${req.method} ${req.url}`);
      };
      p.main.api!.server.on('request', onRequest);
      try {
        const c = p.client(WS, { url: proxy.url });
        const err = await failure(c.queueContact({ id: `moved-${code}`, skills: ['x'] }));
        expect(err, `${code}: ${err}`).toBeInstanceOf(SwitchboardError);
        expect(err.status, `${code}: ${err}`).toBe(code);
        expect(err.detail).toContain(`${p.main.url}/v1/workspaces/${WS}/contacts`);
        expect(err.attempts).toBe(1);
        expect(seen, `${code}: what reached Switchboard`).toEqual([]);
      } finally {
        p.main.api!.server.off('request', onRequest);
        await proxy.close();
      }
    }
    // A query still follows a redirect (a GET stays a GET); one to another origin loses the key
    // (fetch sends no Authorization there): the 401 says so, not just "No API key was given".
    const proxy = await localServer((req, res) => {
      res.writeHead(301, { location: `${p.main.url}${req.url}` });
      res.end();
    });
    try {
      const err = await failure(p.client(WS, { url: proxy.url }).getSettings());
      expect(err.status).toBe(401);
      expect(err.detail).toContain(`redirected to ${p.main.url}/v1/workspaces/${WS}/settings`);
      expect(err.detail).toContain('Authorization');
      const open = await p.client(WS, { url: proxy.url, key: undefined }).health();
      expect(open.status).toBe('ok');
    } finally {
      await proxy.close();
    }
  });
});

describe('a signal on the key and operation methods', () => {
  it('aborted before the call: nothing is sent, a SwitchboardError "aborted"', async () => {
    const sent: string[] = [];
    const c = p.client(WS, {
      fetch: (url, init) => {
        sent.push(`${init?.method} ${url}`);
        return fetch(url, init);
      },
    });
    const kept = await p.client(WS).createKey({ role: 'auditor', name: 'kept' });
    const signal = AbortSignal.abort();
    const calls: [string, () => Promise<unknown>][] = [
      ['createKey', () => c.createKey({ role: 'auditor', name: 'aborted' }, { signal })],
      ['listKeys', () => c.listKeys({ signal })],
      ['getKey', () => c.getKey(kept.keyId, { signal })],
      ['revokeKey', () => c.revokeKey(kept.keyId, { signal })],
      ['whoami', () => c.whoami({ signal })],
      ['createWsTicket', () => c.createWsTicket({ signal })],
      ['health', () => c.health({ signal })],
      ['status', () => c.status({ signal })],
      ['metrics', () => c.metrics({ signal })],
      ['openapiDocument', () => c.openapiDocument({ signal })],
    ];
    for (const [name, call] of calls) {
      const err = await failure(call());
      expect(err, name).toBeInstanceOf(SwitchboardError);
      expect(err.detail, name).toBe('aborted');
    }
    expect(sent).toEqual([]);
    expect((await p.client(WS).getKey(kept.keyId)).revokedAt ?? null).toBeNull();
    expect((await p.client(WS).listKeys()).map((k) => k.name)).not.toContain('aborted');
  });
});

describe('a query string in the path and the query option', () => {
  it('are joined with &', async () => {
    const c = p.client(WS);
    await c.registerAgent({ id: 'qs-agent', skills: ['x'] });
    await c.queueContact({ id: 'qs-1', skills: ['x'] });
    await c.queueContact({ id: 'qs-2', skills: ['x'] });
    const a = await c.request<{ events: { type: string }[] }>('GET', `${c.workspacePath}/events?limit=1`, {
      query: { type: 'ContactQueued' },
    });
    expect(a.body.events).toHaveLength(1);
    expect(a.body.events[0]!.type).toBe('ContactQueued');
  });
});

describe('a NaN in a numeric option', () => {
  it('is a TypeError naming it, not a call that never ends', async () => {
    let tries = 0;
    const unavailable = await localServer((req, res) => {
      tries++;
      if (req.url === '/hang') return; // never answers
      res.writeHead(503, { 'retry-after': 'soon', 'content-type': 'application/json' });
      res.end('{}');
    });
    try {
      const cases: [string, Record<string, number>, string][] = [
        ['backoffMs', { backoffMs: Number.NaN, retries: 2 }, '/health'],
        ['maxBackoffMs', { maxBackoffMs: Number.NaN, retries: 2 }, '/health'],
        ['retries', { retries: Number.NaN, backoffMs: 5, maxBackoffMs: 5 }, '/health'],
        ['timeoutMs', { timeoutMs: Number.NaN, retries: 0 }, '/hang'],
      ];
      for (const [name, options, path] of cases) {
        tries = 0;
        const c = p.client(WS, { url: unavailable.url, ...options });
        const err = await within(3_000, failure<Error>(c.request('GET', path))).catch((e: Error) => e);
        expect(err, `${name}: ${err}`).toBeInstanceOf(TypeError);
        expect(err.message).toContain(name);
        expect(tries, name).toBe(0);
      }
      // The same per call.
      const c = p.client(WS, { url: unavailable.url });
      const err = await within(3_000, failure<Error>(c.request('GET', '/health', { retries: Number.NaN })));
      expect(err).toBeInstanceOf(TypeError);
      expect(err.message).toContain('retries');
    } finally {
      await unavailable.close();
    }
  }, 20_000);
});

describe('a NaN in a numeric option of a live subscription', () => {
  it('ends it with a TypeError naming it, not a storm of connections', async () => {
    const down = await localServer(() => {});
    const deadUrl = down.url;
    await down.close(); // nothing listens there any more
    const cases: [string, Record<string, number>][] = [
      ['backoffMs', { backoffMs: Number.NaN }],
      ['maxBackoffMs', { maxBackoffMs: Number.NaN }],
    ];
    for (const [name, options] of cases) {
      const errors: Error[] = [];
      const sub = p
        .client(WS, { url: deadUrl })
        .subscribe({ ...options, retryFirst: true, onError: (e) => void errors.push(e) }, () => {});
      try {
        const got = await within(
          1_500,
          sub.ready.then(
            () => new Error('opened'),
            (e: Error) => e,
          ),
        ).catch((e: Error) => e);
        await new Promise((r) => setTimeout(r, 500));
        const what = `${name}: ${got}; ${sub.reconnects} reconnects, ${errors.length} errors`;
        expect(got, what).toBeInstanceOf(TypeError);
        expect(got.message, what).toContain(name);
        expect(sub.reconnects, what).toBe(0);
      } finally {
        sub.close();
      }
    }
  });
});
