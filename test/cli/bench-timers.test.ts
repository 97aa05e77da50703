/**
 * The bench's lifecycle workloads as a user runs them, at tiny sizes: `timers` (the clock's lag
 * firing offer expiries, idle and while the seed workload loads the same Redis) prints one JSON
 * line with both phases' lag figures, every timer fired, and an idle median within the issue's
 * 100 ms; `seed --offers` drains with each decision accepted before its completion.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

interface Lag {
  timers: number;
  medianMs: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  minMs: number;
  redisCpuShare: number;
  seconds: number;
}

describe('bench timers', () => {
  it('timers: reports the lag of every offer expiry, idle and loaded', async () => {
    const run = await runCli('bench', ['timers', '--timers', '60', '--duration', '0.5', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]!) as {
      workload: string;
      parameters: Record<string, unknown>;
      figures: { offerTimeoutMs: number; idle: Lag; loaded: Lag & { loadRuns: number } };
    };
    expect(r.workload).toBe('timers');
    expect(r.parameters).toMatchObject({ timers: 60, duration: 0.5 });
    const { idle, loaded } = r.figures;
    expect(r.figures.offerTimeoutMs).toBeGreaterThan(0);
    for (const [phase, f] of [
      ['idle', idle],
      ['loaded', loaded],
    ] as const) {
      expect(f.timers, phase).toBe(60);
      // The clock never fires a timer before it is due, and the percentiles are ordered.
      expect(f.minMs, phase).toBeGreaterThanOrEqual(0);
      expect(f.medianMs, phase).toBeGreaterThanOrEqual(f.minMs);
      expect(f.p90Ms, phase).toBeGreaterThanOrEqual(f.medianMs);
      expect(f.p99Ms, phase).toBeGreaterThanOrEqual(f.p90Ms);
      expect(f.maxMs, phase).toBeGreaterThanOrEqual(f.p99Ms);
      expect(f.seconds, phase).toBeGreaterThan(0);
    }
    expect(loaded.loadRuns).toBeGreaterThanOrEqual(1);
    // The target: within 100 ms on an unloaded machine.
    expect(idle.medianMs).toBeLessThan(100);
  });

  it('seed --offers: accepts every offer before completing it', async () => {
    const run = await runCli('bench', ['seed', '--agents', '40', '--contacts', '300', '--offers', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as {
      parameters: Record<string, unknown>;
      figures: { assignments: number; routingPerS: number; loopPerS: number };
    };
    expect(r.parameters).toMatchObject({ agents: 40, contacts: 300, offers: true });
    expect(r.figures.assignments).toBe(300);
    expect(r.figures.loopPerS).toBeGreaterThan(0);
    expect(r.figures.routingPerS).toBeGreaterThanOrEqual(r.figures.loopPerS);
  });
});
