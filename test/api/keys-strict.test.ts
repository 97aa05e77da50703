/**
 * The key routes refuse what they do not read, as every other route does (docs/API.md: unknown
 * fields are a 400 naming them, and nothing is changed): a body field other than `after` on POST /ws-tickets, a body on
 * DELETE /keys/{keyId}, a query parameter on any of them. They were taken and ignored: a ticket
 * was issued, a key revoked, for a request that said something else.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';

const WS = 'keys-strict';
const api = inProcessApi([WS]);

describe('the key routes and what they do not read', () => {
  it('a body or an unknown query parameter is a 400 naming it', async () => {
    const paths = async (method: 'GET' | 'POST' | 'DELETE', path: string, payload?: unknown) =>
      (
        (await api.problem(method, WS, path, payload, 400, 'invalid-request')).errors as { path: string }[]
      ).map((e) => e.path);
    // POST /ws-tickets reads `after` (ticket-after.test.ts): any other field is named.
    expect(await paths('POST', '/ws-tickets', { agent: 'a1' })).toEqual(['agent']);
    expect(await paths('POST', '/ws-tickets?ttl=60', undefined)).toEqual(['ttl']);
    expect(await paths('DELETE', '/keys/0123456789abcdef', { reason: 'x' })).toEqual(['(body)']);
    expect(await paths('GET', '/keys?role=admin')).toEqual(['role']);
    expect(await paths('GET', '/keys/me?agent=a1')).toEqual(['agent']);
    expect(await paths('POST', '/keys?role=admin', { role: 'admin' })).toEqual(['role']);
    // What they do read is answered as before.
    expect((await api.call('POST', `/v1/workspaces/${WS}/ws-tickets`)).status).toBe(201);
    expect((await api.call('POST', `/v1/workspaces/${WS}/ws-tickets`, {})).status).toBe(201);
    expect((await api.call('GET', `/v1/workspaces/${WS}/keys`)).status).toBe(200);
    expect((await api.call('DELETE', `/v1/workspaces/${WS}/keys/0123456789abcdef`)).status).toBe(404);
  });
});
