/**
 * A server that accepts the live feed's socket and closes it at once, with nothing sent (a
 * misbehaving proxy, an instance failing right after the upgrade): each open used to reset the
 * backoff, so the subscription reconnected every `backoffMs` for ever. The backoff now starts
 * again only once the server has sent something: here it doubles up to `maxBackoffMs`.
 * A server of the test's own stands in for Switchboard, to do what Switchboard does not.
 */
import type { AddressInfo } from 'node:net';
import { SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { sleep, waitFor } from '../support/wait.ts';

let server: WebSocketServer;
let port: number;
const opened: number[] = [];
/** Whether the server sends a heartbeat before it closes. */
let speak = false;
/** The close the server sends. */
let close: [number, string] = [1001, 'closing at once'];

beforeAll(async () => {
  server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  port = (server.address() as AddressInfo).port;
  server.on('connection', (socket) => {
    opened.push(Date.now());
    if (speak) socket.send(JSON.stringify({ heartbeat: { after: '5-0', everyMs: 10_000 } }));
    socket.close(...close);
  });
});

afterAll(async () => {
  for (const c of server?.clients ?? []) c.terminate();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

const subscribeFor = async (ms: number) => {
  opened.length = 0;
  const delays: (number | null)[] = [];
  const client = new SwitchboardClient({ url: `http://127.0.0.1:${port}`, workspace: 'w', retries: 0 });
  const sub = client.subscribe(
    { backoffMs: 50, maxBackoffMs: 400, onError: () => {}, onClose: (c) => delays.push(c.retryInMs) },
    () => {},
  );
  await sub.ready;
  await sleep(ms);
  sub.close();
  await sub.ended;
  return delays;
};

describe('the live subscription against a server that closes each socket at once', () => {
  it('backs off, doubling, when nothing was heard on the sockets that opened', async () => {
    const delays = await subscribeFor(1_500);
    // 50, 100, 200, 400, 400, ...: 1.5 s holds about six tries, not thirty.
    expect(delays.slice(0, 4)).toEqual([50, 100, 200, 400]);
    expect(opened.length).toBeLessThanOrEqual(8);
  });

  it('starts the backoff again once the server sent something', async () => {
    speak = true;
    try {
      const delays = await subscribeFor(600);
      await waitFor('a few reconnects', () => delays.length >= 3, { timeoutMs: 5_000 });
      expect(delays.slice(0, 3)).toEqual([50, 50, 50]);
    } finally {
      speak = false;
    }
  });

  it('goes on with the backoff when each socket is closed with 1011 before any event', async () => {
    // Switchboard's feed: the heartbeat at the open, then a replay that fails every time (an
    // archive folder the instance cannot read): before, the heartbeat reset the backoff and the
    // subscription reconnected every backoffMs for ever.
    speak = true;
    close = [1011, 'replay failed; reconnect with after=5-0'];
    try {
      const delays = await subscribeFor(1_500);
      expect(delays.slice(0, 4)).toEqual([50, 100, 200, 400]);
    } finally {
      speak = false;
      close = [1001, 'closing at once'];
    }
  });
});
