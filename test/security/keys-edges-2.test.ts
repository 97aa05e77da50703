/**
 * `/problems/key-not-found` is answered by `GET /keys/{keyId}` as by `DELETE /keys/{keyId}` (a key
 * the workspace does not have, or one of another workspace), and docs/API.md's table of problem
 * types, where a client looks a type up, names both routes.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Running } from '../../src/app/composition-root.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { bearer, keyOf, startSecured } from './harness.ts';

const WS = 'sec-keys-edges-2';
const OTHER = 'sec-keys-edges-2-other';
let redis: TestRedis;
let sb: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSecured(redis, {
    ROLES: 'api',
    WORKSPACES: `${WS},${OTHER}`,
    DISCOVER_WORKSPACES: 'false',
  });
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

it('GET and DELETE /keys/{keyId} of a key the workspace does not have: 404 key-not-found, both in the table', async () => {
  const admin = (await keyOf(sb.redis, WS, 'admin')).key;
  const elsewhere = (await keyOf(sb.redis, OTHER, 'auditor')).keyId;
  const answered = new Set<string>();
  for (const keyId of ['0123456789abcdef', elsewhere])
    for (const method of ['GET', 'DELETE'] as const) {
      const r = await sb.api!.inject({
        method,
        url: `/v1/workspaces/${WS}/keys/${keyId}`,
        headers: bearer(admin),
      });
      expect(r.statusCode, `${method} ${keyId}: ${r.body}`).toBe(404);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(r.json().type).toBe('/problems/key-not-found');
      answered.add(method);
    }
  // The other workspace's key is untouched.
  const list = await sb.api!.inject({
    url: `/v1/workspaces/${OTHER}/keys`,
    headers: bearer((await keyOf(sb.redis, OTHER, 'admin')).key),
  });
  const listed = (list.json() as { keys: { keyId: string; revokedAt?: string }[] }).keys;
  expect(listed.find((k) => k.keyId === elsewhere)?.revokedAt).toBeUndefined();

  const row = readFileSync(new URL('../../docs/API.md', import.meta.url), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('| `/problems/key-not-found` |'));
  expect(row, 'the key-not-found row of docs/API.md').toBeDefined();
  for (const method of answered)
    expect(row, `the key-not-found row names ${method} /keys/{keyId}`).toMatch(new RegExp(`\\b${method}\\b`));
  expect(row).toContain('/keys/{keyId}');
});
