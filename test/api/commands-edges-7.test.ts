/**
 * Refusals caused by a part of the request name it in `errors` (docs/API.md, "Problem types"), as a
 * 400 does: an Idempotency-Key reused for another request (another body, another route) names the
 * header, and nothing is appended.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'cmd-edges-7';
const api = inProcessApi([WS]);
const B = `/v1/workspaces/${WS}`;

const streamLength = () => api.running.redis.xlen(workspaceKeys(WS).commands);

const send = async (method: 'POST' | 'PUT', path: string, key: string, payload?: unknown) => {
  const res = await api.running.api!.inject({
    method,
    url: `${B}${path}`,
    headers: { 'idempotency-key': key },
    ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
  });
  return { status: res.statusCode, type: String(res.headers['content-type']), body: res.json() };
};

describe('an Idempotency-Key reused for another request', () => {
  it('is a 422 naming Idempotency-Key in errors, for another body and for another route; nothing appended', async () => {
    expect((await send('POST', '/contacts', 'reused-1', { id: 'r1', skills: ['x'] })).status).toBe(201);
    const before = await streamLength();

    const otherBody = await send('POST', '/contacts', 'reused-1', { id: 'r2', skills: ['x'] });
    const otherRoute = await send('POST', '/contacts/r1/abandon', 'reused-1');
    const settings = await send('PUT', '/settings', 'reused-1', {});
    for (const r of [otherBody, otherRoute, settings]) {
      expect(r.status, JSON.stringify(r.body)).toBe(422);
      expect(r.type).toMatch(/^application\/problem\+json/);
      expect(r.body.type).toBe('/problems/idempotency-key-reused');
      const errors = (r.body.errors ?? []) as { path: string; message: string }[];
      expect(errors.map((e) => e.path)).toEqual(['Idempotency-Key']);
      expect(errors[0]!.message).toMatch(/new key/);
    }
    expect(await streamLength()).toBe(before);

    // The first request, sent again with its key, is still replayed.
    const again = await send('POST', '/contacts', 'reused-1', { id: 'r1', skills: ['x'] });
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ id: 'r1', state: 'queued' });
  });
});

describe('a position past the log, in a query parameter', () => {
  const named = async (path: string, field: string) => {
    const r = await api.call('GET', `${B}${path}`);
    expect(r.status, JSON.stringify(r.body)).toBe(409);
    expect(r.type).toMatch(/^application\/problem\+json/);
    expect(r.body.type).toBe('/problems/position-ahead');
    expect(r.body).toHaveProperty('lastPosition');
    const errors = (r.body.errors ?? []) as { path: string; message: string }[];
    expect(
      errors.map((e) => e.path),
      path,
    ).toEqual([field]);
    expect(errors[0]!.message).toMatch(/lastPosition/);
  };

  it('is a 409 position-ahead naming that parameter: minPosition of any query, after of GET /events, at of GET /state', async () => {
    await api.ok('POST', WS, '/agents', { id: 'ahead-1', skills: ['x'] });
    const far = '99999999999999-0';
    await named(`/agents/ahead-1?minPosition=${far}`, 'minPosition');
    await named(`/contacts/r1?minPosition=${far}`, 'minPosition');
    await named(`/stats?minPosition=${far}`, 'minPosition');
    await named(`/events?minPosition=${far}`, 'minPosition');
    await named(`/events?after=${far}`, 'after');
    await named(`/state?at=${far}`, 'at');
  });
});
