/**
 * The fan-out workload as a user runs it, at a tiny size: one Switchboard process, subscribers in
 * a load-generator process of their own, contacts at a fixed rate; every subscriber gets every
 * event once and in order, and the figures come out.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

interface FanoutResult {
  workload: string;
  parameters: Record<string, unknown>;
  figures: {
    subscribers: number;
    events: number;
    deliveries: number;
    deliveriesPerS: number;
    p50Ms: number | null;
    p99Ms: number | null;
    maxMs: number | null;
    lost: number;
    outOfOrder: number;
    closedEarly: number;
    errors: number;
    apiCpuMs: number | null;
    apiCpuUsPerDelivery: number | null;
  };
}

describe('bench fanout', () => {
  it('delivers every event to every subscriber once, in order, and reports the figures', async () => {
    const run = await runCli('bench', [
      'fanout',
      '--subscribers',
      '25',
      '--rate',
      '40',
      '--duration',
      '1',
      '--warmup',
      '0.2',
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout.trim()) as FanoutResult;
    expect(r.workload).toBe('fanout');
    expect(r.parameters).toMatchObject({ subscribers: 25, rate: 40, duration: 1 });
    const f = r.figures;
    expect(f.subscribers).toBe(25);
    // 40 contacts, each queued and assigned at once: two events each.
    expect(f.events).toBe(80);
    expect(f.deliveries).toBe(f.events * 25);
    expect(f.lost).toBe(0);
    expect(f.outOfOrder).toBe(0);
    expect(f.closedEarly).toBe(0);
    expect(f.errors).toBe(0);
    expect(f.deliveriesPerS).toBeGreaterThan(0);
    expect(f.p50Ms).toBeGreaterThanOrEqual(0);
    expect(f.p99Ms).toBeGreaterThanOrEqual(f.p50Ms!);
    expect(f.maxMs).toBeGreaterThanOrEqual(f.p99Ms!);
    // The Switchboard process's own CPU over the run, from its /metrics.
    expect(f.apiCpuMs).toBeGreaterThan(0);
    // apiCpuMs is rounded to the ms: the quotient of the rounded figure is within half a ms of it.
    expect(Math.abs(f.apiCpuUsPerDelivery! - (f.apiCpuMs! * 1000) / f.deliveries)).toBeLessThanOrEqual(
      500 / f.deliveries + 0.01,
    );
  });

  it('through HAProxy, refuses more subscribers than HAProxy can hold instead of waiting for them', async () => {
    // As many subscribers as this machine lets a process open files: HAProxy, at two descriptors
    // per proxied connection, holds at most about half (on a machine with a limit above 100,000,
    // the most the bench takes is asked for). The run opened none and waited for nothing.
    const limit = Number(
      /^Max open files\s+\d+\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1],
    );
    const asked = Math.min(Number.isFinite(limit) ? limit : 100_000, 100_000);
    const started = Date.now();
    const run = await runCli('bench', ['fanout', '--haproxy', '--subscribers', String(asked), '--json']);
    expect(run.code, run.stderr).not.toBe(0);
    expect(run.stderr).toMatch(
      new RegExp(
        `HAProxy holds at most \\d+ connections here .*: ${asked} subscribers and the commands need`,
      ),
    );
    expect(run.stderr).not.toMatch(/opening \d+ subscribers/);
    expect(Date.now() - started).toBeLessThan(45_000);
  });

  it('names a bad subscriber count', async () => {
    const run = await runCli('bench', ['fanout', '--subscribers', '0', '--json']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--subscribers: must be an integer from 1/);
  });
});
