/**
 * A key record in Redis that is not a key's record (not JSON, or without its fields: damaged, or
 * written by hand) made every reader of the keys fail with a 500: `GET /keys`, `GET` and `DELETE
 * /keys/{id}`, any request presenting that key, and the auditor's read of the keys. Each answers
 * as for no such key now: the list holds the sound keys, the key's own routes are a `404`, a request
 * presenting it a `401`; `npm run keys -- list` names the damaged record (test/cli/keys-damaged.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { API_KEY_INDEX, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'keys-damaged-api';
const api = inProcessApi([WS], { env: { AUTH: 'on' } });

async function call(method: string, path: string, key: string) {
  const res = await fetch(`${api.running.url}/v1/workspaces/${WS}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}` },
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('a damaged key record', () => {
  it('is answered as no such key: the list holds the sound keys, its routes 404, a request with it 401', async () => {
    const redis = api.running.redis;
    const { key: admin, info } = await createApiKey(redis, { workspace: WS, role: 'admin', name: 'sound' });
    const hash = workspaceKeys(WS).apiKeys;
    // Written past Switchboard's own user, as damage or a hand would.
    const root = api.server.adminClient();
    for (const [id, text] of [
      ['deadbeefdeadbeef', '{"keyId":"deadbeefdeadbe'],
      ['feedfacefeedface', '42'],
    ] as const) {
      await root.hset(hash, id, text);
      await root.hset(API_KEY_INDEX, id, WS);
    }
    root.disconnect();

    const list = await call('GET', '/keys', admin);
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    expect((list.body.keys as { keyId: string }[]).map((k) => k.keyId)).toEqual([info.keyId]);
    for (const method of ['GET', 'DELETE']) {
      const one = await call(method, '/keys/deadbeefdeadbeef', admin);
      expect(one.status, `${method}: ${JSON.stringify(one.body)}`).toBe(404);
    }
    const presented = await call('GET', '/agents', `sb_deadbeefdeadbeef_${'a'.repeat(43)}`);
    expect(presented.status, JSON.stringify(presented.body)).toBe(401);
    expect(presented.body.type).toBe('/problems/unauthorized');

    // The auditor's read of the keys (whose agent each key acts for) passes over them too.
    const audit = await auditWorkspace(redis, WS);
    expect(audit.violations).toEqual([]);
  });
});
