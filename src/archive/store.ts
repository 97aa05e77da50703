import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { LogStream } from './segment.ts';

/**
 * Where segments are kept: small on purpose, so an object store can be added next to the disk.
 * Names are opaque to the store; it lists them in lexicographic order (segment names sort in
 * chain order, see segment.ts).
 */
export interface ArchiveStore {
  /** What the store is, for messages (a directory, a bucket). */
  readonly where: string;
  /**
   * Stores a segment durably: when the promise resolves, the segment survives a crash of the
   * process and of the machine. Never replaces a segment: a name already stored is an error
   * (`SegmentExistsError`).
   */
  put(workspace: string, stream: LogStream, name: string, bytes: Buffer): Promise<void>;
  /** The names of a stream's segments, in order (none: an empty list). */
  list(workspace: string, stream: LogStream): Promise<string[]>;
  read(workspace: string, stream: LogStream, name: string): Promise<Buffer>;
  /**
   * Stores a state snapshot (src/archive/snapshots.ts) as durably as a segment; never replaces
   * one (`SegmentExistsError`).
   */
  putSnapshot(workspace: string, name: string, bytes: Buffer): Promise<void>;
  /** The names of a workspace's snapshots, in order (none: an empty list). */
  listSnapshots(workspace: string): Promise<string[]>;
  readSnapshot(workspace: string, name: string): Promise<Buffer>;
  /**
   * Removes what a writer that died mid-`put` left behind (never a stored segment or snapshot), if
   * older than `olderThanMs`; returns how many. Optional: a store without leftovers has none.
   */
  sweep?(workspace: string, olderThanMs: number): Promise<number>;
}

export class SegmentExistsError extends Error {
  constructor(where: string) {
    super(`${where} already exists: another archiver wrote this segment (is the lease held twice?)`);
  }
}

/**
 * The archive on a local (or shared) file system: `<root>/<workspace>/<stream>/<name>`. A
 * segment is written to a temporary file, fsync'd, linked to its name (link fails when the name
 * exists, so a segment is never replaced) and the directory fsync'd: after `put`, the segment is
 * whole under its name or not there at all.
 */
export class DiskArchive implements ArchiveStore {
  constructor(readonly root: string) {}

  get where(): string {
    return this.root;
  }

  private dir(workspace: string, stream: LogStream): string {
    return path.join(this.root, workspace, stream);
  }

  async put(workspace: string, stream: LogStream, name: string, bytes: Buffer): Promise<void> {
    await this.putFile(this.dir(workspace, stream), name, bytes);
  }

  /** Snapshots live next to the streams' folders: `<root>/<workspace>/snapshots/<name>`. */
  putSnapshot(workspace: string, name: string, bytes: Buffer): Promise<void> {
    return this.putFile(path.join(this.root, workspace, 'snapshots'), name, bytes);
  }

  listSnapshots(workspace: string): Promise<string[]> {
    return listDir(path.join(this.root, workspace, 'snapshots'));
  }

  readSnapshot(workspace: string, name: string): Promise<Buffer> {
    return readFile(path.join(this.root, workspace, 'snapshots', name));
  }

  /**
   * Temporary files (`.<name>.<pid>.<random>.tmp`) left by a process killed between writing one
   * and unlinking it: nothing reads them, and the segment they were for is written again whole.
   * Only those older than `olderThanMs`, so a writer at work (another archiver handing over its
   * lease) keeps its own.
   */
  async sweep(workspace: string, olderThanMs: number): Promise<number> {
    let removed = 0;
    for (const sub of ['commands', 'events', 'snapshots']) {
      const dir = path.join(this.root, workspace, sub);
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        continue;
      }
      for (const n of names) {
        if (!n.startsWith('.') || !n.endsWith('.tmp')) continue;
        const file = path.join(dir, n);
        const st = await stat(file).catch(() => undefined);
        if (
          st &&
          Date.now() - st.mtimeMs > olderThanMs &&
          (await unlink(file).then(
            () => true,
            () => false,
          ))
        )
          removed++;
      }
    }
    return removed;
  }

  /** Temporary file, fsync, link to its name (never replacing one), fsync of the directory. */
  private async putFile(dir: string, name: string, bytes: Buffer): Promise<void> {
    await this.ensureDir(dir);
    const final = path.join(dir, name);
    const temp = path.join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    // Owner-only: a segment holds the contacts' attributes and who worked on what, for good.
    const f = await open(temp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
    try {
      await f.writeFile(bytes);
      await f.sync();
    } catch (err) {
      // A file system full (or failing): the part written would take room on every retry.
      await f.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw err;
    }
    await f.close();
    try {
      await link(temp, final);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new SegmentExistsError(final);
      throw err;
    } finally {
      await unlink(temp).catch(() => {});
    }
    await syncDir(dir);
  }

  list(workspace: string, stream: LogStream): Promise<string[]> {
    return listDir(this.dir(workspace, stream));
  }

  read(workspace: string, stream: LogStream, name: string): Promise<Buffer> {
    return readFile(path.join(this.dir(workspace, stream), name));
  }

  /** Creates the directory (each new level owner-only, 0700) and makes each new level durable in its parent. */
  private async ensureDir(dir: string): Promise<void> {
    const made = await mkdir(dir, { recursive: true, mode: 0o700 });
    if (made === undefined) return;
    // `made` is the first directory created: sync it and every level below it, and its parent.
    for (let d = dir; ; d = path.dirname(d)) {
      await syncDir(d);
      if (d === made || d === path.dirname(d)) break;
    }
    await syncDir(path.dirname(made));
  }
}

/** The names in a directory, temporary files aside, sorted; none when it does not exist. */
async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, constants.O_RDONLY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
