/**
 * An archive directory that goes away under a running archiver: the file system holding
 * ARCHIVE_DIR unmounted (the mount point left, empty), or the stream's folder or its last segment
 * removed between two passes. The archiver kept its last segment from earlier passes and went on:
 * it made the folder again and wrote the next segment alone in it (on the disk under the mount
 * point, hidden once the file system is back), and trimmed Redis for it, so the history was cut
 * in two with nothing to say so. Now a step that writes a segment after one it kept first checks
 * that the archive still holds that one: if not, it refuses the stream (the archive is behind the
 * mark), logs what to do, trims nothing, and goes on by itself once the archive is back.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { ArchiveMismatchError, Archiver } from '../../src/archive/archiver.ts';
import { parseAnchor } from '../../src/archive/chain.ts';
import { parseSegmentName } from '../../src/archive/segment.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { killAllProcesses, startProcess } from '../support/processes.ts';
import { suiteRedis } from '../support/redis.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';
import { sleep, waitFor } from '../support/wait.ts';

describe('an archive directory that goes away under a running archiver', () => {
  const suite = suiteRedis();
  const tempDir = suiteTempDirs();
  const mounts: string[] = [];
  afterAll(async () => {
    await killAllProcesses();
    for (const m of mounts.reverse()) {
      try {
        execFileSync('umount', [m]);
      } catch {}
    }
  });

  const archiverOn = (dir: string) =>
    new Archiver(suite.redis, new DiskArchive(dir), pino({ level: 'silent' }), {
      retention: { count: 10 },
      segmentEntries: 100,
      everyMs: 10,
    });

  it('does not chain onto a segment the archive no longer holds (file system unmounted)', async () => {
    const ws = `disk-edges-1-a-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await writeLog(suite.redis, ws, { events: 300, agents: 5, seed: 11 });
    const dir = await tempDir('sb-disk-edges-1-');
    const mnt = path.join(dir, 'archive');
    await mkdir(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
    mounts.push(mnt);
    const archiver = archiverOn(mnt);
    expect(await archiver.step(ws, 'events')).toBe(100);
    const len = await suite.redis.xlen(k.events);

    execFileSync('umount', ['-l', mnt]);
    mounts.pop();
    const err = await archiver.step(ws, 'events').catch((e) => e);
    expect(err).toBeInstanceOf(ArchiveMismatchError);
    expect((err as Error).message).toMatch(/trimmed up to .* after segment 0/);
    expect(await suite.redis.xlen(k.events)).toBe(len);
    expect(await readdir(mnt)).toEqual([]);
  });

  it('does not chain onto a last segment removed between two passes, and goes on once it is back', async () => {
    const ws = `disk-edges-1-b-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await writeLog(suite.redis, ws, { events: 300, agents: 5, seed: 12 });
    const dir = await tempDir('sb-disk-edges-1-');
    const archiver = archiverOn(dir);
    expect(await archiver.step(ws, 'events')).toBe(100);
    const folder = path.join(dir, ws, 'events');
    const [seg] = await readdir(folder);
    await rename(path.join(folder, seg!), path.join(dir, 'aside'));
    const len = await suite.redis.xlen(k.events);

    await expect(archiver.step(ws, 'events')).rejects.toBeInstanceOf(ArchiveMismatchError);
    expect(await suite.redis.xlen(k.events)).toBe(len);
    expect(await readdir(folder)).toEqual([]);

    await rename(path.join(dir, 'aside'), path.join(folder, seg!));
    expect(await archiver.step(ws, 'events')).toBe(100);
    expect(await suite.redis.xlen(k.events)).toBe(len - 100);
    expect((await readdir(folder)).length).toBe(2);
  });

  it('does not remake a stream folder removed while it runs', async () => {
    const ws = `disk-edges-1-c-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await writeLog(suite.redis, ws, { events: 300, agents: 5, seed: 13 });
    const dir = await tempDir('sb-disk-edges-1-');
    const archiver = archiverOn(dir);
    expect(await archiver.step(ws, 'events')).toBe(100);
    await rm(path.join(dir, ws), { recursive: true });
    const len = await suite.redis.xlen(k.events);
    await expect(archiver.step(ws, 'events')).rejects.toBeInstanceOf(ArchiveMismatchError);
    expect(await suite.redis.xlen(k.events)).toBe(len);
  });

  it('a running process refuses the stream while its folder is away, and goes on once it is back', async () => {
    const ws = `disk-edges-1-d-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await writeLog(suite.redis, ws, { events: 300, agents: 5, seed: 14 });
    const dir = await tempDir('sb-disk-edges-1-');
    const p = await startProcess({
      roles: 'archiver',
      redis: suite.server,
      env: {
        WORKSPACES: ws,
        DISCOVER_WORKSPACES: 'false',
        ARCHIVE_DIR: dir,
        LOG_RETENTION: '10',
        ARCHIVE_SEGMENT_ENTRIES: '100',
        ARCHIVE_EVERY_MS: '50',
        LEASE_TTL_MS: '3000',
      },
    });
    await waitFor(
      () => `the events archived; the log:\n${p.logText()}`,
      async () => (await suite.redis.xlen(k.events)) <= 10,
      { timeoutMs: 10_000 },
    );
    // The workspace's folder away (a file system unmounted, a folder moved), and more events due.
    await rename(path.join(dir, ws), path.join(dir, 'away'));
    for (let i = 0; i < 150; i++) await suite.redis.xadd(k.events, '*', 'type', 'Noise', 'event', '{}');
    const len = await suite.redis.xlen(k.events);
    await waitFor(
      () => `an error for the events archive; the log:\n${p.logText()}`,
      () => /"level":50[^\n]*"stream":"events"[^\n]*yet Redis was trimmed up to/.test(p.logText()),
      { timeoutMs: 10_000 },
    );
    await sleep(300);
    expect(await suite.redis.xlen(k.events)).toBe(len);
    expect(await readdir(path.join(dir, ws, 'events')).catch(() => [])).toEqual([]);
    expect(p.child.exitCode).toBeNull();

    await rm(path.join(dir, ws), { recursive: true, force: true });
    await rename(path.join(dir, 'away'), path.join(dir, ws));
    await waitFor(
      () => `the events archived once the folder is back; the log:\n${p.logText()}`,
      async () => (await suite.redis.xlen(k.events)) <= 10,
      { timeoutMs: 10_000 },
    );
    expect(await p.stop()).toBe(0);
    // One chain: indexes 0, 1, ... with no hole, the last one the mark.
    const names = (await readdir(path.join(dir, ws, 'events'))).sort();
    expect(names.map((n) => parseSegmentName(n)?.index)).toEqual(names.map((_, i) => i));
    expect(parseAnchor(await suite.redis.hget(k.archive, 'events'))?.index).toBe(names.length - 1);
  }, 30_000);
});
