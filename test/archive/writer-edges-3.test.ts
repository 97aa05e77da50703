/**
 * A file system full (here the process's file size limit, RLIMIT_FSIZE, set with prlimit for the
 * few milliseconds of one archiver step: writing past it fails with EFBIG as ENOSPC would, where a
 * mounted file system cannot be made): the segment is not written, nothing is trimmed, and the
 * temporary file cut short is removed, not left taking room on the full disk on every pass (the
 * sweep removes leftovers only when a lease is taken, and only those 10 minutes old). Once there
 * is room, the step writes the segment.
 */
import { execFileSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver, ArchiveStoreError } from '../../src/archive/archiver.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { suiteRedis } from '../support/redis.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';

/** Runs `fn` with this process's files limited to `bytes` (the soft limit; the hard one kept). */
async function withFileSizeLimit<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
  const set = (soft: string) =>
    execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${soft}:unlimited`]);
  set(String(bytes));
  try {
    return await fn();
  } finally {
    set('unlimited');
  }
}

describe('an archive on a full file system', () => {
  const suite = suiteRedis();
  const tempDir = suiteTempDirs();

  it('writes no segment, trims nothing and leaves no temporary file behind', async () => {
    const ws = `writer-edges-3-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await writeLog(suite.redis, ws, { events: 300, agents: 5, seed: 3 });
    const dir = await tempDir('sb-writer-edges-3-');
    const archiver = new Archiver(suite.redis, new DiskArchive(dir), pino({ level: 'silent' }), {
      retention: { count: 10 },
      segmentEntries: 100,
      everyMs: 10,
    });
    const commands = await suite.redis.xlen(k.commands);
    // A segment of 100 commands is well over 16 KB.
    const err = await withFileSizeLimit(16_384, () => archiver.step(ws, 'commands')).catch((e) => e);
    expect(err).toBeInstanceOf(ArchiveStoreError);
    expect((err as Error).message).toMatch(/EFBIG/);
    expect(await suite.redis.xlen(k.commands)).toBe(commands);
    expect(await readdir(path.join(dir, ws, 'commands'))).toEqual([]);

    expect(await archiver.step(ws, 'commands')).toBe(100);
    expect((await readdir(path.join(dir, ws, 'commands'))).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(await suite.redis.xlen(k.commands)).toBe(commands - 100);
  });
});
