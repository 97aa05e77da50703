/**
 * A live feed's upgrade with both an API key (`Authorization`) and a ticket (`?ticket=`): the key
 * was taken and the ticket left unused, a one-time credential standing in a URL (a log, a proxy's)
 * that could still open a feed for 30 s. One credential per request (RFC 6750, section 2): a 400
 * naming `ticket`, nothing opened, and the ticket not spent (it opens the feed alone).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { inProcessApi } from '../support/api.ts';
import { rawHttp, rawRequest as request } from '../support/raw-http.ts';

const WS = 'ticket-edges-2';
const api = inProcessApi([WS], { env: { AUTH: 'on' } });
let key = '';
beforeAll(async () => {
  key = (await createApiKey(api.running.redis, { workspace: WS, role: 'admin', name: 'both' })).key;
});

const port = () => (api.running.api!.server.address() as { port: number }).port;
const upgrade = (query: string, headers: string[]) =>
  rawHttp(
    port(),
    request('GET', `/v1/workspaces/${WS}/events/live?${query}`, [
      ...headers,
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13',
    ]).replace('Connection: close\r\n', ''),
    800,
  );

describe('an upgrade with a key and a ticket', () => {
  it('is a 400 naming ticket; the ticket is not spent', async () => {
    const res = await fetch(`${api.running.url}/v1/workspaces/${WS}/ws-tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}` },
    });
    expect(res.status).toBe(201);
    const { ticket } = (await res.json()) as { ticket: string };
    const both = await upgrade(`ticket=${ticket}`, [`Authorization: Bearer ${key}`]);
    expect(both.status, both.body).toBe(400);
    expect(JSON.parse(both.body)).toMatchObject({
      type: '/problems/invalid-request',
      errors: [{ path: 'ticket', message: 'is given with an Authorization header: send one or the other' }],
    });
    expect(both.closed).toBe(true);
    // The ticket alone still opens the feed: it was not spent.
    const alone = await upgrade(`ticket=${ticket}`, []);
    expect(alone.status, alone.body).toBe(101);
    // And the key alone, as ever.
    expect((await upgrade('after=0-0', [`Authorization: Bearer ${key}`])).status).toBe(101);
  });
});
