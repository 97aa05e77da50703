/**
 * One launcher per data directory (`npm run topology`): the first claims it by creating
 * `<data dir>/launcher.pid` (its pid, exclusively), and removes the file when it exits. A second
 * launcher on the same directory is refused before it touches anything there: it would otherwise
 * delete the running cluster with --fresh, start a second redis-server on every node's directory
 * and AOF, remove the running HAProxies' pidfiles and sockets (--vrrp), and write its own
 * status.json over the running one's. A file left by a launcher that was killed (its pid no longer
 * runs the launcher) is taken over.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { processExists } from '../child-processes.ts';
import { makeDirs } from '../make-dirs.ts';
import { claimPidFile } from '../pid-file.ts';

export function lockFile(dataDir: string): string {
  return path.join(dataDir, 'launcher.pid');
}

/** Raised when another launcher runs on the data directory. */
export class DataDirTaken extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `another launcher (pid ${pid}) runs on the data directory ${dataDir}: stop it first (Ctrl-C in its terminal, or kill -INT ${pid}; one that is stopping exits by itself), or give this one another --data-dir`,
    );
  }
}

/** True while `pid` is a running launcher (a pid reused by another program does not count). */
function isLauncher(pid: number): boolean {
  if (pid === process.pid || !processExists(pid)) return false; // its own: left by an earlier run
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('launch');
  } catch {
    return true; // no /proc: a live pid is taken for the launcher
  }
}

/**
 * Claims `dataDir` for this process (creating it if needed); throws DataDirTaken if another
 * launcher runs there. The claim goes when this process exits, or with `release()`.
 */
export function claimDataDir(dataDir: string): { release(): void } {
  // Owner-only when made here: the cluster's AOF, its passwords and the admin key go in it.
  makeDirs(dataDir, 0o700);
  const claim = claimPidFile(lockFile(dataDir), `${process.pid}\n`, isLauncher);
  if ('heldBy' in claim) throw new DataDirTaken(dataDir, claim.heldBy);
  return claim;
}
