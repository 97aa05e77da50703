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
    // `all` after options is still `all` (its own options checked), not an unknown workload.
    const allArgs = [
      ['--json', 'all', '--tiny', '--full'],
      ['--seed', '7', 'all', '--full', '--tiny'],
    ];
    // Each refusal is a run of its own; they run at once.
    const [run, misplaced, notE2e, ...alls] = await Promise.all([
      bench(['sprint', '--agents', '0', '--json']),
      bench(['seed', '--haproxy']),
      bench(['seed', '--cluster']),
      ...allArgs.map((args) => bench(args)),
    ]);
    expect(run!.code).toBe(2);
    expect(run!.stderr).toMatch(
      /workload: must be one of seed, floor, contract, decision, e2e, ingest, fanout, split, wide, large[a-z, ]* \(got "sprint"\)/,
    );
    expect(run!.stderr).toMatch(/--agents: must be an integer from 1/);
    expect(misplaced!.code).toBe(2);
    expect(misplaced!.stderr).toMatch(/--haproxy: only for ingest and fanout/);
    expect(notE2e!.code).toBe(2);
    expect(notE2e!.stderr).toMatch(/--cluster: only for e2e/);
    for (const [i, all] of alls.entries()) {
      expect(all.code, allArgs[i]!.join(' ')).toBe(2);
      expect(all.stderr).toMatch(/--full and --tiny: give one or the other/);
    }
  });

  it('e2e --cluster runs Switchboard on a private Redis Cluster and times it as on one Redis, after a warm-up health-checked and scraped', async () => {
    const run = await bench([
      'e2e',
      '--cluster',
      '--rate',
      '100',
      '--duration',
      '0.5',
      '--warmup',
      '1.5',
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout.trim()) as Result;
    expect(r.parameters).toMatchObject({
      rate: 100,
      redis: 'private 3-master Redis Cluster, appendonly off',
    });
    const f = r.figures as unknown as Record<string, unknown>;
    expect(f).toMatchObject({ sent: 50, errors: 0, unassigned: 0, completeErrors: 0 });
    expect(f.p50Ms as number).toBeGreaterThan(0);
    // Redis's CPU is read on the master holding the workspace: the contacts' steps ran there.
    expect(f.redisCpuUsPerContact as number).toBeGreaterThan(0);
    expect(f.bare).toMatchObject({ errors: 0, unassigned: 0 });
    // Asked as HAProxy and Prometheus ask a deployed instance: at once, then each second.
    const asked = f.warmupAsked as { health: number; metrics: number; failed: number };
    expect(asked.failed).toBe(0);
    expect(asked.health).toBeGreaterThanOrEqual(2);
    expect(asked.metrics).toBe(asked.health);
  });

  it("--switchboard runs another checkout's src/main.ts as the Switchboard process, and names a checkout it cannot run", async () => {
    const other = mkdtempSync(path.join(tmpdir(), 'sb-other-checkout-'));
    try {
      // `seed` refuses --switchboard whatever the checkout holds: asked beside the first refusal.
      const [noMain, notForSeed] = await Promise.all([
        bench(['e2e', '--switchboard', other]),
        bench(['seed', '--switchboard', other]),
      ]);
      expect(notForSeed.stderr).toMatch(/--switchboard: only for e2e, ingest, fanout and steps/);
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

  it("steps times this checkout's steps against another's on one Redis, round by round, and needs the other", async () => {
    const other = mkdtempSync(path.join(tmpdir(), 'sb-other-steps-'));
    try {
      // The refusals at once: each a run of its own.
      const [none, notForSeed, missing] = await Promise.all([
        bench(['steps', '--rounds', '3']),
        bench(['seed', '--rounds', '3']),
        bench(['steps', '--switchboard', other]),
      ]);
      expect(none.code).toBe(2);
      expect(none.stderr).toContain(
        "--switchboard: steps compares this checkout's steps with another checkout's",
      );
      expect(notForSeed.stderr).toContain('--rounds: only for steps');
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain(`--switchboard: no src/projections/projector.ts in ${other}`);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }

    // Against itself: the same steps on both sides, so the same decisions and costs of one order.
    const run = await bench(['steps', '--switchboard', ROOT, '--rounds', '7', '--agents', '20', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as {
      parameters: Record<string, unknown>;
      figures: {
        rounds: number;
        this: Record<string, number>;
        other: Record<string, number>;
        ratio: Record<string, number>;
      };
    };
    expect(r.parameters).toMatchObject({ agents: 20, rounds: 7, switchboard: path.resolve(ROOT) });
    expect(r.figures.rounds).toBe(7);
    expect(r.figures.this.decisions).toBeGreaterThan(0);
    expect(r.figures.other.decisions).toBe(r.figures.this.decisions);
    for (const side of [r.figures.this, r.figures.other])
      for (const k of ['queueUs', 'dispatchUs', 'completeUs']) expect(side[k]).toBeGreaterThan(0);
    expect(r.figures.this.cycleUs).toBeCloseTo(
      r.figures.this.queueUs! + r.figures.this.dispatchUs! + r.figures.this.completeUs!,
      0,
    );
    expect(r.figures.ratio.cycle).toBeGreaterThan(0.5);
    expect(r.figures.ratio.cycle).toBeLessThan(2);
  });
});
