/**
 * Failed authentication is not limited per address (docs/SECURITY.md says why), so what a stream
 * of made-up keys costs is held here: a key that is not one (`sb_<id>_<secret>` misshapen) costs
 * Redis nothing; a well-formed key of an unknown id costs one HGET (the index lookup), stores
 * nothing and spends no caller's rate budget. Guessing a key is hopeless either way: its secret
 * is 32 random bytes. A real key keeps working meanwhile.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyVerifier, createApiKey } from '../../src/adapters/redis/api-keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'sec-auth-cost';
// The API alone: no worker polls Redis beside the requests counted.
const api = inProcessApi([WS], { env: { AUTH: 'on', ROLES: 'api' } });
let admin: RedisClient;
beforeAll(() => {
  admin = api.server.adminClient();
});
afterAll(() => admin?.disconnect());
/** Calls per command since the server started (INFO commandstats). */
async function commandCalls(): Promise<Map<string, number>> {
  const text = String(await admin.info('commandstats'));
  return new Map(
    [...text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])] as const),
  );
}

describe('refused keys', () => {
  it('cost one HGET each at most, store nothing, and leave a real key working', async () => {
    const { key } = await createApiKey(api.running.redis, { workspace: WS, role: 'admin' });
    const get = (bearer: string) =>
      fetch(`${api.running.url}/v1/workspaces/${WS}/stats`, {
        headers: { authorization: `Bearer ${bearer}` },
      });
    expect((await get(key)).status).toBe(200);

    const before = await commandCalls();
    const keysBefore = await admin.dbsize();
    const N = 200;
    const made = Array.from(
      { length: N },
      () => `sb_${randomBytes(8).toString('hex')}_${randomBytes(32).toString('base64url')}`,
    );
    const misshapen = Array.from({ length: N }, () => randomBytes(24).toString('base64url'));
    for (let i = 0; i < N; i += 20) {
      const answers = await Promise.all([...made.slice(i, i + 20), ...misshapen.slice(i, i + 20)].map(get));
      expect(answers.map((a) => a.status)).toEqual(Array(answers.length).fill(401));
    }
    const after = await commandCalls();
    const grew = [...after].flatMap(([cmd, n]) => {
      const d = n - (before.get(cmd) ?? 0);
      return d > 0 ? [[cmd, d] as const] : [];
    });
    const by = new Map(grew);
    // One index lookup per made-up key id; the misshapen ones reach no Redis at all. What else ran
    // meanwhile (the instance's own reads, this test's INFO) is a handful, not per request.
    console.info(JSON.stringify({ made: N, misshapen: N, commands: Object.fromEntries(grew) }));
    expect(by.get('hget') ?? 0).toBeGreaterThanOrEqual(N);
    expect(by.get('hget') ?? 0).toBeLessThanOrEqual(N + 10);
    for (const [cmd, d] of grew) if (cmd !== 'hget') expect(d, `${cmd} ran ${d} times`).toBeLessThan(N / 4);
    // Nothing stored (a counter of the real key's may have lapsed meanwhile).
    expect(await admin.dbsize()).toBeLessThanOrEqual(keysBefore);
    expect((await get(key)).status).toBe(200);
  });

  it('leave the real keys in the lookup cache: made-up ids are not kept in it', async () => {
    const { key } = await createApiKey(api.running.redis, { workspace: WS, role: 'admin' });
    // A long cache and a small one: 50 made-up ids would fill it.
    const verifier = new ApiKeyVerifier(api.running.redis, 60_000, 50);
    expect((await verifier.check(key, WS)).ok).toBe(true);
    const before = (await commandCalls()).get('hget') ?? 0;
    for (let i = 0; i < 120; i++)
      expect(
        (
          await verifier.check(
            `sb_${randomBytes(8).toString('hex')}_${randomBytes(32).toString('base64url')}`,
            WS,
          )
        ).ok,
      ).toBe(false);
    const flood = ((await commandCalls()).get('hget') ?? 0) - before;
    expect((await verifier.check(key, WS)).ok).toBe(true);
    // The real key is still cached: no lookup for it (before: the cache emptied twice, and it was read again).
    expect(((await commandCalls()).get('hget') ?? 0) - before - flood).toBe(0);
  });
});
