/**
 * The bench CLI as a user runs a single workload: it starts its own redis-server, runs the seed
 * drain with offers on (each decision accepted before its completion) and prints one JSON line
 * with the machine, the time and positive figures; bad options are named and exit 2. Every
 * workload's figures at tiny sizes are checked on the runs of `bench all --tiny`
 * (bench-all.test.ts), which runs each with the same options as alone.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

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
});
