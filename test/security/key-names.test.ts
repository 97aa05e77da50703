/**
 * A key's name is one line of text: a name with a control character (a line break, a tab, an
 * escape, DEL, a C1 control) or a line or paragraph separator is refused when the key is made,
 * through the API (400 naming `name`, no key made) and by `npm run keys -- create` (exit 2 naming
 * `--name`). `keys list` prints any stored name escaped, one key a line, since a record written
 * before may hold one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, listApiKeys } from '../../src/adapters/redis/api-keys.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { Running } from '../../src/app/composition-root.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { bearer, keyOf, keysCli, startSecured } from './harness.ts';

const WS = 'sec-key-names';
let redis: TestRedis;
let sb: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  // API only: the key routes read and write no stream.
  sb = await startSecured(redis, { ROLES: 'api', WORKSPACES: WS });
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

const keys = (...args: string[]) => keysCli(redis)(...args);

const BAD_NAMES = [
  'crm\nadmin',
  'crm\r',
  'tab\there',
  'bell\u0007',
  'esc \u001b[2J',
  'nul\u0000',
  'del\u007f',
  'c1\u0085',
  'line\u2028sep',
  'para\u2029sep',
];

describe('API key names', () => {
  it('POST /keys refuses a name with a control character or a line break: 400 naming name, no key made', async () => {
    const admin = await keyOf(sb.redis, WS, 'admin');
    const records = () => sb.redis.hlen(workspaceKeys(WS).apiKeys);
    const before = await records();
    for (const name of BAD_NAMES) {
      const r = await sb.api!.inject({
        method: 'POST',
        url: `/v1/workspaces/${WS}/keys`,
        headers: { ...bearer(admin.key), 'content-type': 'application/json' },
        payload: JSON.stringify({ role: 'integration', name }),
      });
      const what = JSON.stringify(name);
      expect(r.statusCode, `${what}: ${r.body}`).toBe(400);
      expect(r.headers['content-type'], what).toMatch(/^application\/problem\+json/);
      const body = r.json() as { type: string; errors: { path: string; message: string }[] };
      expect(body.type, what).toBe('/problems/invalid-request');
      expect(
        body.errors.map((e) => e.path),
        what,
      ).toEqual(['name']);
      expect(body.errors[0]!.message, what).toMatch(/control characters/);
    }
    expect(await records()).toBe(before);
    // Spaces, punctuation and any script stay names.
    for (const name of ['CRM (prod) – eu-west', 'Zentrale Köln', '呼叫中心 🎧', 'a\\b "quoted"']) {
      const r = await sb.api!.inject({
        method: 'POST',
        url: `/v1/workspaces/${WS}/keys`,
        headers: { ...bearer(admin.key), 'content-type': 'application/json' },
        payload: JSON.stringify({ role: 'integration', name }),
      });
      expect(r.statusCode, r.body).toBe(201);
      expect(r.json()).toMatchObject({ name });
    }
  });

  it('createApiKey refuses one too (every way a key is made)', async () => {
    await expect(createApiKey(sb.redis, { workspace: WS, role: 'auditor', name: 'a\nb' })).rejects.toThrow(
      /^name /,
    );
  });

  it('npm run keys -- create --name with a line break exits 2 naming --name and makes no key', async () => {
    const before = (await listApiKeys(sb.redis, WS)).length;
    for (const name of ['crm\nadmin  active', 'esc \u001b[31mred', 'tab\there']) {
      const r = await keys('create', '--workspace', WS, '--role', 'integration', '--name', name);
      expect(r.code, `${JSON.stringify(name)}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain('--name:');
      expect(r.stderr).toMatch(/control characters/);
      expect(r.stdout).toBe('');
    }
    expect((await listApiKeys(sb.redis, WS)).length).toBe(before);
  });

  it('keys list prints a stored name with control characters escaped, one line per key', async () => {
    const ws = `${WS}-old`;
    const { info } = await createApiKey(sb.redis, { workspace: ws, role: 'supervisor', name: 'old' });
    // A record written before names were checked: its name holds a line break, an escape and a backslash.
    const hash = workspaceKeys(ws).apiKeys;
    const record = JSON.parse((await sb.redis.hget(hash, info.keyId))!) as Record<string, unknown>;
    const stored = 'wall\nboard \u001b[2J\\ok\u2028';
    await sb.redis.hset(hash, info.keyId, JSON.stringify({ ...record, name: stored }));
    await createApiKey(sb.redis, { workspace: ws, role: 'auditor', name: 'plain name' });

    const table = await keys('list', '--workspace', ws);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines.at(-1)).toBe('');
    expect(lines.length - 1, table.stdout).toBe(2);
    for (const line of lines) expect(line).not.toMatch(/[\p{Cc}\u2028\u2029]/u);
    expect(lines.find((l) => l.startsWith(info.keyId))).toMatch(/ {2}wall\\nboard \\u001b\[2J\\\\ok\\u2028$/);
    expect(lines.find((l) => !l.startsWith(info.keyId))).toMatch(/ {2}plain name$/);
    // --json is JSON: the name as stored.
    const json = await keys('list', '--workspace', ws, '--json');
    const listed = JSON.parse(json.stdout) as { keys: { keyId: string; name?: string }[] };
    expect(listed.keys.find((k) => k.keyId === info.keyId)?.name).toBe(stored);
  });
});

// Invisible bidirectional controls: a name holding U+202E reads backwards from there on, so a
// list shows a name other than the one stored (a spoof for the admin reading it). The marks
// (U+200E, U+200F, U+061C) stay names, as agent names (test/api/names-agents.test.ts).
const BIDI_NAMES = [
  'crm \u202eevil',
  'lre\u202a',
  'rle\u202b',
  'pdf\u202c',
  'lro\u202d',
  'lri\u2066',
  'rli\u2067',
  'fsi\u2068',
  'pdi\u2069',
];

describe('API key names: bidirectional controls and empty names', () => {
  it('POST /keys refuses a name with a bidirectional control: 400 naming name, no key made', async () => {
    const admin = await keyOf(sb.redis, WS, 'admin');
    const records = () => sb.redis.hlen(workspaceKeys(WS).apiKeys);
    const before = await records();
    for (const name of BIDI_NAMES) {
      const r = await sb.api!.inject({
        method: 'POST',
        url: `/v1/workspaces/${WS}/keys`,
        headers: { ...bearer(admin.key), 'content-type': 'application/json' },
        payload: JSON.stringify({ role: 'integration', name }),
      });
      const what = JSON.stringify(name);
      expect(r.statusCode, `${what}: ${r.body}`).toBe(400);
      const body = r.json() as { type: string; errors: { path: string; message: string }[] };
      expect(body.type, what).toBe('/problems/invalid-request');
      expect(
        body.errors.map((e) => e.path),
        what,
      ).toEqual(['name']);
    }
    expect(await records()).toBe(before);
    await expect(
      createApiKey(sb.redis, { workspace: WS, role: 'auditor', name: 'a\u202eb' }),
    ).rejects.toThrow(/^name /);
  });

  it('npm run keys -- create --name "" exits 2 naming --name, as the API refuses an empty name', async () => {
    const before = (await listApiKeys(sb.redis, WS)).length;
    const r = await keys('create', '--workspace', WS, '--role', 'integration', '--name', '');
    expect(r.code, `${r.stderr}${r.stdout}`).toBe(2);
    expect(r.stderr).toMatch(/--name: .*1\.\.200 characters/);
    expect(r.stdout).toBe('');
    expect((await listApiKeys(sb.redis, WS)).length).toBe(before);
  });

  it('npm run keys -- create --name with a bidi control exits 2 naming --name and makes no key', async () => {
    const before = (await listApiKeys(sb.redis, WS)).length;
    for (const name of ['crm \u202eevil', 'rli\u2067x']) {
      const r = await keys('create', '--workspace', WS, '--role', 'integration', '--name', name);
      expect(r.code, `${JSON.stringify(name)}: ${r.stderr}${r.stdout}`).toBe(2);
      expect(r.stderr).toContain('--name:');
      expect(r.stdout).toBe('');
    }
    expect((await listApiKeys(sb.redis, WS)).length).toBe(before);
    await expect(createApiKey(sb.redis, { workspace: WS, role: 'auditor', name: '' })).rejects.toThrow(
      /^name /,
    );
  });

  it('keys list prints a stored name with bidi controls escaped', async () => {
    const ws = `${WS}-bidi`;
    const { info } = await createApiKey(sb.redis, { workspace: ws, role: 'supervisor', name: 'old' });
    const hash = workspaceKeys(ws).apiKeys;
    const record = JSON.parse((await sb.redis.hget(hash, info.keyId))!) as Record<string, unknown>;
    await sb.redis.hset(hash, info.keyId, JSON.stringify({ ...record, name: 'crm \u202eevil\u2066x\u200f' }));
    const table = await keys('list', '--workspace', ws);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).not.toMatch(/\p{Bidi_Control}/u);
    expect(table.stdout).toContain('  crm \\u202eevil\\u2066x\\u200f\n');
  });
});
