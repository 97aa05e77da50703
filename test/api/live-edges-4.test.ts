/**
 * Edges of the live feed's query, against docs/API.md ("Refusals and closes": a `400` names the
 * query field; a ticket is for a client without `Authorization`). A query parameter given twice
 * arrives as a list: it was refused, but told the client something false. A ticket given twice
 * (no Authorization) was a `401` "No API key was given", which sent a client holding good tickets
 * to look for a key; a field given twice was a `400` saying what one value must be (`agent` "1..128
 * characters of ...", `after` "a stream position ...") of values that were each fine. Now both are a
 * `400` naming the field and saying it is given more than once; no ticket is spent. Also: the close
 * codes of a client that breaks the WebSocket protocol, as the docs list them.
 * One real instance with keys on, its own redis-server, real `ws` clients and raw sockets.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { inProcessApi } from '../support/api.ts';
import { type LiveOpen, tryLiveOpen } from '../support/live-open.ts';

const WS = 'live-edges-4';
const api = inProcessApi([WS], { env: { AUTH: 'on' } });

type Outcome = LiveOpen;

/** Opens the feed with `query` (and `headers`): `{open: true}` (then closed), or the refusal as answered. */
const tryOpen = (query: string, headers: Record<string, string> = {}): Promise<Outcome> =>
  tryLiveOpen(api.running.url!, `/v1/workspaces/${WS}/events/live?${query}`, headers);

async function newTicket(key: string): Promise<string> {
  const res = await fetch(`${api.running.url}/v1/workspaces/${WS}/ws-tickets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: '{}',
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { ticket: string }).ticket;
}

/** A masked client frame. */
function frame(opcode: number, payload: Buffer): Buffer {
  const mask = Buffer.from([1, 2, 3, 4]);
  const n = payload.length;
  const head =
    n < 126
      ? Buffer.from([0x80 | opcode, 0x80 | n])
      : Buffer.from([0x80 | opcode, 0x80 | 126, n >> 8, n & 255]);
  return Buffer.concat([head, mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))]);
}

/** Opens the feed on a raw socket, sends `send` once upgraded: the close code the server sends back (null: none in `waitMs`). */
function closeCodeFor(key: string, send: Buffer, waitMs = 2000): Promise<number | null> {
  return new Promise((resolve) => {
    const u = new URL(api.running.url!);
    const s = net.connect(Number(u.port), u.hostname);
    s.on('error', () => undefined);
    let got = Buffer.alloc(0);
    let upgraded = false;
    const done = (code: number | null) => {
      clearTimeout(timer);
      s.destroy();
      resolve(code);
    };
    const timer = setTimeout(() => done(null), waitMs);
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!upgraded) {
        upgraded = true;
        expect(got.subarray(0, 12).toString()).toBe('HTTP/1.1 101');
        s.write(send);
      }
      const rest = got.subarray(end + 4);
      if (rest.length >= 4 && rest[0] === 0x88) done(rest.readUInt16BE(2));
    });
    s.write(
      `GET /v1/workspaces/${WS}/events/live?heartbeat=0 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${key}\r\n\r\n`,
    );
  });
}

describe('the live feed, a query parameter given twice', () => {
  it('a ticket given twice with no Authorization is a 400 naming ticket, and spends neither ticket', async () => {
    const { key } = await createApiKey(api.running.redis, { workspace: WS, role: 'admin', name: 'twice' });
    const [t1, t2] = [await newTicket(key), await newTicket(key)];
    const r = await tryOpen(`ticket=${t1}&ticket=${t2}`);
    expect(r).toMatchObject({ status: 400, body: { type: '/problems/invalid-request' } });
    const errors = (r as { body: { errors: unknown } }).body.errors;
    expect(errors).toEqual([{ path: 'ticket', message: 'is given 2 times: give it once' }]);
    // Neither was spent: each opens a feed once, as it was bought to.
    expect(await tryOpen(`ticket=${t1}`)).toEqual({ open: true });
    expect(await tryOpen(`ticket=${t2}`)).toEqual({ open: true });
    expect(await tryOpen(`ticket=${t1}`)).toMatchObject({ status: 401 });
  });

  it('after, type, agent, heartbeat or ticket given twice is a 400 saying so, not what one value must be', async () => {
    const { key } = await createApiKey(api.running.redis, { workspace: WS, role: 'admin', name: 'fields' });
    const auth = { authorization: `Bearer ${key}` };
    for (const [q, named] of [
      ['after=0-0&after=0-0', 'after'],
      ['type=AgentRegistered&type=AgentUpdated', 'type'],
      ['agent=a1&agent=a1', 'agent'],
      ['heartbeat=0&heartbeat=1', 'heartbeat'],
      ['ticket=x&ticket=y', 'ticket'],
      ['agent=a1&agent=a2&agent=a3', 'agent'],
    ] as const) {
      const r = await tryOpen(q, auth);
      expect(r, q).toMatchObject({ status: 400, body: { type: '/problems/invalid-request' } });
      const n = q.split('&').length;
      expect((r as { body: { errors: unknown } }).body.errors, q).toEqual([
        { path: named, message: `is given ${n} times: give it once` },
      ]);
    }
    // One bad value is still told what a value must be; an unknown field given twice is still unknown.
    const bad = await tryOpen('agent=..', auth);
    expect((bad as { body: { errors: { message: string }[] } }).body.errors[0]!.message).toMatch(/^1\.\.128/);
    const unknown = await tryOpen('foo=1&foo=2', auth);
    expect((unknown as { body: { errors: unknown } }).body.errors).toEqual([
      { path: 'foo', message: 'is not a known field' },
    ]);
    // The agent key's own check leaves a doubled agent= to this 400 (not a 403).
    const agentKey = await createApiKey(api.running.redis, {
      workspace: WS,
      role: 'agent',
      agentId: 'a1',
      name: 'agent',
    });
    const own = await tryOpen('agent=a1&agent=a1', { authorization: `Bearer ${agentKey.key}` });
    expect(own).toMatchObject({
      status: 400,
      body: { errors: [{ path: 'agent', message: 'is given 2 times: give it once' }] },
    });
  });
});

describe('the live feed, a client that breaks the WebSocket protocol', () => {
  it('is closed with the code the docs name: 1002 a frame the protocol forbids, 1007 text not UTF-8, 1009 over 4,096 bytes', async () => {
    const { key } = await createApiKey(api.running.redis, { workspace: WS, role: 'admin', name: 'frames' });
    expect(await closeCodeFor(key, frame(9, Buffer.alloc(126, 65))), 'a ping of 126 bytes').toBe(1002);
    expect(await closeCodeFor(key, frame(3, Buffer.from('x'))), 'a reserved opcode').toBe(1002);
    expect(await closeCodeFor(key, frame(8, Buffer.from([0x03, 0xed]))), 'close code 1005').toBe(1002);
    expect(await closeCodeFor(key, frame(1, Buffer.from([0xff, 0xfe]))), 'text not UTF-8').toBe(1007);
    expect(await closeCodeFor(key, frame(1, Buffer.alloc(4097, 65))), '4,097 bytes').toBe(1009);
    // What the protocol allows is ignored, the feed stays open: text, binary, 4,096 bytes, a 125-byte ping.
    for (const ok of [
      frame(1, Buffer.from('hello')),
      frame(2, Buffer.from([0, 255])),
      frame(1, Buffer.alloc(4096, 65)),
      frame(9, Buffer.alloc(125, 65)),
    ])
      expect(await closeCodeFor(key, ok, 300)).toBeNull();
    expect((await fetch(`${api.running.url}/health`)).status).toBe(200);
  });
});
