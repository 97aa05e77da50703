/**
 * `npm run keys -- create|list|revoke` as a user runs it, against a real Redis, with an API
 * instance that takes the key it makes and refuses it once revoked; bad arguments exit 2 naming
 * the option. And the auditor counts the commands by the key that sent them (who did what).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Running } from '../../src/app/composition-root.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';
import { bearer, keysCli, startSecured } from './harness.ts';

const WS = 'sec-cli';
let redis: TestRedis;
let sb: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSecured(redis, { WORKSPACES: WS, DISCOVER_WORKSPACES: 'false' });
  await projectorReady(sb.redis, [WS]);
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

const keys = (...args: string[]) => keysCli(redis)(...args);

describe('npm run keys', () => {
  it('creates a key that works, lists it without its secret, revokes it', async () => {
    const made = await keys('create', '--workspace', WS, '--role', 'integration', '--name', 'crm', '--json');
    expect(made.code, made.stderr).toBe(0);
    const created = JSON.parse(made.stdout) as { key: string; keyId: string; role: string; name: string };
    expect(created).toMatchObject({ role: 'integration', name: 'crm', workspace: WS });
    expect(created.key).toMatch(/^sb_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);

    const queued = await sb.api!.inject({
      method: 'POST',
      url: `/v1/workspaces/${WS}/contacts`,
      headers: { ...bearer(created.key), 'content-type': 'application/json' },
      payload: JSON.stringify({ id: 'from-the-crm', skills: ['x'] }),
    });
    expect(queued.statusCode, queued.body).toBe(201);

    const plain = await keys('create', '--workspace', WS, '--role', 'agent', '--agent', 'ana');
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/shown this once:\n\nsb_[0-9a-f]{16}_\S{43}\n$/);

    const listed = await keys('list', '--workspace', WS, '--json');
    expect(listed.code, listed.stderr).toBe(0);
    const list = JSON.parse(listed.stdout) as { keys: { keyId: string; role: string; agentId?: string }[] };
    expect(list.keys.map((k) => k.role).sort()).toEqual(['agent', 'integration']);
    expect(list.keys.find((k) => k.role === 'agent')?.agentId).toBe('ana');
    expect(listed.stdout).not.toContain(created.key.slice(20));
    expect(listed.stdout).not.toMatch(/hash/);
    const table = await keys('list', '--workspace', WS);
    expect(table.stdout).toContain(created.keyId);

    const revoked = await keys('revoke', '--workspace', WS, '--key-id', created.keyId);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toMatch(/^Revoked key [0-9a-f]{16} at /);
    await sleep(600);
    const refused = await sb.api!.inject({ url: `/v1/workspaces/${WS}/stats`, headers: bearer(created.key) });
    expect(refused.statusCode).toBe(401);
    expect((await keys('list', '--workspace', WS)).stdout).toMatch(new RegExp(`${created.keyId}.*revoked`));

    // Who did what: the audit counts the command by the key that sent it.
    const audit = await auditWorkspace(sb.redis, WS);
    expect(audit.commandsByKey[`${created.keyId} integration`]).toBe(1);
    expect(audit.ok, JSON.stringify(audit.violations.slice(0, 3))).toBe(true);
  });

  it('names every bad argument and exits 2; an unknown key id exits 1', async () => {
    const bad = await keys('create', '--workspace', 'no good', '--role', 'root');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--workspace');
    expect(bad.stderr).toContain('--role');
    const agentless = await keys('create', '--workspace', WS, '--role', 'agent');
    expect(agentless.code).toBe(2);
    expect(agentless.stderr).toContain('--agent');
    // ".." is a dot segment in a URL path: no route could name that agent.
    const dotted = await keys('create', '--workspace', WS, '--role', 'agent', '--agent', '..');
    expect(dotted.code).toBe(2);
    expect(dotted.stderr).toContain('--agent:');
    expect(dotted.stderr).toContain('not "." or ".."');
    expect((await keys('rotate', '--workspace', WS)).code).toBe(2);
    // An option of another command is named, not ignored.
    const filtered = await keys('list', '--workspace', WS, '--role', 'agent');
    expect(filtered.code).toBe(2);
    expect(filtered.stderr).toContain('--role: not an option of list');
    const named = await keys('revoke', '--workspace', WS, '--key-id', '0123456789abcdef', '--name', 'x');
    expect(named.code).toBe(2);
    expect(named.stderr).toContain('--name: not an option of revoke');
    const badId = await keys('revoke', '--workspace', WS, '--key-id', 'nope');
    expect(badId.code).toBe(2);
    // A value given and bad is shown, not called missing.
    expect(badId.stderr).toContain('--key-id: must be the 16 hex digits `list` shows (got "nope")');
    const absent = await keys('revoke', '--workspace', WS);
    expect(absent.code).toBe(2);
    expect(absent.stderr).toContain('--key-id: required, the 16 hex digits `list` shows');
    const missing = await keys('revoke', '--workspace', WS, '--key-id', '0123456789abcdef');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no key');
  });
});
