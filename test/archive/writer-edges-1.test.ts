/**
 * An archive folder the archiver cannot write (here a file where a stream's folder must be: the
 * tests run as root, for whom a read-only mode is no obstacle), met by a real `ROLES=archiver`
 * process after its start (ARCHIVE_DIR itself is checked at start, data-dir.ts): the other stream is
 * still archived, and the process logs an error that names the folder and says what to do about
 * it, rather than a warning that the workspace loop failed and Redis most often does not answer.
 * Once the folder is mended, the stream is archived without a restart.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blockedArchive, startArchiver } from '../support/blocked-archive.ts';
import { killAllProcesses } from '../support/processes.ts';
import { suiteRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

describe('an archive folder the archiver cannot write', () => {
  const suite = suiteRedis();
  const dirs: string[] = [];
  afterAll(async () => {
    await killAllProcesses();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('archives the other stream and logs an error naming the folder and what to do', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sb-writer-edges-1-'));
    dirs.push(dir);
    // A file where the commands' folder must be.
    const a = await blockedArchive(suite.redis, 'writer-edges-1', 1, dir, 'commands');
    const { ws, k } = a;
    const blocked = path.join(dir, ws, 'commands');
    const commandsBefore = await suite.redis.xlen(k.commands);

    const p = await startArchiver(suite.server, a);
    await waitFor(
      () => `the events to be archived though the commands cannot be; the log:\n${p.logText()}`,
      async () => (await suite.redis.xlen(k.events)) <= 10,
      { timeoutMs: 10_000 },
    );
    await waitFor('an error about the folder', () => p.logText().includes('"level":50'), {
      timeoutMs: 5_000,
    });
    expect(await suite.redis.xlen(k.commands)).toBe(commandsBefore);
    const errors = p.logs.filter((l) => l.includes('"level":50'));
    expect(errors.join('\n')).toContain(path.join(dir, ws, 'commands'));
    expect(errors.join('\n')).toMatch(/ARCHIVE_DIR/);
    expect(p.logText()).not.toContain('most often Redis does not answer');
    // Said once, not once a pass.
    await new Promise((r) => setTimeout(r, 500));
    expect(p.logs.filter((l) => l.includes('"level":50')).length).toBe(errors.length);

    // Mended: archived from the next pass on.
    await rm(blocked);
    await waitFor(
      'the commands to be archived once the folder is mended',
      async () => (await suite.redis.xlen(k.commands)) <= 10,
      { timeoutMs: 10_000 },
    );
    expect(await p.stop()).toBe(0);
  }, 30_000);
});
