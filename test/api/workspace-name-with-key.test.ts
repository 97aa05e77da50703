/**
 * A request with a valid API key to a workspace name no workspace can have (empty, as a doubled
 * slash makes it; characters the names refuse; too long) is a `400` naming the path's `ws`, as the
 * same name is with AUTH=off: the caller typed a bad name, and is told which field and what it must
 * be. Before, it was a `403` saying the key "belongs to another workspace" (workspace ""), which sent
 * the caller to look for a key. A well-formed name of another workspace is still the `403`; without
 * a key, any name is still the `401` (nothing is said of a name before the caller is known).
 */
import { describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'named';
const api = inProcessApi([WS], { env: { AUTH: 'on' } });

async function get(path: string, key?: string) {
  const res = await fetch(
    `${api.running.url}${path}`,
    key ? { headers: { authorization: `Bearer ${key}` } } : {},
  );
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    body: (await res.json()) as Record<string, unknown>,
  };
}

describe('a workspace name no workspace can have, with a valid key', () => {
  it('is a 400 naming ws; another workspace is still a 403, no key still a 401', async () => {
    const { key } = await createApiKey(api.running.redis, { workspace: WS, role: 'admin', name: 'names' });
    for (const path of [
      '/v1/workspaces//agents',
      '/v1/workspaces/BAD%21/agents',
      `/v1/workspaces/${'a'.repeat(100)}/agents`,
      '/v1/workspaces/a%20b/contacts/c1',
    ]) {
      const r = await get(path, key);
      expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.type).toMatch(/^application\/problem\+json/);
      expect(r.body).toMatchObject({ type: '/problems/invalid-request' });
      expect(r.body.errors, path).toEqual([expect.objectContaining({ path: 'ws' })]);
    }
    const other = await get('/v1/workspaces/other/agents', key);
    expect(other.status).toBe(403);
    expect(other.body.type).toBe('/problems/forbidden');
    expect((await get('/v1/workspaces/BAD%21/agents')).status).toBe(401);
    expect((await get(`/v1/workspaces/${WS}/agents`, key)).status).toBe(200);
  });
});
