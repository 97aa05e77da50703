/**
 * A snapshots folder the archiver cannot write (a file where `<ARCHIVE_DIR>/<ws>/snapshots` must
 * be: the tests run as root, for whom a read-only mode is no obstacle), met by a real
 * `ROLES=archiver` process: the streams are still archived, and the error names the folder and
 * says what to do, once rather than on every pass (ARCHIVE_EVERY_MS); once mended, the snapshots
 * due are written without a restart.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blockedArchive, startArchiver } from '../support/blocked-archive.ts';
import { killAllProcesses } from '../support/processes.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

describe('a snapshots folder the archiver cannot write', () => {
  const suite = suiteRedis();
  const dirs: string[] = [];
  afterAll(async () => {
    await killAllProcesses();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('archives the streams and logs one error naming the folder and what to do', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sb-writer-edges-2-'));
    dirs.push(dir);
    const a = await blockedArchive(suite.redis, 'writer-edges-2', 2, dir, 'snapshots');
    const { ws, k } = a;
    const blocked = path.join(dir, ws, 'snapshots');

    const p = await startArchiver(suite.server, a, { SNAPSHOT_EVERY_EVENTS: '100' });
    await waitFor(
      () => `the streams to be archived; the log:\n${p.logText()}`,
      async () => (await suite.redis.xlen(k.events)) <= 10 && (await suite.redis.xlen(k.commands)) <= 10,
      { timeoutMs: 10_000 },
    );
    await waitFor('an error about the snapshots', () => p.logText().includes('"level":50'), {
      timeoutMs: 5_000,
    });
    // Passes every 50 ms for a while: the same error is not said again on each.
    await sleep(600);
    const errors = p.logs.filter((l) => l.includes('"level":50'));
    expect(errors.length, errors.join('\n')).toBe(1);
    expect(errors[0]).toContain(blocked);
    expect(errors[0]).toMatch(/ARCHIVE_DIR/);

    await rm(blocked);
    await waitFor(
      'the snapshots due to be written once the folder is mended',
      async () => (await readdir(blocked).catch(() => [])).length >= 2,
      { timeoutMs: 10_000 },
    );
    expect(await p.stop()).toBe(0);
  }, 30_000);
});
