/**
 * A key record whose `hash` is a string but no SHA-256 in base64url (a hand-written `"hash":"é"`)
 * passed the record's check, and a request presenting that key id made the digest comparison throw
 * (`RangeError: Input buffers must have the same byte length`): a 500. Such a record is damaged now,
 * as one without a hash is (test/security/keys-damaged-api.test.ts): a request presenting it is a
 * 401 problem+json, the list leaves it out and its routes answer 404.
 */
import { describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { API_KEY_INDEX, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'keys-bad-hash';
const api = inProcessApi([WS], { env: { AUTH: 'on' } });

async function call(method: string, path: string, key: string) {
  const res = await fetch(`${api.running.url}/v1/workspaces/${WS}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}` },
  });
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    body: (await res.json()) as Record<string, unknown>,
  };
}

describe('a key record whose hash is not 43 characters of base64url', () => {
  it('is no key: a request presenting it is a 401, not a 500; the list leaves it out', async () => {
    const { key: admin, info } = await createApiKey(api.running.redis, {
      workspace: WS,
      role: 'admin',
      name: 'sound',
    });
    const records = workspaceKeys(WS).apiKeys;
    const bad = {
      '0123456789abcdef': 'é',
      '1123456789abcdef': `${'a'.repeat(42)}é`,
      '2123456789abcdef': 'a'.repeat(42),
      '3123456789abcdef': 'a'.repeat(44),
      '4123456789abcdef': `${'a'.repeat(42)}+`,
      '5123456789abcdef': '',
    };
    // Written past Switchboard's own user, as damage or a hand would.
    const root = api.server.adminClient();
    try {
      for (const [keyId, hash] of Object.entries(bad)) {
        const record = { keyId, workspace: WS, role: 'admin', hash, createdAt: new Date().toISOString() };
        await root.hset(records, keyId, JSON.stringify(record));
        await root.hset(API_KEY_INDEX, keyId, WS);
      }
    } finally {
      root.disconnect();
    }

    for (const keyId of Object.keys(bad)) {
      const r = await call('GET', '/agents', `sb_${keyId}_${'a'.repeat(43)}`);
      const what = `${keyId}: ${JSON.stringify(r.body)}`;
      expect(r.status, what).toBe(401);
      expect(r.type, what).toMatch(/^application\/problem\+json/);
      expect(r.body.type, what).toBe('/problems/unauthorized');
      const one = await call('GET', `/keys/${keyId}`, admin);
      expect(one.status, `GET /keys/${keyId}: ${JSON.stringify(one.body)}`).toBe(404);
    }
    const list = await call('GET', '/keys', admin);
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    expect((list.body.keys as { keyId: string }[]).map((k) => k.keyId)).toEqual([info.keyId]);
    // The sound key still opens what it opens; a wrong secret for it is the usual 401.
    expect((await call('GET', '/agents', admin)).status).toBe(200);
    const wrong = await call('GET', '/agents', `sb_${info.keyId}_${'b'.repeat(43)}`);
    expect(wrong.status, JSON.stringify(wrong.body)).toBe(401);
  });
});
