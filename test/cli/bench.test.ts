/**
 * The bench CLI as a user runs it: it starts its own redis-server, runs a workload at a small size
 * (the seed dispatch drain, the hardware floor, the decision cost, briefly the end-to-end workload
 * against a Switchboard process, the routing shapes, the audit and agents freeing up beside idle
 * colleagues) and prints one JSON line with positive figures.
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

  it('e2e: POST /contacts to AssignmentMade on a WebSocket at 200 contacts/s for 1 s', async () => {
    const run = await bench(['e2e', '--rate', '200', '--duration', '1', '--warmup', '0.5', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]!) as Omit<Result, 'figures'> & { figures: Record<string, number> };
    expect(r.workload).toBe('e2e');
    expect(r.parameters).toMatchObject({ agents: 200, rate: 200, duration: 1 });
    const f = r.figures;
    expect(f.offeredPerS).toBe(200);
    expect(f.sent).toBeGreaterThan(0);
    expect(f.achievedPerS).toBeGreaterThan(0);
    expect(f.p50Ms).toBeGreaterThan(0);
    expect(f.p99Ms).toBeGreaterThanOrEqual(f.p50Ms!);
    expect(f.p999Ms).toBeGreaterThanOrEqual(f.p99Ms!);
    expect(f.maxMs).toBeGreaterThanOrEqual(f.p999Ms!);
    expect(f.errors).toBe(0);
    expect(f.completeErrors).toBe(0);
    expect(f.unassigned).toBe(0);
    // The bare feed took the same rate right after: every contact through, its latencies and the ratios.
    const bare = (r.figures as unknown as { bare: Record<string, number> }).bare;
    expect(bare.achievedPerS).toBeGreaterThan(0);
    expect(bare.errors).toBe(0);
    expect(bare.unassigned).toBe(0);
    expect(bare.p50Ms).toBeGreaterThan(0);
    expect(bare.p99Ms).toBeGreaterThanOrEqual(bare.p50Ms!);
    expect(bare.p50Ratio).toBeCloseTo(f.p50Ms! / bare.p50Ms!, 1);
    expect(bare.p99Ratio).toBeCloseTo(f.p99Ms! / bare.p99Ms!, 1);
  });

  it('split, wide and large report the worst and median dispatch step per size', async () => {
    for (const [workload, sizes] of [
      ['split', '50,200'],
      ['wide', '100,400'],
      ['large', '50,200'],
    ] as const) {
      const run = await bench([workload, '--sizes', sizes, '--decisions', '5', '--agents', '300', '--json']);
      expect(run.code, run.stderr).toBe(0);
      const r = JSON.parse(run.stdout) as {
        figures: { runs: Record<string, { steps: number; worstRedisStepUs: number; medianStepMs: number }> };
      };
      expect(Object.keys(r.figures.runs).sort()).toEqual(sizes.split(',').sort());
      for (const f of Object.values(r.figures.runs)) {
        expect(f.steps).toBeGreaterThan(0);
        expect(f.worstRedisStepUs).toBeGreaterThan(0);
        expect(f.medianStepMs).toBeGreaterThan(0);
      }
    }
  });

  it('audit: makes a log through the Lua steps and reports the events/s of the auditor on it', async () => {
    const run = await bench(['audit', '--events', '3000', '--agents', '30', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as { figures: Record<string, number> };
    const f = r.figures;
    expect(f.events).toBeGreaterThanOrEqual(3000);
    expect(f.violations).toBe(0);
    expect(f.decisionsChecked).toBe(f.assignments);
    expect(f.eventsPerS).toBeGreaterThan(0);
    expect(f.replayEventsPerS).toBeGreaterThan(0);
  });

  it('names bad options and exits 2', async () => {
    const run = await bench(['sprint', '--agents', '0', '--json']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /workload: must be one of seed, floor, decision, e2e, ingest, fanout, split, wide, large[a-z, ]* \(got "sprint"\)/,
    );
    expect(run.stderr).toMatch(/--agents: must be an integer from 1/);
    const misplaced = await bench(['seed', '--haproxy']);
    expect(misplaced.code).toBe(2);
    expect(misplaced.stderr).toMatch(/--haproxy: only for ingest and fanout/);
  });
});
