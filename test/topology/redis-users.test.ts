/**
 * The passwords of a Redis Switchboard starts itself, kept in a credentials file
 * (src/topology/redis-users.ts): made once, read the same on every later start, and a file that
 * cannot give them all is named with what to do, never replaced without a word.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreateCredentials } from '../../src/topology/redis-users.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function aFile(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sb-redis-users-'));
  dirs.push(dir);
  return path.join(dir, 'redis-credentials.json');
}

describe('the kept Redis passwords', () => {
  it('are made once and read the same later', async () => {
    const file = await aFile();
    const made = loadOrCreateCredentials(file);
    expect(loadOrCreateCredentials(file)).toEqual(made);
  });

  it('names a file that parses but lacks a password, and leaves it as it was (it was replaced: the passwords a Redis or a client kept no longer matched)', async () => {
    const file = await aFile();
    const text = `${JSON.stringify({
      app: { user: 'switchboard', password: 'kept-app-password' },
      admin: { user: 'default', password: '' },
    })}\n`;
    writeFileSync(file, text, { mode: 0o600 });
    expect(() => loadOrCreateCredentials(file)).toThrow(
      new RegExp(
        `^${file.replaceAll('.', '\\.')} cannot be read as the passwords of the Redis it is kept for \\(no password for admin, replica; no user for replica\\); remove it`,
      ),
    );
    expect(readFileSync(file, 'utf8')).toBe(text);
  });
});
