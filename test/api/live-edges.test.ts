/**
 * Edges of the live feed: a filtered feed's replay holds (and counts toward LIVE_MAX_HELD_EVENTS)
 * only the live events it would send; an upgrade refused before it happens says `Connection: close`
 * (the server closes that socket once answered).
 */
import { STATUS_CODES } from 'node:http';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = { held: 'live-edges-held', refused: 'live-edges-refused', gate: 'live-edges-gate' } as const;
// The API role alone: the events are written into the stream directly (the feed reads entries,
// whatever made them), and no projector shares the instance's connection.
const api = inProcessApi(Object.values(WS), { env: { ROLES: 'api', LIVE_MAX_HELD_EVENTS: '5' } });

function liveUrl(ws: string, query: string): string {
  return `${api.running.url!.replace(/^http/, 'ws')}/v1/workspaces/${ws}/events/live?${query}`;
}

/** Appends one event of `type` with `data` to the workspace's stream: its position. */
async function append(
  client: ReturnType<typeof api.server.client>,
  ws: string,
  type: string,
  data: Record<string, unknown>,
): Promise<string> {
  const event = JSON.stringify({ type, workspace: ws, at: new Date().toISOString(), data });
  return (await client.xadd(workspaceKeys(ws).events, '*', 'type', type, 'event', event))!;
}

describe('a filtered feed resumed with after=', () => {
  it('holds during its replay only the live events its filter keeps: others do not close it', async () => {
    const ws = WS.held;
    const client = api.server.client();
    try {
      const first = await append(client, ws, 'AgentRegistered', { id: 'a1', skills: ['k'] });
      // The workspace's tail starts (on the instance's shared connection) before that is held up.
      const warm = new WebSocket(liveUrl(ws, 'heartbeat=0'));
      await new Promise((resolve, reject) => warm.once('open', resolve).once('error', reject));
      warm.close();

      // The instance's shared connection waits on a read of a stream nobody writes to, so the
      // replay's read queues behind it, while the tail (a connection of its own) goes on.
      const gate = workspaceKeys(WS.gate).events;
      const held = api.running.redis.xread('BLOCK', 0, 'STREAMS', gate, '$').catch(() => undefined);
      await sleep(50);
      const socket = new WebSocket(liveUrl(ws, `after=0-0&type=AgentRegistered&heartbeat=0`));
      const got: { position: string; type: string }[] = [];
      socket.on('message', (m) => got.push(JSON.parse(String(m)) as { position: string; type: string }));
      let closed: { code: number; reason: string } | undefined;
      socket.on('close', (code, reason) => {
        closed = { code, reason: String(reason) };
      });
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      await sleep(50); // the route subscribes right after the upgrade

      // Ten live events the filter drops (more than the 5 held at most), then one it keeps.
      for (let i = 0; i < 10; i++) await append(client, ws, 'ContactQueued', { id: `c${i}` });
      const kept = await append(client, ws, 'AgentRegistered', { id: 'a2', skills: ['k'] });
      const tail = await api.running.api!.deps.tails.get(ws);
      await waitFor('the tail to hand the events on', () => tail.eventPosition === kept, { everyMs: 10 });
      await client.xadd(gate, '*', 'open', '1'); // the replay goes on
      await held;

      await waitFor('the kept event, or a close', () => closed !== undefined || got.length === 2, {
        everyMs: 10,
      });
      expect(closed).toBeUndefined();
      expect(got.map((e) => e.position)).toEqual([first, kept]);
      socket.close();
    } finally {
      client.disconnect();
    }
  });
});

describe('an upgrade refused before it happens', () => {
  /** A raw WebSocket handshake for `path`: the answer's status line, headers and body, and whether the server closed the socket. */
  async function handshake(path: string): Promise<{ head: string; body: string; ended: boolean }> {
    const { port } = new URL(api.running.url!);
    const socket = connect(Number(port), '127.0.0.1');
    socket.on('error', () => undefined);
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += String(c);
    });
    const ended = new Promise<boolean>((resolve) => {
      socket.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 2000).unref();
    });
    socket.write(
      [
        `GET ${path} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        '',
        '',
      ].join('\r\n'),
    );
    const closed = await ended;
    socket.destroy();
    const at = text.indexOf('\r\n\r\n');
    return { head: text.slice(0, at), body: text.slice(at + 4), ended: closed };
  }

  it('says Connection: close on a 400 (a bad query), a 409 (after= past the last event) and a 404 (no such route), then closes', async () => {
    const cases: [string, number, string][] = [
      [`/v1/workspaces/${WS.refused}/events/live?type=Nope`, 400, '/problems/invalid-request'],
      [`/v1/workspaces/${WS.refused}/events/live?after=99-0`, 409, '/problems/position-ahead'],
      [`/v1/workspaces/${WS.refused}/events/nothing`, 404, '/problems/no-route'],
    ];
    const connection: string[] = [];
    for (const [path, status, type] of cases) {
      const answer = await handshake(path);
      expect(answer.head.split('\r\n')[0], path).toBe(`HTTP/1.1 ${status} ${STATUS_CODES[status]}`);
      connection.push(`${status} ${/^connection: *(.*)$/im.exec(answer.head)?.[1]}`);
      expect(answer.head, path).toMatch(/^content-type: application\/problem\+json/im);
      expect(JSON.parse(answer.body)).toMatchObject({ status, type });
      expect(answer.ended, `${path}: the server closed the socket`).toBe(true);
    }
    expect(connection).toEqual(['400 close', '409 close', '404 close']);
  });
});
