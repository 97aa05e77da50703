/**
 * The fan-out workload's refusals as a user meets them: more subscribers than HAProxy can hold,
 * and a bad count. Its runs (every subscriber gets every event once and in order, direct and
 * through HAProxy, and the figures) are checked on `bench all --tiny` (bench-all.test.ts).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

describe('bench fanout', () => {
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
