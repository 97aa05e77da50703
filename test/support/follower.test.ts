/**
 * The failover suites' AssignmentFollower keeps the client's heartbeat rule (docs/API.md): a feed
 * socket that hears nothing for twice the server's heartbeat interval is on a dead path and is
 * opened again from the last event's position. The server here is a plain WebSocket server on
 * loopback: its first socket sends one event and one heartbeat naming a 200 ms interval, then
 * goes silent without closing (what a connection through an HAProxy the VIP has left does); the
 * second is asked for `after=` that event and sends the next.
 */
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { AssignmentFollower } from './audit.ts';
import { waitFor } from './wait.ts';

const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
const listening = new Promise((resolve) => server.once('listening', resolve));
afterAll(
  () =>
    new Promise<void>((resolve) => {
      for (const c of server.clients) c.terminate();
      server.close(() => resolve());
    }),
);

function envelope(position: string) {
  return JSON.stringify({ position, type: 'AssignmentMade', data: {} });
}

describe('AssignmentFollower', () => {
  it('drops a socket silent for two heartbeat intervals and resumes after the last event', async () => {
    const urls: string[] = [];
    server.on('connection', (socket, req) => {
      urls.push(req.url ?? '');
      if (urls.length === 1) {
        socket.send(envelope('1-0'));
        socket.send(JSON.stringify({ heartbeat: { after: '1-0', everyMs: 200 } }));
        return; // silent from here on, and never closed
      }
      socket.send(envelope('2-0'));
    });
    await listening;
    const { port } = server.address() as AddressInfo;
    const seen: string[] = [];
    const follower = new AssignmentFollower([`http://127.0.0.1:${port}`], 'w', (e) => seen.push(e.position));
    const started = Date.now();
    await follower.start();
    try {
      await waitFor('the second event', async () => seen.length === 2, { timeoutMs: 5_000, everyMs: 20 });
      expect(seen).toEqual(['1-0', '2-0']);
      expect(follower.deadPaths).toBe(1);
      expect(follower.duplicates).toBe(0);
      expect(urls[1]).toMatch(/after=1-0$/);
      // Two intervals of 200 ms, the 250-ms watch and the 100-ms reconnect delay; not 10 s.
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      follower.stop();
    }
  });
});
