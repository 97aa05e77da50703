/**
 * One process at a time on a directory: it claims the directory by creating a pid file there
 * exclusively, and removes it when it exits. The launcher claims its data directory this way
 * (`launcher.pid`, src/topology/local/data-dir-lock.ts), the main command the DATA_DIR of its
 * private redis-server (`switchboard.pid`, src/app/data-dir.ts).
 */
import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

export type PidFileClaim =
  /** Claimed: the file goes when this process exits, or with `release()`. */
  | { readonly release: () => void }
  /** Held by the process `heldBy`, which still runs. */
  | { readonly heldBy: number };

/**
 * Creates `file` holding `record` (this process's pid first, then anything the holder check
 * reads), written aside and linked into place so that it appears whole or not at all. A file
 * already there whose holder no longer holds it (`holds(pid, fields)` false: a process gone,
 * killed outright, or a pid another program now has) is taken over. `holds` is asked about this
 * process's own pid too: a file with it was left by an earlier run with the same pid (as a
 * container's first process has), or written by a process of another PID namespace with the same
 * pid (two containers on one volume), which only the record can tell. Errors writing the file are
 * thrown.
 */
/**
 * A name beside `file` for a copy this process writes before moving or linking it in: the pid and
 * a random part, since processes in containers sharing one volume each have pid 1, and one would
 * remove or rewrite the file another is about to put in place (test/config/admin-key-edges-1.test.ts).
 */
export function asideName(file: string, suffix = ''): string {
  return `${file}.${process.pid}.${randomBytes(6).toString('hex')}${suffix}`;
}

export function claimPidFile(
  file: string,
  record: string,
  holds: (pid: number, fields: readonly string[]) => boolean,
): PidFileClaim {
  const aside = asideName(file);
  try {
    // In the try: one that cannot be written whole (a full disk) is not left behind.
    writeFileSync(aside, record, { mode: 0o644, flag: 'wx' });
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(aside, file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        let held: string;
        try {
          held = readFileSync(file, 'utf8');
        } catch {
          continue; // removed meanwhile: try again
        }
        const [pid = '', ...fields] = held.trim().split(' ');
        const holder = Number(pid);
        if (Number.isInteger(holder) && holder > 0 && holds(holder, fields)) return { heldBy: holder };
        rmSync(file, { force: true }); // its holder is gone: take it over
        continue;
      }
      const release = () => {
        process.off('exit', release);
        try {
          if (readFileSync(file, 'utf8') === record) rmSync(file, { force: true });
        } catch {
          /* already gone */
        }
      };
      process.once('exit', release);
      return { release };
    }
  } finally {
    rmSync(aside, { force: true });
  }
  throw new Error(`could not claim ${file}: it keeps changing; try again`);
}
