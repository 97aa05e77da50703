/**
 * `POST /keys` answers 201 with a `Location` naming the new key: `GET` on it gives the key as
 * `GET /keys` lists it (never a secret), to admins only; an unknown key is a 404 key-not-found and
 * a malformed id a 400 naming it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Running } from '../../src/app/composition-root.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { bearer, keyOf, startSecured } from './harness.ts';

const WS = 'sec-key-location';
let redis: TestRedis;
let sb: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSecured(redis, { ROLES: 'api', WORKSPACES: WS });
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

describe('a key at its Location', () => {
  it('GET on the Location of POST /keys gives the key as listed, revoked or not; other roles get 403', async () => {
    const admin = await keyOf(sb.redis, WS, 'admin');
    const made = await sb.api!.inject({
      method: 'POST',
      url: `/v1/workspaces/${WS}/keys`,
      headers: { ...bearer(admin.key), 'content-type': 'application/json' },
      payload: JSON.stringify({ role: 'agent', agentId: 'a-1', name: 'desk 4' }),
    });
    expect(made.statusCode, made.body).toBe(201);
    const location = made.headers.location as string;
    expect(location).toBe(`/v1/workspaces/${WS}/keys/${made.json().keyId}`);

    const got = await sb.api!.inject({ url: location, headers: bearer(admin.key) });
    expect(got.statusCode, got.body).toBe(200);
    const listed = (
      await sb.api!.inject({ url: `/v1/workspaces/${WS}/keys`, headers: bearer(admin.key) })
    ).json().keys as { keyId: string }[];
    expect(got.json()).toEqual(listed.find((k) => k.keyId === made.json().keyId));
    expect(got.json()).toMatchObject({ role: 'agent', agentId: 'a-1', name: 'desk 4', workspace: WS });
    expect(got.body).not.toContain(made.json().key);
    expect(got.headers['cache-control']).toBe('no-store');

    await sb.api!.inject({ method: 'DELETE', url: location, headers: bearer(admin.key) });
    const revoked = await sb.api!.inject({ url: location, headers: bearer(admin.key) });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json().revokedAt).toEqual(expect.any(String));

    for (const role of ['integration', 'supervisor', 'auditor'] as const) {
      const other = await keyOf(sb.redis, WS, role);
      const r = await sb.api!.inject({ url: location, headers: bearer(other.key) });
      expect(r.statusCode, role).toBe(403);
      expect(r.json().type).toBe('/problems/forbidden');
    }
  });

  it('an unknown key id is a 404 key-not-found, a malformed one a 400 naming keyId, a query a 400', async () => {
    const admin = await keyOf(sb.redis, WS, 'admin');
    const missing = await sb.api!.inject({
      url: `/v1/workspaces/${WS}/keys/0123456789abcdef`,
      headers: bearer(admin.key),
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(missing.json()).toMatchObject({ type: '/problems/key-not-found' });

    const malformed = await sb.api!.inject({
      url: `/v1/workspaces/${WS}/keys/XYZ`,
      headers: bearer(admin.key),
    });
    expect(malformed.statusCode).toBe(400);
    expect(JSON.stringify(malformed.json().errors)).toContain('keyId');

    const query = await sb.api!.inject({
      url: `/v1/workspaces/${WS}/keys/0123456789abcdef?x=1`,
      headers: bearer(admin.key),
    });
    expect(query.statusCode).toBe(400);
  });

  it('a name of 200 characters outside the BMP (two UTF-16 units each) is a name like any other; 201 of them a 400', async () => {
    const admin = await keyOf(sb.redis, WS, 'admin');
    const make = (name: string) =>
      sb.api!.inject({
        method: 'POST',
        url: `/v1/workspaces/${WS}/keys`,
        headers: { ...bearer(admin.key), 'content-type': 'application/json' },
        payload: JSON.stringify({ role: 'auditor', name }),
      });
    const made = await make('\u{1F4DE}'.repeat(200));
    expect(made.statusCode, made.body).toBe(201);
    expect(made.json().name).toBe('\u{1F4DE}'.repeat(200));
    const over = await make('\u{1F4DE}'.repeat(201));
    expect(over.statusCode, over.body).toBe(400);
    expect(over.json()).toMatchObject({ type: '/problems/invalid-request', errors: [{ path: 'name' }] });
  });
});
