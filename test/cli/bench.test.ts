/**
 * The bench CLI as a user runs a single workload: it starts its own redis-server, runs the seed
 * drain with offers on (each decision accepted before its completion) and prints one JSON line
 * with the machine, the time and positive figures; bad options are named and exit 2. Every
 * workload's figures at tiny sizes are checked on the runs of `bench all --tiny`
 * (bench-all.test.ts), which runs each with the same options as alone.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const bench = (args: readonly string[]) => runCli('bench', args);

interface Result {
  workload: string;
  parameters: Record<string, unknown>;
  machine: { cpus: number; model: string; node: string; redis: string };
  figures: { assignments: number; routingPerS: number; loopPerS: number };
  at: string;
}

describe('bench', () => {
  it('seed --offers: one JSON line; drains 300 contacts, accepting every offer before completing it', async () => {
    const run = await bench(['seed', '--agents', '40', '--contacts', '300', '--offers', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]!) as Result;
    expect(r.workload).toBe('seed');
    expect(r.parameters).toMatchObject({ agents: 40, contacts: 300, offers: true });
    expect(r.machine.cpus).toBeGreaterThan(0);
    expect(r.machine.redis).toMatch(/^\d+\.\d+/);
    expect(r.machine.node).toBe(process.version);
    expect(new Date(r.at).getTime()).not.toBeNaN();
    expect(r.figures.assignments).toBe(300);
    expect(r.figures.routingPerS).toBeGreaterThan(0);
    expect(r.figures.loopPerS).toBeGreaterThan(0);
    // The dispatch step is part of the loop, so it cannot be slower than the whole loop.
    expect(r.figures.routingPerS).toBeGreaterThanOrEqual(r.figures.loopPerS);
  });

  it('names bad options and exits 2', async () => {
    const run = await bench(['sprint', '--agents', '0', '--json']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /workload: must be one of seed, floor, contract, decision, e2e, ingest, fanout, split, wide, large[a-z, ]* \(got "sprint"\)/,
    );
    expect(run.stderr).toMatch(/--agents: must be an integer from 1/);
    const misplaced = await bench(['seed', '--haproxy']);
    expect(misplaced.code).toBe(2);
    expect(misplaced.stderr).toMatch(/--haproxy: only for ingest and fanout/);
  });

  it("--switchboard runs another checkout's src/main.ts as the Switchboard process, and names a checkout it cannot run", async () => {
    const other = mkdtempSync(path.join(tmpdir(), 'sb-other-checkout-'));
    try {
      const noMain = await bench(['e2e', '--switchboard', other]);
      expect(noMain.code).toBe(2);
      expect(noMain.stderr).toContain(`--switchboard: no src/main.ts in ${other}`);
      // A main that says where it comes from and exits: the bench must report that it ran it.
      mkdirSync(path.join(other, 'src'));
      writeFileSync(
        path.join(other, 'src', 'main.ts'),
        "process.stderr.write('the main of the other checkout\\n');\nprocess.exit(3);\n",
      );
      const noPackages = await bench(['e2e', '--switchboard', other]);
      expect(noPackages.code).toBe(2);
      expect(noPackages.stderr).toContain(`--switchboard: ${other} has no node_modules`);
      expect((await bench(['seed', '--switchboard', other])).stderr).toMatch(
        /--switchboard: only for e2e, ingest and fanout/,
      );
      symlinkSync(path.join(ROOT, 'node_modules'), path.join(other, 'node_modules'));
      const run = await bench([
        'e2e',
        '--switchboard',
        other,
        '--rate',
        '10',
        '--duration',
        '0.2',
        '--warmup',
        '0',
      ]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`starting the Switchboard of ${other}`);
      expect(run.stderr).toMatch(
        /src\/main\.ts exited before it was ready:\s+the main of the other checkout/,
      );
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
