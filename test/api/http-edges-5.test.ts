/**
 * A `#` in the request target, against a real Switchboard (in process, real Redis, raw sockets:
 * fetch and inject drop a fragment before sending). A fragment is never part of an HTTP request
 * (RFC 9112, section 3.2: origin-form is a path and an optional query), but an id put into a URL
 * unencoded sends one. The router took `#` for the start of the query: `GET /agents/a1#x` was a 400
 * naming a query parameter `x` the client never sent, `GET /events?limit=2#x` one saying `limit`
 * must be an integer, and `GET /events#limit=1` was served as `?limit=1`. It is a 400
 * `/problems/invalid-url` naming the request target, whatever the route (an upgrade too), and
 * nothing is appended.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';
import { type RawAnswer, rawHttp, rawRequest as request } from '../support/raw-http.ts';

const WS = 'http-edges-5';
const api = inProcessApi([WS]);
const B = `/v1/workspaces/${WS}`;

/** One request on its own connection to this instance (test/support/raw-http.ts). */
const raw = (text: string) => rawHttp((api.running.api!.server.address() as { port: number }).port, text);

const commands = () => api.running.redis.xlen(workspaceKeys(WS).commands);

function expectFragmentRefused(a: RawAnswer, what: string) {
  expect(a.status, `${what}: ${a.body}`).toBe(400);
  expect(a.headers['content-type'], what).toMatch(/^application\/problem\+json/);
  expect(a.headers['x-request-id'], what).toBeTruthy();
  const body = JSON.parse(a.body) as Record<string, unknown>;
  expect(body, what).toMatchObject({
    type: '/problems/invalid-url',
    status: 400,
    errors: [{ path: 'url' }],
  });
  expect(body.detail, what).toContain('%23');
}

describe('a "#" in the request target', () => {
  it('is a 400 invalid-url naming the request target, on queries and commands; nothing is appended', async () => {
    for (const id of ['a1', 'a2']) {
      const r = await api.call('POST', `${B}/agents`, { id, skills: ['s'] });
      expect(r.status).toBe(201);
    }
    const before = await commands();
    const contentType = ['Content-Type: application/json'];
    for (const [method, target, headers, body] of [
      ['GET', `${B}/agents/a1#x`, [], ''],
      ['GET', `${B}/events#limit=1`, [], ''],
      ['GET', `${B}/events?limit=2#x`, [], ''],
      ['GET', `${B}/stats#`, [], ''],
      ['GET', '/health#top', [], ''],
      ['GET', `/nope#x`, [], ''],
      ['POST', `${B}/agents#x`, contentType, JSON.stringify({ id: 'frag', skills: ['s'] })],
      ['POST', `${B}/agents/a#1/state`, contentType, JSON.stringify({ state: 'away' })],
      ['DELETE', `${B}/agents/a2#`, [], ''],
    ] as const) {
      expectFragmentRefused(await raw(request(method, target, headers, body)), `${method} ${target}`);
    }
    expect(await commands()).toBe(before);
    expect((await api.call('GET', `${B}/agents/a2`)).status).toBe(200);
    expect((await api.call('GET', `${B}/agents/frag`)).status).toBe(404);
  });

  it('is the same 400 for a WebSocket upgrade, and the connection is closed', async () => {
    const a = await raw(
      request('GET', `${B}/events/live#x`, [
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
      ]).replace('Connection: close\r\n', ''),
    );
    expectFragmentRefused(a, 'upgrade');
    expect(a.closed).toBe(true);
  });

  it('encoded as %23 it is data, not a fragment: in an id, the id is refused for it', async () => {
    // Ids take no "#" (docs/API.md): refused naming the id, as any character they do not take is.
    const a = await raw(request('GET', `${B}/agents/a%231`));
    expect(a.status).toBe(400);
    expect(JSON.parse(a.body)).toMatchObject({ type: '/problems/invalid-request', errors: [{ path: 'id' }] });
  });
});
