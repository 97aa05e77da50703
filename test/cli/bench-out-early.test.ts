/**
 * `bench all --out <dir>` whose directory cannot be written is refused before any workload runs
 * (exit 2, naming --out and why, as bench's other usage refusals), not after the whole run when it
 * writes the table. Tests run as root: the unwritable place is a path under a regular file.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cliEntry } from '../support/main-build.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** bench with `args`, killed after `timeoutMs` (code null then). */
function bench(args: readonly string[], timeoutMs: number) {
  return new Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>((resolve) => {
    const started = Date.now();
    execFile(
      process.execPath,
      [...cliEntry('bench'), ...args],
      { cwd: ROOT, timeout: timeoutMs, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr, ms: Date.now() - started });
      },
    );
  });
}

describe('bench all --out: an unwritable directory is refused before any workload', () => {
  const tempDir = suiteTempDirs();

  it('a path under a regular file: exit 2 at once, naming --out and why; no workload started', async () => {
    const dir = await tempDir('bench-out-');
    const file = path.join(dir, 'a-file');
    await writeFile(file, 'not a directory\n');
    const out = path.join(file, 'sub');
    const run = await bench(['all', '--tiny', '--out', out], 8_000);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(
      new RegExp(
        `^bench: --out: [^\\n]*${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}[^\\n]* is not a directory`,
        'm',
      ),
    );
    expect(run.stderr).toMatch(/\nRun with --help for the options\.\n$/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/\bseed\b|redis-server/);
    expect(run.ms).toBeLessThan(5_000);
  });

  it('a directory that exists, or one to be made under one, is accepted (the refusal is only for what cannot be written)', async () => {
    const dir = await tempDir('bench-out-ok-');
    // --full with --tiny is refused in the same pass: the run stops there, and --out is not named.
    for (const out of [dir, path.join(dir, 'new', 'deeper')]) {
      const run = await bench(['all', '--tiny', '--full', '--out', out], 8_000);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toMatch(/--full and --tiny/);
      expect(run.stderr).not.toMatch(/--out/);
    }
  });
});
