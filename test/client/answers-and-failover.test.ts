/**
 * What the client makes of answers that are not Switchboard's, and which base URL a call starts
 * at with `failover`:
 * - a 2xx whose body is no JSON document (an HTML page of a proxy in front of Switchboard, an
 *   answer cut short) is a SwitchboardError carrying the text, never a document, a command
 *   "applied" at position "undefined" or a TypeError;
 * - a call starts at the base URL that answered the last one: a base URL that does not answer
 *   costs one failed try, not one per call (and not the writes that are not tried again).
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import net from 'node:net';
import { SwitchboardError } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientFixture, failure, startClientFixture } from './fixture.ts';

const WS = 'client-answers';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS]);
}, 30_000);
afterAll(async () => p?.stop());

async function listen(server: Server | net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/**
 * A reverse proxy to Switchboard on loopback that, once its session is `expired`, answers every
 * request 200 with its own HTML sign-in page; `truncate` makes it cut each answer's body short.
 */
async function proxy(): Promise<{
  url: string;
  mode: 'pass' | 'expired' | 'truncate';
  close(): Promise<void>;
}> {
  const target = new URL(p.main.url!);
  const state = { mode: 'pass' as 'pass' | 'expired' | 'truncate' };
  const server = createServer((req, res) => {
    if (state.mode === 'expired') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><html><body><h1>Sign in to continue</h1></body></html>');
      return;
    }
    const up = httpRequest(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
      (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          const whole = Buffer.concat(chunks);
          const body = state.mode === 'truncate' ? whole.subarray(0, Math.floor(whole.length / 2)) : whole;
          const headers = { ...r.headers, 'content-length': String(body.length) };
          res.writeHead(r.statusCode!, headers);
          res.end(body);
        });
      },
    );
    req.pipe(up);
  });
  const url = await listen(server);
  return {
    url,
    get mode() {
      return state.mode;
    },
    set mode(m) {
      state.mode = m;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('answers that are not JSON', () => {
  it('a 2xx HTML page of a proxy, or a body cut short: a SwitchboardError with the text, not a document', async () => {
    const px = await proxy();
    try {
      const c = p.client(WS, { url: px.url });
      await c.registerAgent({ id: 'proxied', skills: ['x'] }); // through the proxy to Switchboard
      expect((await c.getAgent('proxied')).id).toBe('proxied');

      px.mode = 'expired';
      const queued = await failure(c.queueContact({ id: 'behind-proxy', skills: ['x'] }));
      expect(queued).toBeInstanceOf(SwitchboardError);
      expect(queued).toMatchObject({ status: 200, method: 'POST' });
      expect(queued.detail).toContain('Sign in to continue');
      expect(queued.idempotencyKey).toEqual(expect.any(String));
      for (const call of [
        () => c.getAgent('proxied'),
        () => c.listAgents(),
        () => c.getStats(),
        () => c.listKeys(),
        () => c.whoami(),
        () => c.health(),
      ]) {
        const err = await failure(call());
        expect(err).toBeInstanceOf(SwitchboardError);
        expect(err.detail).toContain('Sign in to continue');
      }

      px.mode = 'truncate';
      const cut = await failure(c.getAgent('proxied'));
      expect(cut).toBeInstanceOf(SwitchboardError);
      expect(cut).toMatchObject({ status: 200 });
      // The metrics are text: still answered as text.
      px.mode = 'pass';
      expect(await c.metrics()).toContain('# HELP');
    } finally {
      await px.close();
    }
  }, 20_000);
});

describe('failover', () => {
  it('a call starts at the base URL that answered the last one: a silent one costs one timeout, not one per call', async () => {
    // Accepts connections and never answers: a host that hangs.
    const held = new Set<net.Socket>();
    const silent = net.createServer((s) => {
      held.add(s);
      s.on('error', () => {});
    });
    const silentUrl = await listen(silent);
    try {
      const tries: string[] = [];
      const c = p.client(WS, {
        url: silentUrl,
        failover: [p.main.url!],
        timeoutMs: 500,
        backoffMs: 10,
        fetch: (url, init) => {
          tries.push(new URL(String(url)).origin);
          return fetch(url, init);
        },
      });
      // The first call meets the silent one, then the next base URL answers.
      await c.getStats();
      expect(tries).toEqual([silentUrl, p.main.url]);
      // Later calls go to the one that answered: no timeout each.
      tries.length = 0;
      const t0 = Date.now();
      const queued = await c.queueContact({ id: 'kept', skills: ['x'] });
      expect(queued).toMatchObject({ applied: true });
      expect((await c.getContact('kept')).id).toBe('kept');
      expect(Date.now() - t0).toBeLessThan(500);
      expect(tries).toEqual([p.main.url, p.main.url]);
      // A write without a key (no retry after a timeout) reaches the instance that answers.
      const key = await c.createKey({ role: 'auditor', name: 'failover' });
      expect(key.role).toBe('auditor');
      expect(tries.slice(2)).toEqual([p.main.url]);
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  }, 20_000);
});

describe('time limits', () => {
  it('a timeoutMs past what a timer holds (Infinity, 30 days) is no limit, not a timeout at once', async () => {
    for (const timeoutMs of [Number.POSITIVE_INFINITY, 30 * 24 * 3_600_000]) {
      const c = p.client(WS, { timeoutMs, retries: 1, backoffMs: 1 });
      expect(await c.health()).toEqual({ status: 'ok' });
      const queued = await c.queueContact({ skills: ['x'], attributes: { timeoutMs: String(timeoutMs) } });
      expect(queued).toMatchObject({ applied: true, status: 201 });
      const a = await c.send('GET', `${c.workspacePath}/stats`, { timeoutMs });
      expect(a).toMatchObject({ status: 200, attempts: 1 });
    }
  });

  it('a wait from onRetry past what a timer holds is waited (until the signal), not skipped', async () => {
    // An instance that answers every try 503, as one whose Redis is down.
    let tries = 0;
    const down = createServer((_req, res) => {
      tries++;
      res.writeHead(503, { 'content-type': 'application/problem+json' });
      res.end(
        JSON.stringify({ type: '/problems/redis-unavailable', title: 'Redis unavailable', status: 503 }),
      );
    });
    const url = await listen(down);
    try {
      for (const wait of [Number.POSITIVE_INFINITY, 2 ** 31]) {
        tries = 0;
        const ac = new AbortController();
        const c = p.client(WS, { url, retries: 3, onRetry: () => wait });
        const call = failure(c.getStats({ signal: ac.signal }));
        await new Promise((r) => setTimeout(r, 300));
        ac.abort();
        expect(await call).toMatchObject({ status: 'network', detail: 'aborted' });
        expect(tries).toBe(1);
      }
    } finally {
      await new Promise<void>((resolve) => down.close(() => resolve()));
    }
  });
});
