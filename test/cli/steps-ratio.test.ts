// `bench steps`' ratio: the median of the rounds' own ratios, so one round stalled on one side
// (commandstats' µs are wall time inside the call) does not carry it.
import { describe, expect, it } from 'vitest';
import { roundsRatio, type StepCosts } from '../../src/cli/bench/steps.ts';

const round = (queueUs: number, dispatchUs: number, completeUs: number): StepCosts => ({
  queueUs,
  dispatchUs,
  completeUs,
  cycleUs: queueUs + dispatchUs + completeUs,
  decisions: 20,
});

describe('bench steps: the ratio of interleaved rounds', () => {
  it('one stalled round on one side moves the ratio of sums past 2, and the rounds’ median not at all', () => {
    const theirs = Array.from({ length: 7 }, () => round(40, 50, 45));
    const mine = Array.from({ length: 7 }, () => round(40, 50, 45));
    // A stall of 20 ms in one round's dispatch step (20 decisions of 50 µs).
    mine[3] = round(40, 50 + 20_000 / 20, 45);
    const sums = (rounds: StepCosts[]) => rounds.reduce((a, c) => a + c.cycleUs, 0);
    expect(sums(mine) / sums(theirs)).toBeGreaterThan(2);
    expect(roundsRatio(mine, theirs)).toEqual({ queue: 1, dispatch: 1, complete: 1, cycle: 1 });
  });

  it('a side cheaper in every round reads below 1 by what it saves, per step', () => {
    const theirs = [round(40, 50, 45), round(44, 52, 47), round(38, 49, 44)];
    const mine = theirs.map((c) => round(c.queueUs, c.dispatchUs * 0.9, c.completeUs));
    const r = roundsRatio(mine, theirs);
    expect(r.queue).toBe(1);
    expect(r.dispatch).toBe(0.9);
    expect(r.complete).toBe(1);
    expect(r.cycle).toBeGreaterThan(0.95);
    expect(r.cycle).toBeLessThan(0.97);
  });
});
