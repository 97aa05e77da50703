/**
 * `bench decision` with short queues: `--queues 30 --decisions 5` passed the options check (each
 * queue at least --decisions plus the 20 warm-up decisions) and then failed with "agent-5 made 0
 * assignments": the contacts' skills were random, so a short queue could hold fewer contacts of a
 * skill pair than agents holding it. The queue now holds a contact for each agent's skills (the
 * rest random): every queue the check lets through runs, and a shorter one is refused (exit 2).
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

const bench = (args: readonly string[]) => runCli('bench', args);

interface DecisionRun {
  workload: string;
  parameters: { queues: number[]; decisions: number; seed: number };
  figures: { medianUs: Record<string, number | null>; ratio: number | null; decisions: number };
}

describe('bench decision with short queues', () => {
  it('--queues 30 --decisions 5, and queues as short as the check allows over several seeds: every agent finds a contact', async () => {
    for (const args of [
      ['--queues', '30', '--decisions', '5'],
      ['--queues', '21,25', '--decisions', '1', '--seed', '7'],
      ['--queues', '25,26', '--decisions', '5', '--seed', '3'],
    ]) {
      const run = await bench(['decision', ...args, '--json']);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(0);
      const r = JSON.parse(run.stdout.trim()) as DecisionRun;
      expect(r.workload).toBe('decision');
      for (const size of r.parameters.queues) expect(r.figures.medianUs[String(size)]).toBeGreaterThan(0);
      expect(r.figures.ratio).toBeGreaterThan(0);
    }
  });

  it('a queue shorter than --decisions plus the warm-up is refused up front (exit 2), naming the most it allows', async () => {
    const run = await bench(['decision', '--queues', '24', '--decisions', '5', '--json']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--decisions: must be at most the shortest queue less 20 \(4\)/);
    expect(run.stdout).toBe('');
  });
});
