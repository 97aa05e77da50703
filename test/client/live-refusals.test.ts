/**
 * The live subscription's refusals and failures as a user meets them: a refused upgrade
 * typed like any other problem (position-ahead with lastPosition, forbidden), and failures after
 * the first open told to onError (the subscription's documented failure channel), and the wait a
 * refusal asks for (Retry-After) kept before the next try. A failing handler, async ones too, and
 * a failing onOpen or onClose, is told to onError as well.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type EventEnvelope, SwitchboardError } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { freePort } from '../../src/topology/redis-server.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { type ClientFixture, log, startClientFixture } from './fixture.ts';

const WS = {
  ahead: 'client-live-a',
  lost: 'client-live-b',
  down: 'client-live-c',
  agent: 'client-live-d',
  capped: 'client-live-e',
  pageAhead: 'client-live-h',
  handler: 'client-live-f',
  callbacks: 'client-live-g',
  moved: 'client-live-i',
};
/**
 * A WebSocket as a page has one: no headers, and a refused upgrade seen only as a failed socket
 * (no status, no problem), which is what `ws` shows when nobody reads its `unexpected-response`.
 */
class PageWebSocket {
  onopen: ((e: unknown) => void) | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: ((e: { message?: string }) => void) | null = null;
  readonly #s: WebSocket;
  constructor(url: string) {
    this.#s = new WebSocket(url);
    this.#s.onopen = (e) => this.onopen?.(e);
    this.#s.onmessage = (e) => this.onmessage?.(e);
    this.#s.onclose = (e) => this.onclose?.(e);
    this.#s.onerror = (e) => this.onerror?.(e);
  }
  get readyState(): number {
    return this.#s.readyState;
  }
  close(code?: number, reason?: string): void {
    this.#s.close(code, reason);
  }
}

let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture(Object.values(WS));
}, 30_000);
afterAll(async () => p?.stop());

