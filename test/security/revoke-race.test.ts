/**
 * Revocations of one key at the same moment agree: the first time stays (the write is a
 * compare-and-set on the record), and every revocation answers the time Redis holds. 20 at once,
 * over several rounds: through two API instances (DELETE /keys/{keyId}), and straight against
 * Redis over several connections, as `npm run keys -- revoke` and the API may race.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getApiKey, revokeApiKey } from '../../src/adapters/redis/api-keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import type { Running } from '../../src/app/composition-root.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { bearer, keyOf, startSecured } from './harness.ts';

const WS = 'sec-revoke-race';
const ROUNDS = 8;
const AT_ONCE = 20;
let redis: TestRedis;
let a: Running;
let b: Running;
let clients: RedisClient[];

beforeAll(async () => {
  redis = await startTestRedis();
  // API only: the routes used here read and write no stream.
  a = await startSecured(redis, { ROLES: 'api', WORKSPACES: WS });
  b = await startSecured(redis, { ROLES: 'api', WORKSPACES: WS });
  clients = Array.from({ length: 4 }, () => redis.client());
});

afterAll(async () => {
  for (const c of clients ?? []) c.disconnect();
  await b?.stop();
  await a?.stop();
  await redis?.stop();
});

/** Each round whose answers do not all name the stored `revokedAt`: what was answered, what is stored. */
type Disagreement = { round: number; answered: string[]; stored: string | undefined };

describe('concurrent revocations of one key', () => {
  it(`${AT_ONCE} DELETE /keys/{keyId} at once through two instances all answer the revokedAt stored`, async () => {
    const admin = await keyOf(a.redis, WS, 'admin');
    const disagreements: Disagreement[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const victim = await keyOf(a.redis, WS, 'supervisor');
      const answers = await Promise.all(
        Array.from({ length: AT_ONCE }, (_, i) =>
          (i % 2 === 0 ? a : b).api!.inject({
            method: 'DELETE',
            url: `/v1/workspaces/${WS}/keys/${victim.keyId}`,
            headers: bearer(admin.key),
          }),
        ),
      );
      for (const r of answers) expect(r.statusCode, r.body).toBe(200);
      const answered = answers.map((r) => (r.json() as { revokedAt: string }).revokedAt);
      const stored = (await getApiKey(a.redis, WS, victim.keyId))?.revokedAt;
      if (answered.some((t) => t !== stored))
        disagreements.push({ round, answered: [...new Set(answered)], stored });
    }
    expect(disagreements, 'rounds where an answer names a revokedAt Redis does not hold').toEqual([]);
  });

  it(`${AT_ONCE} revokeApiKey at once over four connections all return the revokedAt stored`, async () => {
    const disagreements: Disagreement[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const victim = await keyOf(a.redis, WS, 'auditor');
      const answers = await Promise.all(
        Array.from({ length: AT_ONCE }, (_, i) =>
          revokeApiKey(clients[i % clients.length]!, WS, victim.keyId),
        ),
      );
      const answered = answers.map((info) => info?.revokedAt ?? 'none');
      const stored = (await getApiKey(a.redis, WS, victim.keyId))?.revokedAt;
      if (answered.some((t) => t !== stored))
        disagreements.push({ round, answered: [...new Set(answered)], stored });
    }
    expect(disagreements, 'rounds where an answer names a revokedAt Redis does not hold').toEqual([]);
  });
});
