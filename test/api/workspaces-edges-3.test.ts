/**
 * The live feeds and /metrics of workspaces whose names differ only in case (`Acme`, `acme`) or look
 * alike (`a-b`, `a_b`): each feed carries its own workspace's events only, and /metrics reports each
 * workspace's figures under its own name.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { inProcessApi, type Json } from '../support/api.ts';
import { sleep, waitFor } from '../support/wait.ts';

const NAMES = ['Acme', 'acme', 'a-b', 'a_b'];
const api = inProcessApi(NAMES);

function feed(ws: string): { events: Json[]; socket: WebSocket; open: Promise<void> } {
  const url = `${String(api.running.url).replace(/^http/, 'ws')}/v1/workspaces/${ws}/events/live?after=0-0`;
  const socket = new WebSocket(url);
  socket.on('error', () => undefined);
  const events: Json[] = [];
  socket.on('message', (m) => {
    const e = JSON.parse(String(m)) as Json;
    // Heartbeats carry no workspace; the events do.
    if (!('heartbeat' in e)) events.push(e);
  });
  const open = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade ${res.statusCode}`)));
  });
  return { events, socket, open };
}

describe('live feeds and metrics of lookalike workspaces', () => {
  it('each carries its own workspace only', async () => {
    const feeds = NAMES.map((ws) => ({ ws, ...feed(ws) }));
    await Promise.all(feeds.map((f) => f.open));
    for (const [i, ws] of NAMES.entries())
      for (let n = 0; n <= i; n++) {
        await api.ok('POST', ws, '/agents', { id: `ag-${ws}-${n}`, skills: ['x'] });
        await api.ok('POST', ws, '/contacts', { id: `c-${ws}-${n}`, skills: ['y'] });
      }
    for (const [i, f] of feeds.entries())
      await waitFor(
        () => `${f.ws}'s feed to carry its ${2 * (i + 1)} events, got ${JSON.stringify(f.events)}`,
        async () => f.events.length >= 2 * (i + 1),
        { timeoutMs: 5000, everyMs: 20 },
      );
    await sleep(200);
    for (const [i, f] of feeds.entries()) {
      expect(f.events.length, `${f.ws}: ${JSON.stringify(f.events)}`).toBe(2 * (i + 1));
      for (const e of f.events) expect(e.workspace, JSON.stringify(e)).toBe(f.ws);
      f.socket.close();
    }
    const metrics = await api.running.api!.inject({ method: 'GET', url: '/metrics' });
    for (const [i, ws] of NAMES.entries()) {
      expect(metrics.body).toContain(`switchboard_workspace_queued_contacts{workspace="${ws}"} ${i + 1}`);
      expect(metrics.body).toContain(
        `switchboard_commands_total{workspace="${ws}",type="RegisterAgent",status="201"} ${i + 1}`,
      );
    }
  });
});
