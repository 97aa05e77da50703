import {
  chmodSync,
  closeSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { ApiKeyVerifier, createApiKey, revokeApiKey } from '../adapters/redis/api-keys.ts';
import type { RedisClient } from '../adapters/redis/scripts.ts';
import { makeDirs } from '../topology/make-dirs.ts';
import { asideName } from '../topology/pid-file.ts';

export const ADMIN_KEY_FILE = 'admin-key';
const WORKSPACE = 'default';

export type AdminKeyOutcome =
  | { readonly created: true; readonly key: string; readonly file: string }
  | {
      readonly created: false;
      readonly file: string;
      readonly valid: boolean;
      /** The file was readable or writable by others (its mode then), made owner-only (0600) again. */
      readonly openMode?: string;
    };

/** The key file could not be read or written (the error of Redis's part is thrown as it is). */
export class AdminKeyFileError extends Error {
  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    super(`${file}: ${(cause as Error).message}`, { cause });
  }
}

/** `f`, its error thrown as an AdminKeyFileError naming `file`. */
function onFile<T>(file: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw err instanceof AdminKeyFileError ? err : new AdminKeyFileError(file, err);
  }
}

/**
 * The two-command start with keys on: the first start makes an admin key for the workspace
 * `default` and stores it at `<DATA_DIR>/admin-key`, readable by its owner only (0600). A later
 * start finds the file and makes none: a key revoked on purpose is not brought back (the outcome
 * says whether the stored key still works). Two processes starting on one DATA_DIR at once store
 * one key: the key is written to a file of its own first and linked in under the name only if none
 * is there (so the file is never seen empty), and the loser revokes the key it made. A blank file
 * (left by a start killed while writing it) holds no key: it is replaced, where the start used to
 * make and revoke keys for ever; moved aside first, then the key linked in as above, so that of
 * starts racing on it one stores its key (each renamed its own over it: one key stayed valid but
 * stored nowhere).
 */
export async function ensureAdminKey(redis: RedisClient, dataDir: string): Promise<AdminKeyOutcome> {
  const file = path.join(dataDir, ADMIN_KEY_FILE);
  const stored = readKey(file);
  if (stored !== undefined && stored !== '') {
    const checked = await new ApiKeyVerifier(redis, 0).check(stored, WORKSPACE);
    // Owner-only, as made (a copy or a restore may have opened it up), as the Redis passwords are.
    const mode = onFile(file, () => statSync(file).mode & 0o777);
    if (mode & 0o077) onFile(file, () => chmodSync(file, 0o600));
    return {
      created: false,
      file,
      valid: checked.ok && checked.key.role === 'admin',
      ...(mode & 0o077 ? { openMode: `0${mode.toString(8)}` } : {}),
    };
  }
  onFile(file, () => makeDirs(path.resolve(dataDir), 0o700));
  const { key, info } = await createApiKey(redis, {
    workspace: WORKSPACE,
    role: 'admin',
    name: 'first start (DATA_DIR/admin-key)',
  });
  const written = asideName(file, '.new');
  let outcome: 'stored' | 'taken';
  try {
    outcome = onFile(file, () => storeKey(file, written, key));
  } catch (err) {
    // Not kept anywhere: a key nobody can read would stay valid for ever.
    await revokeApiKey(redis, WORKSPACE, info.keyId).catch(() => {});
    throw err;
  }
  if (outcome === 'taken') {
    // Another start stored its key first (or the file went meanwhile): that one is read.
    await revokeApiKey(redis, WORKSPACE, info.keyId);
    return ensureAdminKey(redis, dataDir);
  }
  return { created: true, key, file };
}

/**
 * Writes `key` to `written` (0600), then links it in as `file` if there is none, or in place of a
 * blank one; 'taken' when another key is there.
 */
function storeKey(file: string, written: string, key: string): 'stored' | 'taken' {
  rmSync(written, { force: true });
  try {
    const fd = openSync(written, 'w', 0o600);
    try {
      writeSync(fd, `${key}\n`);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(written, file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A file system without hard links: created exclusively, as it was before links.
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP')
        return createExclusively(file, key);
      if (code !== 'EEXIST') throw err;
      if (readKey(file) !== '' || moveBlankAside(file) === 'taken') return 'taken';
      // Linked in only if no other start did it first (renamed over, both stored and one was lost).
      try {
        linkSync(written, file);
      } catch (again) {
        if ((again as NodeJS.ErrnoException).code === 'EEXIST') return 'taken';
        throw again;
      }
    }
    return 'stored';
  } finally {
    rmSync(written, { force: true });
  }
}

/** `key` written to `file` created exclusively (0600); 'taken' when one is there with a key. */
function createExclusively(file: string, key: string): 'stored' | 'taken' {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (readKey(file) !== '' || moveBlankAside(file) === 'taken') return 'taken';
    try {
      fd = openSync(file, 'wx', 0o600);
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code === 'EEXIST') return 'taken';
      throw again;
    }
  }
  try {
    writeSync(fd, `${key}\n`);
  } finally {
    closeSync(fd);
  }
  return 'stored';
}

/**
 * Takes the blank `file` out of the way, for a key to be put there exclusively: moved to a name of
 * this process's own (of starts racing on it, one moves it; to the others it is gone). 'taken' when
 * what it moved holds a key, stored by another start since this one read the file blank: put back.
 */
function moveBlankAside(file: string): 'moved' | 'taken' {
  const aside = asideName(file, '.blank');
  try {
    renameSync(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'moved';
    throw err;
  }
  try {
    if (readKey(aside) === '') return 'moved';
    try {
      linkSync(aside, file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A file system without hard links: put back by name.
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') renameSync(aside, file);
      // EEXIST: a third start stored its key in the moment the file was away; that one stays.
      else if (code !== 'EEXIST') throw err;
    }
    return 'taken';
  } finally {
    rmSync(aside, { force: true });
  }
}

/** The key in `file`: undefined when there is no file, '' when it is blank. */
function readKey(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AdminKeyFileError(file, err);
  }
}

/** Logs what the start found or made (before the API listens: the file is there by then). */
export function logAdminKey(outcome: AdminKeyOutcome, log: Logger): void {
  if (!outcome.created) {
    if (outcome.openMode !== undefined)
      log.warn(
        { file: outcome.file, mode: outcome.openMode },
        'the admin key file was readable by other users (its mode is now 0600): anyone who read it holds an admin key of workspace default; if that may have happened, make another and revoke it (docs/SECURITY.md, "Rotating keys")',
      );
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
