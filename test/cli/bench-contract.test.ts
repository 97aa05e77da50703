/**
 * `bench contract`: the writes users see of seed cycles, written again alone beside the floor step,
 * as a user runs it (its own redis-server). A seed cycle writes two commands, three events and two
 * outcomes, and its documents five times; the step writes every recorded entry again (the workload
 * checks the lengths); decoding and encoding the documents costs more than writing their texts.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

interface ContractResult {
  workload: string;
  parameters: Record<string, unknown>;
  figures: {
    cycles: number;
    perCycle: Record<string, number>;
    textsUsPerCycle: number;
    encodedUsPerCycle: number;
    floorUsPerStep: number;
    textsInFloorSteps: number;
    encodedInFloorSteps: number;
    withoutOutcomesUsPerCycle: number;
    rounds: { texts: number; withoutOutcomes: number; encoded: number; floor: number }[];
  };
}

describe('bench contract', () => {
  it("writes again what 200 seed cycles wrote, and times it against the floor step's", async () => {
    const run = await runCli('bench', ['contract', '--contacts', '200', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as ContractResult;
    expect(r.workload).toBe('contract');
    expect(r.parameters).toMatchObject({ agents: 40, contacts: 200 });
    const f = r.figures;
    // The contacts no agent can take are not queued; every other one was assigned and completed.
    expect(f.cycles).toBeGreaterThan(150);
    expect(f.cycles).toBeLessThanOrEqual(200);
    expect(f.perCycle).toMatchObject({
      commands: 2,
      events: 3,
      outcomes: 2,
      documentWrites: 5,
      documentReads: 4,
    });
    expect(f.perCycle.bytesWritten).toBeGreaterThan(1000);
    expect(f.rounds).toHaveLength(5);
    for (const round of f.rounds) {
      expect(round.texts).toBeGreaterThan(0);
      expect(round.withoutOutcomes).toBeGreaterThan(0);
      expect(round.floor).toBeGreaterThan(0);
    }
    expect(f.withoutOutcomesUsPerCycle).toBeGreaterThan(0);
    // Decoding and encoding each document (about 400 bytes) adds to the same commands: so each
    // one's fastest round (Redis times its commands by the clock, and a busy machine only adds to
    // a round, as it once carried the median of texts past that of encoded: 64.7 against 61).
    const fastest = (k: 'texts' | 'encoded') => Math.min(...f.rounds.map((x) => x[k]));
    expect(fastest('encoded')).toBeGreaterThan(fastest('texts'));
    expect(f.textsInFloorSteps).toBeCloseTo(f.textsUsPerCycle / f.floorUsPerStep, 1);
  });

  it('runs on its own redis-server only', async () => {
    const shared = await runCli('bench', ['contract', '--redis-url', 'redis://127.0.0.1:6379']);
    expect(shared.code).toBe(2);
    expect(shared.stderr).toMatch(/--redis-url: contract times its steps by resetting Redis's statistics/);
  });
});