describe('the live subscription', () => {
  // Node's WebSocket reads the refused upgrade's problem; a page's cannot, and its ticket request
  // carries the position instead.
  it.each([
    ['the key on the upgrade (Node)', WS.ahead, {}],
    ["tickets (a page's WebSocket)", WS.pageAhead, { WebSocket: PageWebSocket }],
  ] as const)(
    'an after= past the last event, with %s: ready rejects with the typed position-ahead problem and its lastPosition',
    async (_how, ws, more) => {
      const c = p.client(ws, more);
      await c.registerAgent({ id: 'a1', skills: ['s'] });
      const last = (await c.listEvents()).events.at(-1)!.position;
      const errors: Error[] = [];
      const sub = c.subscribe({ after: '99999999999999-0', onError: (e) => errors.push(e) }, () => {});
      const err = await sub.ready.then(
        () => undefined,
        (e: unknown) => e as SwitchboardError,
      );
      await sub.ended;
      expect(err).toBeInstanceOf(SwitchboardError);
      expect(err).toMatchObject({ status: 409, type: '/problems/position-ahead' });
      expect(err!.problem?.lastPosition).toBe(last);
      expect(errors).toHaveLength(1);
    },
  );

  it("an agent key's feed for another agent: a typed 403 forbidden", async () => {
    const c = p.client(WS.agent);
    await c.registerAgent({ id: 'me', skills: ['s'] });
    const key = (await c.createKey({ role: 'agent', agentId: 'me' })).key;
    const sub = c.with({ key }).subscribe({ agent: 'someone-else' }, () => {});
    const err = await sub.ready.then(
      () => undefined,
      (e: unknown) => e as SwitchboardError,
    );
    expect(err).toMatchObject({ status: 403, type: '/problems/forbidden' });
  });

  it('a refusal met on a reconnect (position-ahead: the events it had were lost) is told to onError', async () => {
    const c = p.client(WS.lost);
    await c.registerAgent({ id: 'l1', skills: ['s'] });
    const errors: Error[] = [];
    const got: EventEnvelope[] = [];
    const sub = c.subscribe({ after: '0-0', onError: (e) => errors.push(e) }, (e) => got.push(e));
    try {
      await sub.ready;
      await waitFor('the registration', () => got.length >= 1);
      // Redis loses the event stream (a failover to a replica that had not got it), then the socket drops.
      await p.main.redis.del(workspaceKeys(WS.lost).events);
      for (const s of p.main.api!.websocketServer.clients) s.terminate();
      await waitFor('the refusal told to onError', () => errors.length >= 1, { timeoutMs: 5_000 });
      expect(errors[0]).toBeInstanceOf(SwitchboardError);
      expect(errors[0]).toMatchObject({ status: 409, type: '/problems/position-ahead' });
    } finally {
      sub.close();
    }
  });

  it('the socket failures of reconnects while the instance is down are told to onError', async () => {
    const port = await freePort();
    const apiEnv = p.env({ ROLES: 'api', PORT: String(port) });
    let api = await startSwitchboard(loadConfig(apiEnv), log);
    const c = p.client(WS.down, { url: api.url! });
    const errors: Error[] = [];
    const closes: { code: number; retryInMs: number | null }[] = [];
    const sub = c.subscribe(
      { onError: (e) => errors.push(e), onClose: (i) => closes.push(i), maxBackoffMs: 300 },
      () => {},
    );
    try {
      await sub.ready;
      await api.stop();
      await waitFor('two reconnects failed', () => closes.length >= 3, { timeoutMs: 5_000 });
      expect(errors.length).toBeGreaterThanOrEqual(1);
      expect(errors.map((e) => e.message).join('\n')).toMatch(/ECONNREFUSED/);
      api = await startSwitchboard(loadConfig(apiEnv), log);
      await waitFor('open again', async () => {
        await sleep(50);
        return closes.length > 0 && sub.reconnects > 0 && p.main !== undefined;
      });
    } finally {
      sub.close();
      await api.stop();
    }
  });

  it("a refusal's Retry-After is the least wait before the next try (too-many-websockets: 5 s)", async () => {
    // One WebSocket per key: a second subscription of the key is refused with 429 and Retry-After: 5.
    const api = await startSwitchboard(loadConfig(p.env({ ROLES: 'api', WS_MAX_PER_KEY: '1' })), log);
    const c = p.client(WS.capped, { url: api.url! });
    const first = c.subscribe({}, () => {});
    const errors: Error[] = [];
    const closes: { retryInMs: number | null }[] = [];
    const second = c.subscribe(
      { retryFirst: true, onError: (e) => errors.push(e), onClose: (i) => closes.push(i) },
      () => {},
    );
    try {
      await first.ready;
      await waitFor('the refusal', () => closes.length >= 1, { timeoutMs: 5_000 });
      expect(errors[0]).toMatchObject({ status: 429, type: '/problems/too-many-websockets' });
      // It tried again after 250 ms, 500 ms, 1 s, ...: each try refused again.
      expect(closes[0]!.retryInMs).toBeGreaterThanOrEqual(5_000);
    } finally {
      second.close();
      first.close();
      await api.stop();
    }
  });

  it("an async handler's rejection is told to onError, not left unhandled (which ends a Node process)", async () => {
    const c = p.client(WS.handler);
    await c.registerAgent({ id: 'h1', skills: ['s'] });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const errors: Error[] = [];
    const sub = c.subscribe({ after: '0-0', onError: (e) => errors.push(e) }, async (e) => {
      await sleep(1);
      throw new Error(`could not store ${e.position}`);
    });
    try {
      await sub.ready;
      await waitFor('the failure told to onError', () => errors.length >= 1, { timeoutMs: 5_000 });
      expect(errors[0]!.message).toMatch(/^could not store \d+-\d+$/);
      await sleep(50);
      expect(unhandled).toEqual([]);
    } finally {
      sub.close();
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('an onOpen or onClose that throws is told to onError; the subscription goes on', async () => {
    const c = p.client(WS.callbacks);
    await c.registerAgent({ id: 'g1', skills: ['s'] });
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    const errors: Error[] = [];
    const got: EventEnvelope[] = [];
    const sub = c.subscribe(
      {
        after: '0-0',
        onError: (e) => errors.push(e),
        onOpen: () => {
          throw new Error('onOpen failed');
        },
        onClose: () => {
          throw new Error('onClose failed');
        },
      },
      (e) => got.push(e),
    );
    try {
      await sub.ready;
      await waitFor('the registration', () => got.length >= 1);
      for (const s of p.main.api!.websocketServer.clients) s.terminate();
      await waitFor('open again', () => sub.reconnects >= 1 && errors.length >= 3, { timeoutMs: 5_000 });
      await c.registerAgent({ id: 'g2', skills: ['s'] });
      await waitFor('the next event', () => got.length >= 2, { timeoutMs: 5_000 });
      const told = errors.map((e) => e.message).filter((m) => /^on(Open|Close) failed$/.test(m));
      expect(told).toEqual(['onOpen failed', 'onClose failed', 'onOpen failed']);
      expect(uncaught).toEqual([]);
    } finally {
      sub.close();
      process.off('uncaughtException', onUncaught);
    }
  });
});

describe('a live subscription whose upgrade is redirected', () => {
  it('ends at the first 3xx, naming the Location, instead of trying the same URL for ever', async () => {
    // A proxy (or a server moved) answering the upgrade with a redirect: `ws` does not follow it,
    // and a browser's WebSocket cannot; another try of the same URL meets the same answer.
    let upgrades = 0;
    const moved = http.createServer((_req, res) => res.writeHead(404).end());
    moved.on('upgrade', (_req, socket) => {
      upgrades++;
      // The client may reset the connection once it has read the answer.
      socket.on('error', () => undefined);
      socket.end(
        'HTTP/1.1 301 Moved Permanently\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n',
      );
    });
    await new Promise<void>((r) => moved.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (moved.address() as AddressInfo).port;
      const c = p.client(WS.moved).with({ url: `http://127.0.0.1:${port}` });
      const errors: Error[] = [];
      const sub = c.subscribe({ retryFirst: true, backoffMs: 50, onError: (e) => errors.push(e) }, () => {});
      const err = await Promise.race([
        sub.ready.then(
          () => undefined,
          (e: unknown) => e as SwitchboardError,
        ),
        sleep(1500).then(() => new Error(`still trying after 1.5 s: ${upgrades} upgrades`)),
      ]);
      sub.close();
      expect(err).toBeInstanceOf(SwitchboardError);
      expect(err).toMatchObject({ status: 301 });
      expect((err as SwitchboardError).detail).toContain('http://127.0.0.1:1/elsewhere');
      expect(upgrades).toBe(1);
    } finally {
      moved.closeAllConnections();
      await new Promise<void>((r) => moved.close(() => r()));
    }
  });
});
