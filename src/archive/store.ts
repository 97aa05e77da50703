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
   * Whether the stream holds the segment `name`, without listing them all. Optional: a store
   * without it is listed instead.
   */
  has?(workspace: string, stream: LogStream, name: string): Promise<boolean>;
  /**
   * What tells this file from another stored under the same name since (a disk store: its inode,
   * size and modification time): a segment moved aside and written again under its name (after
   * Redis lost entries the archive held) is another file. Optional: a store without it is taken
   * never to hold another file under a name once read; undefined when the name holds none.
   */
  version?(workspace: string, stream: LogStream, name: string): Promise<string | undefined>;
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
 * The folder of a workspace in a disk archive: its name with each capital letter written as `+`
 * and the letter in lower case (`Acme` → `+acme`, `aCME` → `a+c+m+e`; a name without capitals is
 * its own folder). Workspace names are case-sensitive (`Acme` and `acme` are two) but a file system
 * that ignores case (macOS, Windows) would make their folders one: these never differ in case alone,
 * and no workspace name holds a `+`, so each folder is one workspace's.
 */
export function workspaceFolder(workspace: string): string {
  return workspace.replace(/[A-Z]/g, (c) => `+${c.toLowerCase()}`);
}

/** How long an answer of no folder of the earlier naming is kept before the root is listed again. */
export const LEGACY_LOOK_AGAIN_MS = 1000;

/**
 * The archive on a local (or shared) file system: `<root>/<workspaceFolder(workspace)>/<stream>/<name>`.
 * An archive written before folders were so named keeps a workspace with capitals in a folder of
 * its very name (`<root>/Acme`): that folder is still read, as a part of the workspace's folder
 * (segments and snapshots are never written there again, and never under a name it holds). A
 * segment is written to a temporary file, fsync'd, linked to its name (link fails when the name
 * exists, so a segment is never replaced) and the directory fsync'd: after `put`, the segment is
 * whole under its name or not there at all.
 */
export class DiskArchive implements ArchiveStore {
  /**
   * Per workspace with capitals: its folder of the earlier naming, when the root holds one; and
   * when its look settled: an answer of none (or a root that could not be listed) is looked for
   * again LEGACY_LOOK_AGAIN_MS after.
   */
  private readonly legacy = new Map<string, { found: Promise<string | undefined>; settledAt?: number }>();

  constructor(readonly root: string) {}

  get where(): string {
    return this.root;
  }

  /**
   * The folder an archive written before `workspaceFolder` kept the workspace in (`<root>/Acme`),
   * if the root lists one of exactly that name (on a file system that ignores case, `<root>/acme`
   * is another workspace's, and is not it). Nothing makes one now, so one found is kept; none is
   * looked for again after a while: the root may be a file system not mounted yet (an empty mount
   * point lists nothing), or the folder restored from a copy while the process runs.
   */
  private async legacyRoot(workspace: string): Promise<string | undefined> {
    if (workspaceFolder(workspace) === workspace) return undefined;
    for (;;) {
      const known = this.legacy.get(workspace);
      if (!known) break;
      // A look still running when asked: its answer is this caller's, whatever it took.
      const running = known.settledAt === undefined;
      const found = await known.found;
      if (found !== undefined || running || performance.now() - known.settledAt! < LEGACY_LOOK_AGAIN_MS)
        return found;
      // Another caller may have started the next look meanwhile: shared, not one listing each.
      if (this.legacy.get(workspace) === known) break;
    }
    const look: { found: Promise<string | undefined>; settledAt?: number } = {
      found: readdir(this.root).then(
        (names) => (names.includes(workspace) ? path.join(this.root, workspace) : undefined),
        () => undefined,
      ),
    };
    void look.found.then(() => {
      look.settledAt = performance.now();
    });
    this.legacy.set(workspace, look);
    return look.found;
  }

  /** The workspace's folder for `sub` (a stream, or `snapshots`), and the earlier one if there is one. */
  private async dirs(workspace: string, sub: string): Promise<{ dir: string; legacy: string | undefined }> {
    const old = await this.legacyRoot(workspace);
    return {
      dir: path.join(this.root, workspaceFolder(workspace), sub),
      legacy: old === undefined ? undefined : path.join(old, sub),
    };
  }

  async put(workspace: string, stream: LogStream, name: string, bytes: Buffer): Promise<void> {
    await this.putFile(await this.dirs(workspace, stream), name, bytes);
  }

  /** Snapshots live next to the streams' folders: `<root>/<workspace folder>/snapshots/<name>`. */
  async putSnapshot(workspace: string, name: string, bytes: Buffer): Promise<void> {
    await this.putFile(await this.dirs(workspace, 'snapshots'), name, bytes);
  }

