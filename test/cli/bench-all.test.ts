/**
 * `npm run bench -- all --tiny --out <dir>` as a user runs it: every registered workload at its
 * smallest sizes, each on a private redis-server it starts (and a private Redis Cluster for
 * `cluster`), then bench-all.md and bench-all.json with a row per figure and no failed run.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { AllResult } from '../../src/cli/bench/all.ts';
import { WORKLOADS } from '../../src/cli/bench/options.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function bench(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/bench.ts', ...args],
      { cwd: ROOT, timeout: 170_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

describe('bench all', () => {
  it('runs every workload at tiny sizes and writes one table, markdown and JSON', {
    timeout: 180_000,
  }, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sb-bench-all-'));
    try {
      const run = await bench(['all', '--tiny', '--out', dir, '--json']);
      expect(run.code, run.stderr.slice(-4000)).toBe(0);
      const printed = JSON.parse(run.stdout) as AllResult;
      const written = JSON.parse(await readFile(path.join(dir, 'bench-all.json'), 'utf8')) as AllResult;
      expect(written.rows).toEqual(printed.rows);
      expect(written.preset).toBe('tiny');
      expect(written.command).toBe(`npm run bench -- all --tiny --out ${dir} --json`);

      // Every registered workload ran, none failed.
      expect(new Set(written.runs.map((r) => r.workload))).toEqual(new Set(WORKLOADS));
      expect(written.runs.filter((r) => r.error)).toEqual([]);

      const figures = written.rows.map((r) => r.figure);
      for (const expected of [
        'seed routing, 40 agents',
        'seed loop, 40 agents',
        'Redis µs per assignment cycle (SLOWLOG), 40 agents',
        'reference ACD loop, 40 agents',
        'ingestion, Switchboard POST /contacts',
        'ingestion through HAProxy, Switchboard POST /contacts',
        'fan-out, 100 subscribers: deliveries',
        'fan-out through HAProxy, 100 subscribers: deliveries',
        'split with levels: worst step',
        'large with levels: worst step',
        'large with levels: median step',
        'audit, ',
        'cluster: Redis µs per assignment, master 1',
        'cluster: aggregate, 3 masters busy',
      ])
        expect(
          figures.some((f) => f.startsWith(expected)),
          expected,
        ).toBe(true);
      for (const r of written.rows) {
        expect(r.value, r.figure).not.toBeNull();
        if (r.anchor !== null) expect(r.ratio, r.figure).not.toBeNull();
        if (r.target !== null) expect(typeof r.met, r.figure).toBe('boolean');
      }
      const reference = written.runs.find((r) => r.workload === 'reference')!.figures as Record<
        string,
        number
      >;
      expect(reference.assignments).toBe(300);
      expect(reference.assignmentsPerS).toBeGreaterThan(0);

      const md = await readFile(path.join(dir, 'bench-all.md'), 'utf8');
      expect(md).toMatch(/^Measured \d{4}-\d\d-\d\d \d\d:\d\d UTC with `npm run bench -- all --tiny/);
      expect(md.split('\n').filter((l) => l.startsWith('| ')).length).toBe(written.rows.length + 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
