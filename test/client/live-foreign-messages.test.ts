/**
 * Messages on the live feed that are JSON but not an object (a number, a string, null, a list), or
 * an object whose `position` is no stream position, as a proxy or a foreign server in the path
 * might send: the subscription skips them (none becomes the position it resumes from) and goes on,
 * and nothing is thrown from the socket's event (an uncaught exception would end a Node process).
 * A server of the test's own stands in for Switchboard here, to send what Switchboard never does.
 */
import type { AddressInfo } from 'node:net';
import { type EventEnvelope, SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { waitFor } from '../support/wait.ts';

let server: WebSocketServer;
let port: number;

beforeAll(async () => {
  server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  port = (server.address() as AddressInfo).port;
  server.on('connection', (socket) => {
    for (const m of [
      '5',
      '"text"',
      'null',
      '[1,2]',
      'true',
      '{"heartbeat":null}',
      // An object with a position that is no stream position (`<ms>-<seq>`).
      '{"position":"not-a-position","type":"AgentRegistered"}',
      '{"position":"7","type":"AgentRegistered"}',
    ])
      socket.send(m);
    socket.send(JSON.stringify({ heartbeat: { after: '5-0', everyMs: 10_000 } }));
    socket.send(
      JSON.stringify({
        position: '6-0',
        type: 'AgentRegistered',
        at: new Date().toISOString(),
        workspace: 'w',
        data: { id: 'a1' },
      }),
    );
  });
});

afterAll(async () => {
  for (const c of server?.clients ?? []) c.terminate();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

describe('the live subscription', () => {
  it('skips JSON messages that are not objects or have no stream position, and delivers the event after them', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    const errors: Error[] = [];
    const got: EventEnvelope[] = [];
    const client = new SwitchboardClient({ url: `http://127.0.0.1:${port}`, workspace: 'w', retries: 0 });
    const sub = client.subscribe({ onError: (e) => errors.push(e) }, (e) => got.push(e));
    try {
      await sub.ready;
      await waitFor('the event', () => got.length === 1, { timeoutMs: 5_000, everyMs: 10 });
      expect(got[0]!.position).toBe('6-0');
      expect(sub.position).toBe('6-0');
      expect(errors).toEqual([]);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      sub.close();
      await sub.ended;
    }
  });
});
