/**
 * The bench CLI as a user runs it: it starts its own redis-server, runs a workload at a small size
 * (the seed dispatch drain, the hardware floor, the decision cost and agents freeing up beside idle
 * colleagues) and prints one JSON line with positive figures. The end-to-end workload, the routing
 * shapes and the audit are checked on the runs of `bench all --tiny` (bench-all.test.ts), which
 * runs them with the same options.
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
  it('seed: drains 500 contacts with 40 agents and reports routing and loop rates', async () => {
    const run = await bench(['seed', '--agents', '40', '--contacts', '500', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]!) as Result;
    expect(r.workload).toBe('seed');
    expect(r.parameters).toMatchObject({ agents: 40, contacts: 500 });
    expect(r.machine.cpus).toBeGreaterThan(0);
    expect(r.machine.redis).toMatch(/^\d+\.\d+/);
    expect(r.machine.node).toBe(process.version);
    expect(new Date(r.at).getTime()).not.toBeNaN();
    expect(r.figures.assignments).toBe(500);
    expect(r.figures.routingPerS).toBeGreaterThan(0);
    expect(r.figures.loopPerS).toBeGreaterThan(0);
    // The dispatch step is part of the loop, so it cannot be slower than the whole loop.
    expect(r.figures.routingPerS).toBeGreaterThanOrEqual(r.figures.loopPerS);
  });

  it('floor: runs the hand-written Lua step --count times and assigns every contact', async () => {
    const run = await bench(['floor', '--agents', '40', '--count', '2000', '--clients', '4', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]!) as Omit<Result, 'figures'> & { figures: Record<string, number> };
    expect(r.workload).toBe('floor');
    expect(r.parameters).toMatchObject({ agents: 40, clients: 4, count: 2000, seed: 42 });
    const f = r.figures;
    expect(f.ops).toBe(2000);
    // Every skill pair is held by some of the 40 agents (seed 42), and each agent is back at once.
    expect(f.assigned).toBe(2000);
    expect(f.opsPerS).toBeGreaterThan(0);
    expect(f.p99LatencyUs).toBeGreaterThan(0);
  });

  it('idle: agents freeing up beside idle colleagues wake the dispatcher once a cycle (the arrival), never for nobody', async () => {
    const run = await bench(['idle', '--agents', '8', '--decisions', '50', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as Omit<Result, 'figures'> & { figures: Record<string, number> };
    expect(r.parameters).toMatchObject({ agents: 8, cycles: 50 });
    // Each contact taken and completed; the 8 nobody can serve still wait. One wake-up and one
    // dispatch step a cycle: the agent freed joins idle agents of its skills and wakes nobody.
    expect(r.figures).toMatchObject({ cycles: 50, assignments: 50, unservableQueued: 8, wakeUpsPerCycle: 1 });
    // The two projections and the dispatch step.
    expect(r.figures.stepsPerCycle).toBe(3);
    expect(r.figures.redisCpuUsPerCycle).toBeGreaterThan(0);
  });

  it('decision: times each decision against two queue lengths and reports their ratio', async () => {
    const run = await bench(['decision', '--queues', '300,600', '--decisions', '10', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as {
      figures: { medianUs: Record<string, number>; p90Us: Record<string, number>; ratio: number };
    };
    expect(Object.keys(r.figures.medianUs).sort()).toEqual(['300', '600']);
    for (const us of Object.values(r.figures.medianUs)) expect(us).toBeGreaterThan(0);
    expect(r.figures.ratio).toBeGreaterThan(0);
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