  async listSnapshots(workspace: string): Promise<string[]> {
    return listDirs(await this.dirs(workspace, 'snapshots'));
  }

  async readSnapshot(workspace: string, name: string): Promise<Buffer> {
    return readIn(await this.dirs(workspace, 'snapshots'), name);
  }

  /**
   * Temporary files (`.<name>.<pid>.<random>.tmp`) left by a process killed between writing one
   * and unlinking it: nothing reads them, and the segment they were for is written again whole.
   * Only those older than `olderThanMs`, so a writer at work (another archiver handing over its
   * lease) keeps its own.
   */
  async sweep(workspace: string, olderThanMs: number): Promise<number> {
    let removed = 0;
    const dirs: string[] = [];
    for (const sub of ['commands', 'events', 'snapshots']) {
      const { dir, legacy } = await this.dirs(workspace, sub);
      dirs.push(dir);
      if (legacy !== undefined) dirs.push(legacy);
    }
    for (const dir of dirs) {
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
  private async putFile(
    { dir, legacy }: { dir: string; legacy: string | undefined },
    name: string,
    bytes: Buffer,
  ): Promise<void> {
    if (legacy !== undefined) {
      const held = path.join(legacy, name);
      if (
        await stat(held).then(
          () => true,
          () => false,
        )
      )
        throw new SegmentExistsError(held);
    }
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
    try {
      await f.close();
    } catch (err) {
      // A write error first told at close (NFS): the file may not hold what was written.
      await unlink(temp).catch(() => {});
      throw err;
    }
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

  async list(workspace: string, stream: LogStream): Promise<string[]> {
    return listDirs(await this.dirs(workspace, stream));
  }

  async read(workspace: string, stream: LogStream, name: string): Promise<Buffer> {
    return readIn(await this.dirs(workspace, stream), name);
  }

  async version(workspace: string, stream: LogStream, name: string): Promise<string | undefined> {
    const { dir, legacy } = await this.dirs(workspace, stream);
    for (const d of legacy === undefined ? [dir] : [dir, legacy]) {
      const s = await stat(path.join(d, name), { bigint: true }).then(
        (s) => s,
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
          throw err;
        },
      );
      if (s) return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}`;
    }
    return undefined;
  }

  async has(workspace: string, stream: LogStream, name: string): Promise<boolean> {
    const { dir, legacy } = await this.dirs(workspace, stream);
    for (const d of legacy === undefined ? [dir] : [dir, legacy]) {
      const there = await stat(path.join(d, name)).then(
        (s) => s.isFile(),
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return false;
          throw err;
        },
      );
      if (there) return true;
    }
    return false;
  }

  /** Creates the directory (each new level owner-only, 0700) and makes each new level durable in its parent. */
  private async ensureDir(dir: string): Promise<void> {
    let made: string | undefined;
    try {
      made = await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw (await mkdirCause(dir)) ?? err;
    }
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

/** The names in a workspace's folder and in its earlier one, sorted, each once. */
async function listDirs({ dir, legacy }: { dir: string; legacy: string | undefined }): Promise<string[]> {
  const names = await listDir(dir);
  if (legacy === undefined) return names;
  return [...new Set([...(await listDir(legacy)), ...names])].sort();
}

/** A file of a workspace's folder, or of its earlier one when that holds it instead. */
async function readIn(
  { dir, legacy }: { dir: string; legacy: string | undefined },
  name: string,
): Promise<Buffer> {
  try {
    return await readFile(path.join(dir, name));
  } catch (err) {
    if (legacy === undefined || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return readFile(path.join(legacy, name));
  }
}

/**
 * Why `dir` cannot be made: a recursive mkdir reports ENOENT whatever stops it (a read-only file
 * system, EROFS, reads as a parent missing), so the first missing level is made on its own for its
 * own error. Undefined when that level could be made after all.
 */
async function mkdirCause(dir: string): Promise<Error | undefined> {
  let d = dir;
  while (path.dirname(d) !== d) {
    const parentThere = await stat(path.dirname(d)).then(
      () => true,
      () => false,
    );
    if (parentThere) break;
    d = path.dirname(d);
  }
  // A level made here after all (room freed, the file system writable again) is made durable in
  // its parent, as ensureDir makes every level it makes.
  return mkdir(d, { mode: 0o700 }).then(
    () => syncDir(path.dirname(d)).then(() => undefined),
    (err: Error) => ((err as NodeJS.ErrnoException).code === 'EEXIST' ? undefined : err),
  );
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, constants.O_RDONLY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
