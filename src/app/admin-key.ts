import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { ApiKeyVerifier, createApiKey, revokeApiKey } from '../adapters/redis/api-keys.ts';
import type { RedisClient } from '../adapters/redis/scripts.ts';
import { makeDirs } from '../topology/make-dirs.ts';

export const ADMIN_KEY_FILE = 'admin-key';
const WORKSPACE = 'default';

export type AdminKeyOutcome =
  | { readonly created: true; readonly key: string; readonly file: string }
  | { readonly created: false; readonly file: string; readonly valid: boolean };

/**
 * The two-command start with keys on: the first start makes an admin key for the workspace
 * `default` and stores it at `<DATA_DIR>/admin-key`, readable by its owner only (0600). A later
 * start finds the file and makes none: a key revoked on purpose is not brought back (the outcome
 * says whether the stored key still works). Two processes starting on one DATA_DIR at once store
 * one key: the file is created exclusively, and the loser revokes the key it made.
 */
export async function ensureAdminKey(redis: RedisClient, dataDir: string): Promise<AdminKeyOutcome> {
  const file = path.join(dataDir, ADMIN_KEY_FILE);
  const stored = readKey(file);
  if (stored !== undefined) {
    const checked = await new ApiKeyVerifier(redis, 0).check(stored, WORKSPACE);
    return { created: false, file, valid: checked.ok && checked.key.role === 'admin' };
  }
  makeDirs(path.resolve(dataDir), 0o700);
  const { key, info } = await createApiKey(redis, {
    workspace: WORKSPACE,
    role: 'admin',
    name: 'first start (DATA_DIR/admin-key)',
  });
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    await revokeApiKey(redis, WORKSPACE, info.keyId);
    return ensureAdminKey(redis, dataDir);
  }
  try {
    writeSync(fd, `${key}\n`);
  } finally {
    closeSync(fd);
  }
  return { created: true, key, file };
}

function readKey(file: string): string | undefined {
  try {
    const text = readFileSync(file, 'utf8').trim();
    return text === '' ? undefined : text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Logs what the start found or made (before the API listens: the file is there by then). */
export function logAdminKey(outcome: AdminKeyOutcome, log: Logger): void {
  if (!outcome.created) {
    if (outcome.valid) log.info({ file: outcome.file }, 'the admin key of workspace default is in this file');
    else
      log.warn(
        { file: outcome.file },
        'the stored admin key is not an admin key of workspace default on this Redis (revoked, or another Redis): make one with npm run keys -- create --workspace default --role admin',
      );
    return;
  }
  log.info({ file: outcome.file }, 'created an admin API key for workspace default (printed once on stderr)');
}

/** Prints a key the start made, once, on stderr, with an example call to the address it listens on. */
export function printAdminKey(outcome: AdminKeyOutcome, url: string | undefined): void {
  if (!outcome.created) return;
  const base = url ?? 'http://127.0.0.1:8080';
  process.stderr.write(
    [
      '',
      'switchboard: created an admin API key for workspace "default". It is shown this once and kept',
      `in ${outcome.file} (readable by you only):`,
      '',
      `    ${outcome.key}`,
      '',
      'Use it as a bearer token, for example:',
      `    curl -H "Authorization: Bearer $(cat ${outcome.file})" ${base}/v1/workspaces/default/stats`,
      '',
      '',
    ].join('\n'),
  );
}
