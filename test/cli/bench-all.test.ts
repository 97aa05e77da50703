/**
 * `npm run bench -- all --tiny --out <dir>` as a user runs it: every registered workload at its
 * smallest sizes, each on a private redis-server it starts (and a private Redis Cluster for
 * `cluster`), then bench-all.md and bench-all.json with a row per figure and no failed run. The
 * tests after the first check the figures of its runs (the routing loops, the floor, the decision
 * cost, the timers, the end-to-end workload, the routing shapes, the fan-out, the audit), as a run
 * of that workload alone would print them; bench.test.ts runs one workload alone.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { AllResult } from '../../src/cli/bench/all.ts';
import { WORKLOADS } from '../../src/cli/bench/options.ts';
import { cliEntry } from '../support/main-build.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function bench(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...cliEntry('bench'), ...args],
      { cwd: ROOT, timeout: 170_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

interface Run {
  readonly workload: string;
  readonly parameters: Record<string, unknown>;
  readonly figures: Record<string, unknown>;
}

describe('bench all', () => {
  /** The runs the first test's `bench all --tiny` made; the tests after it check them. */
  let runs: readonly Run[] = [];
  const runOf = (workload: string, levels = false): Run => {
    const r = runs.find((x) => x.workload === workload && Boolean(x.parameters.levels) === levels);
    expect(r, `a ${workload} run${levels ? ' with --levels' : ''}`).toBeDefined();
    return r!;
  };

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
      runs = written.runs as unknown as Run[];

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
        'cluster: Redis main-thread CPU per assignment, master 1',
        'cluster: Redis µs per assignment (SLOWLOG), master 1',
        'Redis main-thread CPU per assignment cycle, 40 agents',
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

      // Redis's time per cycle splits into the commands the steps ran and their Lua: both take some.
      const seed = written.runs.find((r) => r.workload === 'seed')!.figures as Record<string, number>;
      expect(seed.redisCommandsShare).toBeGreaterThan(0);
      expect(seed.redisCommandsShare).toBeLessThan(1);
      const inside = written.rows.find((r) =>
        r.figure.startsWith("Redis µs per assignment cycle inside the steps' commands"),
      );
      expect(inside?.value).toBeCloseTo((inside?.anchorValue ?? 0) * (seed.redisCommandsShare ?? 0), 0);

      const md = await readFile(path.join(dir, 'bench-all.md'), 'utf8');
      expect(md).toMatch(/^Measured \d{4}-\d\d-\d\d \d\d:\d\d UTC with `npm run bench -- all --tiny/);
      expect(md.split('\n').filter((l) => l.startsWith('| ')).length).toBe(written.rows.length + 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('seed, floor, decision and idle: the routing loops, the hand-written floor, the decision cost, agents freeing up beside idle colleagues', () => {
    const seed = runOf('seed');
    expect(seed.parameters).toMatchObject({ agents: 40, contacts: 500 });
    const s = seed.figures as Record<string, number>;
    expect(s.assignments).toBe(500);
    expect(s.loopPerS).toBeGreaterThan(0);
    // The dispatch step is part of the loop, so it cannot be slower than the whole loop.
    expect(s.routingPerS).toBeGreaterThanOrEqual(s.loopPerS!);

    const floor = runOf('floor');
    expect(floor.parameters).toMatchObject({ agents: 40, clients: 8, count: 3000, seed: 42 });
    const f = floor.figures as Record<string, number>;
    expect(f.ops).toBe(3000);
    // Every skill pair is held by some of the 40 agents (seed 42), and each agent is back at once.
    expect(f.assigned).toBe(3000);
    expect(f.opsPerS).toBeGreaterThan(0);
    expect(f.p99LatencyUs).toBeGreaterThan(0);
    // Redis's CPU per step over the steps alone: some, and no more than over the whole run with its set-up.
    expect(f.redisCpuUsPerStep).toBeGreaterThan(0);
    const whole = (floor as { redisStats?: { cpuUs: number } }).redisStats;
    expect(whole).toBeDefined();
    expect(f.redisCpuUsPerStep).toBeLessThanOrEqual(whole!.cpuUs / f.ops! + 0.1);

    const decision = runOf('decision').figures as {
      medianUs: Record<string, number>;
      p90Us: Record<string, number>;
      ratio: number;
    };
    expect(Object.keys(decision.medianUs).sort()).toEqual(['300', '600']);
    for (const us of Object.values(decision.medianUs)) expect(us).toBeGreaterThan(0);
    expect(decision.ratio).toBeGreaterThan(0);

    const idle = runOf('idle');
    expect(idle.parameters).toMatchObject({ agents: 10, cycles: 100 });
    // Each contact taken and completed; the 10 nobody can serve still wait. One wake-up and one
    // dispatch step a cycle: the agent freed joins idle agents of its skills and wakes nobody.
    expect(idle.figures).toMatchObject({
      cycles: 100,
      assignments: 100,
      unservableQueued: 10,
      wakeUpsPerCycle: 1,
    });
    // The two projections and the dispatch step.
    expect(idle.figures.stepsPerCycle).toBe(3);
    expect(idle.figures.redisCpuUsPerCycle).toBeGreaterThan(0);
  });

  it('timers: the lag of every offer expiry, idle and while the seed workload loads the same Redis', () => {
    const r = runOf('timers');
    expect(r.parameters).toMatchObject({ timers: 100, duration: 1 });
    interface Lag {
      timers: number;
      medianMs: number;
      p90Ms: number;
      p99Ms: number;
      maxMs: number;
      minMs: number;
      seconds: number;
    }
    const figures = r.figures as {
      offerTimeoutMs: number;
      idle: Lag;
      loaded: Lag & { loadRuns: number; loadContacts: number };
    };
    const { idle, loaded } = figures;
    expect(figures.offerTimeoutMs).toBeGreaterThan(0);
    for (const [phase, lag] of [
      ['idle', idle],
      ['loaded', loaded],
    ] as const) {
      expect(lag.timers, phase).toBe(100);
      // The clock never fires a timer before it is due, and the percentiles are ordered.
      expect(lag.minMs, phase).toBeGreaterThanOrEqual(0);
      expect(lag.medianMs, phase).toBeGreaterThanOrEqual(lag.minMs);
      expect(lag.p90Ms, phase).toBeGreaterThanOrEqual(lag.medianMs);
      expect(lag.p99Ms, phase).toBeGreaterThanOrEqual(lag.p90Ms);
      expect(lag.maxMs, phase).toBeGreaterThanOrEqual(lag.p99Ms);
      expect(lag.seconds, phase).toBeGreaterThan(0);
    }
    expect(loaded.loadRuns).toBeGreaterThanOrEqual(1);
    // The seed load's runs are sized to the phase: 15,000 contacts per second of --duration.
    expect(loaded.loadContacts).toBe(15_000);
    // The lifecycle issue's target: within 100 ms on an unloaded machine.
    expect(idle.medianMs).toBeLessThan(100);
  });

  it('e2e: POST /contacts to AssignmentMade on a WebSocket at 200 contacts/s for 1 s', () => {
    const r = runOf('e2e');
    expect(r.parameters).toMatchObject({ agents: 200, rate: 200, duration: 1 });
    const f = r.figures as Record<string, number>;
    expect(f.offeredPerS).toBe(200);
    expect(f.sent).toBeGreaterThan(0);
    expect(f.achievedPerS).toBeGreaterThan(0);
    expect(f.p50Ms).toBeGreaterThan(0);
    expect(f.p99Ms).toBeGreaterThanOrEqual(f.p50Ms!);
    expect(f.p999Ms).toBeGreaterThanOrEqual(f.p99Ms!);
    expect(f.maxMs).toBeGreaterThanOrEqual(f.p999Ms!);
    // What the client waits for its 201 (the command applied), from the same send.
    expect(f.answerP50Ms).toBeGreaterThan(0);
    expect(f.answerP99Ms).toBeGreaterThanOrEqual(f.answerP50Ms!);
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
    expect(bare.answerP50Ms).toBeGreaterThan(0);
    expect(bare.answerP99Ms).toBeGreaterThanOrEqual(bare.answerP50Ms!);
    expect(bare.p50Ratio).toBeCloseTo(f.p50Ms! / bare.p50Ms!, 1);
    expect(bare.p99Ratio).toBeCloseTo(f.p99Ms! / bare.p99Ms!, 1);
  });

  it('fan-out, direct and through HAProxy: every event to every subscriber once, in order', () => {
    const fanouts = runs.filter((r) => r.workload === 'fanout');
    expect(fanouts.map((r) => r.parameters.via).sort()).toEqual(['direct', 'haproxy']);
    for (const r of fanouts) {
      const via = String(r.parameters.via);
      expect(r.parameters, via).toMatchObject({ subscribers: 100, rate: 50, duration: 1 });
      const f = r.figures as Record<string, number>;
      expect(f.subscribers, via).toBe(100);
      // 50 contacts, each queued and assigned at once: two events each.
      expect(f.events, via).toBe(100);
      expect(f.deliveries, via).toBe(f.events! * 100);
      expect([f.lost, f.outOfOrder, f.closedEarly, f.errors], via).toEqual([0, 0, 0, 0]);
      expect(f.deliveriesPerS, via).toBeGreaterThan(0);
      expect(f.p50Ms, via).toBeGreaterThanOrEqual(0);
      expect(f.p99Ms, via).toBeGreaterThanOrEqual(f.p50Ms!);
      expect(f.maxMs, via).toBeGreaterThanOrEqual(f.p99Ms!);
      // The Switchboard process's own CPU over the run, from its /metrics; apiCpuMs is rounded to
      // the ms: the quotient of the rounded figure is within half a ms of it.
      expect(f.apiCpuMs, via).toBeGreaterThan(0);
      expect(
        Math.abs(f.apiCpuUsPerDelivery! - (f.apiCpuMs! * 1000) / f.deliveries!),
        via,
      ).toBeLessThanOrEqual(500 / f.deliveries! + 0.01);
    }
  });

  it('split, wide and large report the worst and median dispatch step per size', () => {
    for (const [workload, sizes] of [
      ['split', [50, 200]],
      ['wide', [100, 400]],
      ['large', [50, 200]],
    ] as const) {
      const r = runOf(workload);
      expect(r.parameters.sizes).toEqual(sizes);
      const f = r.figures as {
        runs: Record<string, { steps: number; worstRedisStepUs: number; medianStepMs: number }>;
      };
      expect(Object.keys(f.runs).sort()).toEqual(sizes.map(String).sort());
      for (const size of Object.values(f.runs)) {
        expect(size.steps).toBeGreaterThan(0);
        expect(size.worstRedisStepUs).toBeGreaterThan(0);
        expect(size.medianStepMs).toBeGreaterThan(0);
      }
    }
  });

  it('audit: makes a log through the Lua steps and reports the events/s of the auditor on it', () => {
    const r = runOf('audit');
    expect(r.parameters).toMatchObject({ events: 3000, agents: 30 });
    const f = r.figures as Record<string, number>;
    expect(f.events).toBeGreaterThanOrEqual(3000);
    expect(f.violations).toBe(0);
    expect(f.decisionsChecked).toBe(f.assignments);
    expect(f.eventsPerS).toBeGreaterThan(0);
    expect(f.replayEventsPerS).toBeGreaterThan(0);
  });
});
