/**
 * The refusals of a key that was sent say what to do about that key. A revoked key was told "Send
 * Authorization: Bearer <API key>", which its holder had just done; a key of another workspace
 * named no way on. Now a revoked key is told to get a new one (and how an admin makes it), a key
 * not known to check it or get one, and a key of another workspace to use one of this workspace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Running } from '../../src/app/composition-root.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { bearer, keyOf, startSecured } from './harness.ts';

const WS = 'keys-edges-3';
const OTHER = 'keys-edges-3-other';
let redis: TestRedis;
let sb: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSecured(redis, { ROLES: 'api', WORKSPACES: `${WS},${OTHER}` });
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

const settings = async (key: string) => {
  const r = await sb.api!.inject({ url: `/v1/workspaces/${WS}/settings`, headers: bearer(key) });
  return { status: r.statusCode, body: r.json() as { type: string; detail: string } };
};

describe('a key refused', () => {
  it('revoked: a 401 saying to get a new key and how one is made, not to send a header', async () => {
    const admin = await keyOf(sb.redis, WS, 'admin');
    const victim = await keyOf(sb.redis, WS, 'supervisor');
    const revoked = await sb.api!.inject({
      method: 'DELETE',
      url: `/v1/workspaces/${WS}/keys/${victim.keyId}`,
      headers: bearer(admin.key),
    });
    expect(revoked.statusCode, revoked.body).toBe(200);
    let r = await settings(victim.key);
    for (let i = 0; i < 40 && r.status !== 401; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      r = await settings(victim.key);
    }
    expect(r.status).toBe(401);
    expect(r.body.type).toBe('/problems/unauthorized');
    expect(r.body.detail).toMatch(/^The API key was revoked at \S+\. /);
    expect(r.body.detail).not.toMatch(/Send Authorization/);
    expect(r.body.detail).toMatch(/new key/);
    expect(r.body.detail).toContain(`POST /v1/workspaces/${WS}/keys`);
    expect(r.body.detail).toContain('npm run keys -- create');
  });

  it('not known: a 401 saying to check the key or get one', async () => {
    const r = await settings(`sb_0123456789abcdef_${'A'.repeat(43)}`);
    expect(r.status).toBe(401);
    expect(r.body.detail).toMatch(/^The API key is not known\. /);
    expect(r.body.detail).not.toMatch(/Send Authorization/);
    expect(r.body.detail).toMatch(/check/i);
  });

  it("another workspace's key: a 403 saying to use a key of this workspace", async () => {
    const other = await keyOf(sb.redis, OTHER, 'admin');
    const r = await settings(other.key);
    expect(r.status).toBe(403);
    expect(r.body.detail).toMatch(/another workspace/);
    expect(r.body.detail).toContain(`a key of workspace "${WS}"`);
  });

  it('a token that is no key at all is still told the form of one and to send it', async () => {
    const r = await settings('not-a-key');
    expect(r.status).toBe(401);
    expect(r.body.detail).toBe(
      'The bearer token is not a Switchboard API key (sb_<id>_<secret>). Send Authorization: Bearer <API key>.',
    );
  });
});
