/**
 * The challenge of a 401 (RFC 6750, section 3.1): a request with no Bearer credentials (no
 * Authorization header, or another scheme) gets `WWW-Authenticate: Bearer realm="switchboard"`
 * with no error code; a Bearer header that is not one token gets `error="invalid_request"`; a
 * token that is not a key, unknown, wrong or revoked gets `error="invalid_token"`. The body is the
 * same `/problems/unauthorized` in every case, and a 403 carries no challenge.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeApiKey } from '../../src/adapters/redis/api-keys.ts';
import type { Running } from '../../src/app/composition-root.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { bearer, keyOf, startSecured } from './harness.ts';

const WS = 'sec-challenge';
const OTHER = 'sec-challenge-other';
let redis: TestRedis;
let sb: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  // API only: the route asked reads no stream.
  sb = await startSecured(redis, { ROLES: 'api', WORKSPACES: `${WS},${OTHER}` });
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

const settings = (headers: Record<string, string>, ws = WS) =>
  sb.api!.inject({ url: `/v1/workspaces/${ws}/settings`, headers });

const REALM = 'Bearer realm="switchboard"';

describe('WWW-Authenticate on a 401', () => {
  it('names no error without Bearer credentials, invalid_request for a malformed Bearer header, invalid_token for a bad token', async () => {
    const admin = await keyOf(sb.redis, WS, 'admin');
    const gone = await keyOf(sb.redis, WS, 'supervisor');
    await revokeApiKey(sb.redis, WS, gone.keyId);
    const cases: [what: string, headers: Record<string, string>, challenge: string][] = [
      ['no Authorization header', {}, REALM],
      ['Basic', { authorization: 'Basic YWRtaW46YWRtaW4=' }, REALM],
      ['Digest', { authorization: 'Digest username="admin", realm="switchboard"' }, REALM],
      ['a scheme only', { authorization: 'Token' }, REALM],
      ['Bearer with no token', { authorization: 'Bearer' }, `${REALM}, error="invalid_request"`],
      ['Bearer and spaces', { authorization: 'Bearer   ' }, `${REALM}, error="invalid_request"`],
      [
        'Bearer with two tokens',
        { authorization: `Bearer ${admin.key} x` },
        `${REALM}, error="invalid_request"`,
      ],
      ['not shaped like a key', bearer('not-a-key'), `${REALM}, error="invalid_token"`],
      ['an unknown key', bearer(`sb_${'0'.repeat(16)}_${'A'.repeat(43)}`), `${REALM}, error="invalid_token"`],
      [
        'a wrong secret',
        bearer(`${admin.key.slice(0, 20)}${'B'.repeat(43)}`),
        `${REALM}, error="invalid_token"`,
      ],
      ['a revoked key', bearer(gone.key), `${REALM}, error="invalid_token"`],
    ];
    for (const [what, headers, challenge] of cases) {
      const r = await settings(headers);
      expect(r.statusCode, what).toBe(401);
      expect(r.headers['content-type'], what).toMatch(/^application\/problem\+json/);
      expect(r.json(), what).toMatchObject({ type: '/problems/unauthorized', status: 401 });
      expect(r.headers['www-authenticate'], what).toBe(challenge);
    }
    // The key itself works, and a key of another workspace is a 403 with no challenge.
    expect((await settings(bearer(admin.key))).statusCode).toBe(200);
    const elsewhere = await settings(bearer(admin.key), OTHER);
    expect(elsewhere.statusCode).toBe(403);
    expect(elsewhere.headers['www-authenticate']).toBeUndefined();
  });
});
