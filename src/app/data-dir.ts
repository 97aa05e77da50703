/**
 * The main command's claim on DATA_DIR while it runs its private redis-server there: one process
 * at a time (`switchboard.pid`, src/topology/pid-file.ts). A second main command on the same
 * DATA_DIR would start another redis-server on the same AOF (two Redis states appending to the
 * same files) and, on its stop, remove the first's private-redis.json, where the tools find the
 * running Redis.
 */
import { accessSync, constants, readFileSync, readlinkSync, rmSync, statSync, utimesSync } from 'node:fs';
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

/**
 * The PID namespace this process runs in, on this boot (`<boot id>/<namespace inode>`): a pid means
 * something only there. Each container has one of its own; undefined without /proc.
 */
function pidNamespace(): string | undefined {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
    return ns === undefined ? undefined : `${boot}/${ns}`;
  } catch {
    return undefined;
  }
}

/** How often the holder of a claim refreshes it (its mtime), for starts that cannot see it. */
const REFRESH_MS = 2_000;
/** A claim of another PID namespace not refreshed for this long is left by a process gone. */
const LAPSE_MS = 7_000;
/**
 * How long a claim of another PID namespace is watched at least, however old its time looks: a
 * holder whose clock runs behind this one (a volume shared over the network), or one that took the
 * claim a moment ago and has not refreshed it yet, is seen refreshing it within this.
 */
const MIN_WATCH_MS = 2.5 * REFRESH_MS;

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Whether the claim `file` is still refreshed by its holder, watched until it is (held) or has not
 * been for LAPSE_MS (its holder is gone: a container killed outright), at most that long.
 */
function refreshed(file: string): boolean {
  const mtime = () => {
    try {
      return statSync(file).mtimeMs;
    } catch {
      return undefined; // removed: its holder stopped
    }
  };
  const first = mtime();
  if (first === undefined) return false;
  // Watched from now, or from its last refresh when that was recent (a clock of its own: a volume
  // shared over the network may be another host's).
  const since = Math.max(0, Math.min(LAPSE_MS - MIN_WATCH_MS, Date.now() - first));
  for (let waited = since; waited < LAPSE_MS; waited += 250) {
    pause(250);
    const now = mtime();
    if (now === undefined) return false;
    if (now !== first) return true;
  }
  return false;
}

/** Whether the process that wrote a claim still runs (not a zombie, nor another that got its pid). */
function holds(pid: number, [started]: readonly string[]): boolean {
  if (pid === process.pid || !processExists(pid)) return false; // its own: left by an earlier run
  const stat = procStat(pid);
  if (stat === undefined) return true; // no /proc: a live pid is taken for the holder
  return !/^[ZX]$/.test(stat[0] ?? '') && (!started || stat[19] === started);
}

/**
 * Claims DATA_DIR (made owner-only if it does not exist) for this process: the claim goes when it
 * exits. A file left by a process that no longer runs (killed outright) is taken over; one written
 * in another PID namespace, once it has not been refreshed for LAPSE_MS (waited for here). The
 * problem, naming DATA_DIR and what to do, or undefined once claimed.
 */
export function claimPrivateDataDir(dataDir: string): string | undefined {
  const dir = path.resolve(dataDir);
  const failed = (what: string, err: unknown) =>
    (err as NodeJS.ErrnoException).code === 'ENOSPC'
      ? `DATA_DIR: ${dir} ${what} (${(err as Error).message}); free space on its file system (df ${dir}), or give a DATA_DIR on another`
      : `DATA_DIR: ${dir} ${what} (${(err as Error).message}); give a directory this user can write, or one that can be made`;
  try {
    // Owner-only when made here: the AOF, the passwords and the admin key go in it.
    makeDirs(dir, 0o700);
  } catch (err) {
    return failed('cannot be made', err);
  }
  const credentials = credentialsProblem(dir);
  if (credentials !== undefined) return credentials;
  try {
    const file = path.join(dir, 'switchboard.pid');
    const namespace = pidNamespace();
    const record = `${process.pid} ${startedAt(process.pid) ?? ''} ${namespace ?? ''}\n`;
    // A claim written in another PID namespace (another container on the same volume) names a pid
    // that means nothing here, maybe this process's own: its holder is known by its refreshes.
    let elsewhere = false;
    const claim = claimPidFile(file, record, (pid, fields) => {
      elsewhere = namespace !== undefined && !!fields[1] && fields[1] !== namespace;
      return elsewhere ? refreshed(file) : holds(pid, fields);
    });
    if (!('heldBy' in claim)) {
      // Its time now: linked in, the file keeps the time it was written, before any watch above.
      utimesSync(file, new Date(), new Date());
      setInterval(() => {
        try {
          if (readFileSync(file, 'utf8') === record) utimesSync(file, new Date(), new Date());
        } catch {
          /* gone: the process is exiting */
        }
      }, REFRESH_MS).unref();
      return undefined;
    }
    const pid = claim.heldBy;
    if (elsewhere)
      return `DATA_DIR: ${dir} is in use by another Switchboard (pid ${pid} of another PID namespace: another container on the same volume) that runs its private redis-server there; stop it first, give this one a DATA_DIR of its own (another volume), or set REDIS_URL to a Redis both use`;
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
