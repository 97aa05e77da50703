/**
 * A live feed's upgrade with a ticket that is not known (expired, used, its key revoked, another
 * workspace's) is a 401 whose advice is the one a ticket holder can take: a new ticket for each
 * upgrade. It said "Send Authorization: Bearer <API key>", which the client using tickets (a
 * browser) cannot send on a WebSocket.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';
import { rawHttp, rawRequest as request } from '../support/raw-http.ts';

const WS = 'ticket-edges-1';
const api = inProcessApi([WS], { env: { AUTH: 'on' } });

describe('an upgrade with a ticket that is not known', () => {
  it('is a 401 saying to take a new ticket, not to send a header', async () => {
    const a = await rawHttp(
      (api.running.api!.server.address() as { port: number }).port,
      request('GET', `/v1/workspaces/${WS}/events/live?ticket=not-a-ticket-0123456789`, [
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
      ]).replace('Connection: close\r\n', ''),
    );
    expect(a.status, a.body).toBe(401);
    const body = JSON.parse(a.body) as { type: string; detail: string };
    expect(body.type).toBe('/problems/unauthorized');
    expect(body.detail).toMatch(
      /^The ticket is not known: .*Take a new ticket for each upgrade \(POST \/ws-tickets/,
    );
    expect(body.detail).not.toMatch(/\)\. Send Authorization/);
  });

  it('a request with no key at all still says to send one', async () => {
    const a = await rawHttp(
      (api.running.api!.server.address() as { port: number }).port,
      request('GET', `/v1/workspaces/${WS}/agents`),
    );
    expect(a.status, a.body).toBe(401);
    expect((JSON.parse(a.body) as { detail: string }).detail).toBe(
      'No API key was given. Send Authorization: Bearer <API key>.',
    );
  });
});
