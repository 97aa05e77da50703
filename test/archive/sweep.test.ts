/**
 * A writer killed between writing a segment's temporary file and unlinking it leaves the file
 * behind; the archiver sweeps such leftovers when it takes a workspace. Only old temporary files
 * go: a fresh one (a writer at work) and the segments themselves stay.
 */
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DiskArchive } from '../../src/archive/store.ts';

describe('archive leftovers', () => {
  let root = '';
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('removes old temporary files only', async () => {
    root = await mkdtemp(path.join(tmpdir(), 'sb-sweep-'));
    const store = new DiskArchive(root);
    await store.put('ws', 'events', '000000000000-a', Buffer.from('segment'));
    const dir = path.join(root, 'ws', 'events');
    const old = path.join(dir, '.000000000001-b.123.abcd.tmp');
    const fresh = path.join(dir, '.000000000001-b.456.ef01.tmp');
    await writeFile(old, 'half');
    await writeFile(fresh, 'half');
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(old, hourAgo, hourAgo);
    await mkdir(path.join(root, 'ws', 'snapshots'), { recursive: true });
    const oldSnap = path.join(root, 'ws', 'snapshots', '.x.snapshot.1.aa.tmp');
    await writeFile(oldSnap, 'half');
    await utimes(oldSnap, hourAgo, hourAgo);

    expect(await store.sweep('ws', 600_000)).toBe(2);
    expect((await readdir(dir)).sort()).toEqual(['.000000000001-b.456.ef01.tmp', '000000000000-a']);
    expect(await readdir(path.join(root, 'ws', 'snapshots'))).toEqual([]);
    expect(await store.list('ws', 'events')).toEqual(['000000000000-a']);
    // A workspace with no archive yet: nothing to do.
    expect(await store.sweep('none', 600_000)).toBe(0);
  });
});
