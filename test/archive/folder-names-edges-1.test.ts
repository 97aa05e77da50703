/**
 * Workspace names are case-sensitive (`Acme` and `acme` are two workspaces), but the disk archive
 * kept each in a folder of its very name, so on a file system that ignores case (macOS, Windows)
 * their segments and snapshots went into one folder: two chains of index 0 side by side, and
 * snapshot names of one met by the other's. Folders are now named by `workspaceFolder` (each capital
 * as `+` and the letter in lower case), which never differ in case alone; on Linux the collision is
 * shown by folding the folder names. An archive written before (a workspace with capitals in a
 * folder of its very name) is still read, and archiving goes on from it.
 */
import { mkdtempSync } from 'node:fs';
import { readdir, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { DiskArchive, workspaceFolder } from '../../src/archive/store.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { inProcessApi } from '../support/api.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'sb-folder-names-edges-1-'));
const api = inProcessApi([], { env: { ROLES: 'api', ARCHIVE_DIR: dir } });
afterAll(() => rm(dir, { recursive: true, force: true }));
const run = Date.now().toString(36);
const log = pino({ level: 'silent' });

const positions = (body: Record<string, unknown>) =>
  (body.events as { position: string }[]).map((e) => e.position);

describe('archive folders of workspaces whose names differ in case alone', () => {
  it('are distinct folders even where case is ignored, each holding its own workspace only', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'sb-folder-names-edges-1-case-'));
    try {
      const store = new DiskArchive(root);
      const names = ['Acme', 'acme', 'ACME', 'aCme', 'a-b', 'a_b', '-', '_A', '_a', 'Z9-_x'];
      for (const ws of names) {
        await store.put(ws, 'events', '0000000000-1-0.jsonl', Buffer.from(`${ws}\n`));
        await store.putSnapshot(ws, '000000000001-1-0.snapshot', Buffer.from(`${ws}\n`));
      }
      const folders = await readdir(root);
      // A file system that ignores case sees the lower-cased names: one folder per workspace.
      expect(new Set(folders.map((f) => f.toLowerCase())).size, folders.join(' ')).toBe(names.length);
      expect(new Set(names.map((w) => workspaceFolder(w).toLowerCase())).size).toBe(names.length);
      for (const ws of names) {
        expect(await store.list(ws, 'events')).toEqual(['0000000000-1-0.jsonl']);
        expect((await store.read(ws, 'events', '0000000000-1-0.jsonl')).toString()).toBe(`${ws}\n`);
        expect((await store.readSnapshot(ws, '000000000001-1-0.snapshot')).toString()).toBe(`${ws}\n`);
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('an archive written in a folder of the very name is still read, and archived on', async () => {
    const redis = api.running.redis;
    const ws = `Folder-Names-${run}`;
    const k = workspaceKeys(ws);
    await writeLog(redis, ws, { events: 300, agents: 4, seed: 7 });
    const all = ((await redis.xrange(k.events, '-', '+')) as StreamEntry[]).map((e) => e[0]);
    const opts = { segmentEntries: 50, everyMs: 10 };
    await new Archiver(redis, new DiskArchive(dir), log, { ...opts, retention: { count: 150 } }).drain(ws);

    // The archive as the earlier naming left it: the workspace's folder of its very name.
    const folder = workspaceFolder(ws);
    if (folder !== ws) await rename(path.join(dir, folder), path.join(dir, ws));
    const old = await readdir(path.join(dir, ws, 'events'));
    expect(old.length).toBeGreaterThan(1);

    // Archived on: the new segments go to the workspace's folder, chained to the old ones.
    const store = new DiskArchive(dir);
    await new Archiver(redis, store, log, { ...opts, retention: { count: 50 } }).drain(ws);
    const names = await store.list(ws, 'events');
    expect(names.length).toBeGreaterThan(old.length);
    expect(names.slice(0, old.length)).toEqual(old.sort());
    expect(await readdir(path.join(dir, ws, 'events'))).toEqual(old);
    expect(await redis.xlen(k.events)).toBeLessThanOrEqual(50);

    const page = await api.ok('GET', ws, '/events?after=0-0&limit=1000');
    expect(positions(page)).toEqual(all);
    // At the last entry of the old folder's last segment, and at the first of the new folder's.
    const text = (await readFile(path.join(dir, ws, 'events', old.sort().at(-1)!))).toString('utf8');
    const oldLast = all.indexOf((JSON.parse(text.slice(0, text.indexOf('\n'))) as { last: string }).last);
    expect(oldLast).toBeGreaterThan(0);
    expect(positions(await api.ok('GET', ws, `/events?after=${all[oldLast]}&limit=1000`))).toEqual(
      all.slice(oldLast + 1),
    );
    expect(positions(await api.ok('GET', ws, `/events?after=${all[oldLast - 1]}&limit=2`))).toEqual(
      all.slice(oldLast, oldLast + 2),
    );
    const state = await api.ok('GET', ws, `/state?at=${all[oldLast + 1]}`);
    expect(state.position).toBe(all[oldLast + 1]);

    const report = await auditWorkspace(redis, ws, { archive: store });
    expect(report.violations, JSON.stringify(report.violations.slice(0, 3))).toEqual([]);
    expect(report.ok).toBe(true);
  });
});
