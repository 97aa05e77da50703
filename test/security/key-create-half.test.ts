/**
 * A key is made in two writes: its record in the workspace's hash, then the index entry that
 * names its workspace. When Redis refuses the second (here: a user whose ACL reaches the
 * workspace's keys only), the first is taken back: no key is listed that could never authenticate.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, listApiKeys } from '../../src/adapters/redis/api-keys.ts';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

const WS = 'sec-half-key';
const USER = 'workspace-keys-only';
let redis: TestRedis;

beforeAll(async () => {
  redis = await startTestRedis();
  await redis.adminClient().call('ACL', 'SETUSER', USER, 'reset', 'on', '>pw', `~sb:{${WS}}:*`, '+@all');
});

afterAll(async () => {
  await redis?.adminClient().call('ACL', 'DELUSER', USER);
  await redis?.stop();
});

describe('making a key', () => {
  it('takes its record back when the index entry is refused, and lists nothing', async () => {
    const url = new URL(redis.url);
    url.username = USER;
    url.password = 'pw';
    const limited = connectRedis({ url: url.toString() });
    const reader = redis.client();
    try {
      const err = await createApiKey(limited, { workspace: WS, role: 'admin' }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).toMatch(/NOPERM/);
      expect(await listApiKeys(reader, WS)).toEqual([]);
    } finally {
      limited.disconnect();
      reader.disconnect();
    }
  });
});
