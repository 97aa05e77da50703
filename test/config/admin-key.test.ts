/**
 * The first start's admin key (src/app/admin-key.ts) against a real Redis: starts racing on one
 * DATA_DIR store one key and revoke the others, the file is never seen blank, and a blank file
 * left behind is replaced.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listApiKeys } from '../../src/adapters/redis/api-keys.ts';
import { ensureAdminKey } from '../../src/app/admin-key.ts';
import { suiteRedis } from '../support/redis.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function aDataDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sb-admin-key-'));
  dirs.push(dir);
  return dir;
}

/** The admin keys of workspace default not revoked. */
async function liveAdminKeys(redis: Parameters<typeof listApiKeys>[0]) {
  return (await listApiKeys(redis, 'default')).filter((k) => k.role === 'admin' && !k.revokedAt);
}

describe('the admin key of the first start', () => {
  const suite = suiteRedis();

  it('is stored once by starts racing on one DATA_DIR; the others revoke theirs and read it', async () => {
    const dataDir = await aDataDir();
    const before = (await liveAdminKeys(suite.redis)).length;
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => ensureAdminKey(suite.redis, dataDir)));
    const made = outcomes.filter((o) => o.created);
    expect(made).toHaveLength(1);
    expect(outcomes.filter((o) => !o.created && o.valid)).toHaveLength(5);
    const file = path.join(dataDir, 'admin-key');
    expect(readFileSync(file, 'utf8')).toBe(`${(made[0] as { key: string }).key}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect((await liveAdminKeys(suite.redis)).length).toBe(before + 1);
    // No file of its own left behind.
    expect(readdirSync(dataDir)).toEqual(['admin-key']);
  });

  it('replaces a blank file, once (where the start made and revoked keys for ever)', async () => {
    const dataDir = await aDataDir();
    const file = path.join(dataDir, 'admin-key');
    writeFileSync(file, ' \n', { mode: 0o600 });
    const made = await ensureAdminKey(suite.redis, dataDir);
    expect(made.created).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe(`${(made as { key: string }).key}\n`);
    const again = await ensureAdminKey(suite.redis, dataDir);
    expect(again).toMatchObject({ created: false, valid: true });
  }, 10_000);
});
