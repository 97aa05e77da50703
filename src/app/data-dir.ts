/**
 * The main command's claim on DATA_DIR while it runs its private redis-server there: one process
 * at a time (`switchboard.pid`, src/topology/pid-file.ts). A second main command on the same
 * DATA_DIR would start another redis-server on the same AOF (two Redis states appending to the
 * same files) and, on its stop, remove the first's private-redis.json, where the tools find the
 * running Redis.
 */
import { accessSync, constants, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { processExists } from '../topology/child-processes.ts';
import { makeDirs } from '../topology/make-dirs.ts';
import { claimPidFile } from '../topology/pid-file.ts';
import { credentialsFile, privateRedisFile } from '../topology/redis-server.ts';
import { credentialsTextProblem } from '../topology/redis-users.ts';

/** The fields of /proc/<pid>/stat after the command name (state first), or undefined (no /proc). */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** When a process started (Linux: field 22 of /proc/<pid>/stat), to tell it from a reused pid. */
const startedAt = (pid: number): string | undefined => procStat(pid)?.[19];

/** Whether the process that wrote a claim still runs (not a zombie, nor another that got its pid). */
function holds(pid: number, [started]: readonly string[]): boolean {
  if (!processExists(pid)) return false;
  const stat = procStat(pid);
  if (stat === undefined) return true; // no /proc: a live pid is taken for the holder
  return !/^[ZX]$/.test(stat[0] ?? '') && (!started || stat[19] === started);
}

/**
 * Claims DATA_DIR (made owner-only if it does not exist) for this process: the claim goes when it
 * exits. A file left by a process that no longer runs (killed outright) is taken over. The
 * problem, naming DATA_DIR and what to do, or undefined once claimed.
 */
export function claimPrivateDataDir(dataDir: string): string | undefined {
  const dir = path.resolve(dataDir);
  const failed = (what: string, err: unknown) =>
    `DATA_DIR: ${dir} ${what} (${(err as Error).message}); give a directory this user can write, or one that can be made`;
  try {
    // Owner-only when made here: the AOF, the passwords and the admin key go in it.
    makeDirs(dir, 0o700);
  } catch (err) {
    return failed('cannot be made', err);
  }
  const credentials = credentialsProblem(dir);
  if (credentials !== undefined) return credentials;
  try {
    const claim = claimPidFile(
      path.join(dir, 'switchboard.pid'),
      `${process.pid} ${startedAt(process.pid) ?? ''}\n`,
      holds,
    );
    if (!('heldBy' in claim)) return undefined;
    const pid = claim.heldBy;
    return `DATA_DIR: ${dir} is in use by another Switchboard (pid ${pid}) that runs its private redis-server there; stop it first (kill ${pid}), give this one another DATA_DIR, or set REDIS_URL to use a Redis of your own`;
  } catch (err) {
    return failed('cannot be written', err);
  }
}

/**
 * The private redis-server's passwords (`redis-credentials.json`), when the file is there: one that
 * is not JSON (a start killed while writing it, a full disk) is named with what to do, where the
 * start ended with a SyntaxError's stack trace; so is one that lacks a password, which the start
 * replaced without a word (a client given the old ones was then refused). Removing it is safe: the next start makes new
 * passwords and writes the server's ACL file from them, and the data (the AOF) stays.
 */
function credentialsProblem(dir: string): string | undefined {
  const file = credentialsFile(dir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return `DATA_DIR: ${file} cannot be read (${(err as Error).message}); make it a file this user can read, or remove it to have new passwords made for the private redis-server (the data in DATA_DIR is kept)`;
  }
  const why = credentialsTextProblem(text);
  if (why === undefined) return undefined;
  return `DATA_DIR: ${file} cannot be read as the private redis-server's passwords (${why}); remove it and start again: new passwords are made for the private redis-server, and the data in DATA_DIR is kept`;
}

/**
 * With the archiver role, ARCHIVE_DIR made (owner-only, as the archive makes its folders) at start:
 * one that cannot be (a file where a folder must be) is the problem naming ARCHIVE_DIR, where the
 * archiver would start and retry its passes for ever with warnings only.
 */
export function archiveDirProblem(archiveDir: string): string | undefined {
  const dir = path.resolve(archiveDir);
  try {
    makeDirs(dir, 0o700);
    accessSync(dir, constants.W_OK);
    return undefined;
  } catch (err) {
    return `ARCHIVE_DIR: ${dir} cannot be made or written (${(err as Error).message}); give a directory this user can write (by default DATA_DIR/archive)`;
  }
}

/**
 * Says that the private redis-server of `dataDir` runs no more (its private-redis.json, where the
 * tools look for it, removed), for an exit that does not wait for its stop.
 */
export function forgetPrivateRedis(dataDir: string): void {
  rmSync(privateRedisFile(path.resolve(dataDir)), { force: true });
}
