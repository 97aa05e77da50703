/**
 * The disk archive's own edges, without Redis:
 * - a workspace's folder of the earlier naming (`<root>/Acme`) that the root did not list when first
 *   looked for (the archive's file system not mounted yet, or the folder restored meanwhile) is
 *   found once it is there: the answer "none" is not kept for good;
 * - a temporary file whose close fails after its fsync (a write error first told at close, as on
 *   NFS) is removed, as one whose write or fsync fails is.
 */
import { mkdtempSync } from 'node:fs';
import fsp, { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DiskArchive, LEGACY_LOOK_AGAIN_MS } from '../../src/archive/store.ts';
import { sleep } from '../support/wait.ts';

const root = mkdtempSync(path.join(tmpdir(), 'sb-disk-store-edges-1-'));
afterAll(() => rm(root, { recursive: true, force: true }));

describe('the disk archive', () => {
  it('finds a folder of the earlier naming that appears after it was first looked for, listing the root once at a time', async () => {
    const dir = path.join(root, 'legacy');
    await mkdir(dir);
    const archive = new DiskArchive(dir);
    // The root's listings counted (the archive's `readdir`, a live binding of node:fs/promises).
    const real = fsp.readdir;
    let listings = 0;
    fsp.readdir = ((...args: Parameters<typeof real>) => {
      if (args[0] === dir) listings++;
      return real(...args);
    }) as typeof real;
    syncBuiltinESMExports();
    try {
      expect(await archive.list('Acme', 'events')).toEqual([]);
      expect(listings).toBe(1);
      // Within the second: the answer kept.
      expect(await archive.list('Acme', 'events')).toEqual([]);
      expect(listings).toBe(1);
      // The folder appears (a file system mounted late, a folder restored).
      await mkdir(path.join(dir, 'Acme', 'events'), { recursive: true });
      await writeFile(path.join(dir, 'Acme', 'events', '0000000000-1-0.jsonl'), 'x');
      await sleep(LEGACY_LOOK_AGAIN_MS + 50);
      // Five reads at once after the second: one listing for all.
      const lists = await Promise.all(Array.from({ length: 5 }, () => archive.list('Acme', 'events')));
      expect(lists).toEqual(Array.from({ length: 5 }, () => ['0000000000-1-0.jsonl']));
      expect(listings).toBe(2);
      // Found, it is kept: no listing of the root again, however long after.
      await sleep(LEGACY_LOOK_AGAIN_MS + 50);
      expect(await archive.list('Acme', 'events')).toEqual(['0000000000-1-0.jsonl']);
      expect(listings).toBe(2);
    } finally {
      fsp.readdir = real;
      syncBuiltinESMExports();
    }
  });

  it('removes its temporary file when closing it fails after the fsync', async () => {
    const dir = path.join(root, 'close');
    await mkdir(dir);
    const archive = new DiskArchive(dir);
    // The archive's `open` (a live binding of node:fs/promises) made to hand out, for the temporary
    // file, a handle whose close fails once, after closing the file.
    const real = fsp.open;
    let failNext = true;
    fsp.open = (async (...args: Parameters<typeof real>) => {
      const h = await real(...args);
      // The segment's temporary file only (the folders are opened for their fsync too).
      if (!String(args[0]).endsWith('.tmp')) return h;
      const close = h.close.bind(h);
      h.close = async () => {
        await close();
        if (failNext) {
          failNext = false;
          throw Object.assign(new Error('EIO: i/o error, close'), { code: 'EIO' });
        }
      };
      return h;
    }) as typeof real;
    syncBuiltinESMExports();
    try {
      await expect(archive.put('w', 'events', '0000000000-1-0.jsonl', Buffer.from('x'))).rejects.toThrow(
        /EIO/,
      );
    } finally {
      fsp.open = real;
      syncBuiltinESMExports();
    }
    expect(failNext).toBe(false);
    expect(await readdir(path.join(dir, 'w', 'events'))).toEqual([]);
  });
});
