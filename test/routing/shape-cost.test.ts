/**
 * The two pool shapes whose decisions used to grow with the pool (BENCH.md), and their variants
 * with proficiency levels: at sizes where a step took over 20 ms before, the median dispatch step,
 * as Redis times it, stays flat. Both sizes are set up first, then their decisions taken in turn
 * (one at each size, again and again: src/cli/bench/shapes.ts, `inTurn`), so whatever else takes
 * the 2 cores meanwhile weighs on both sizes alike. When the figures miss the bound all the same,
 * both are set up and measured in turn again and the faster of the measurements of each kept:
 * another process can slow a step (Redis times a step by the clock, descheduled or not), never
 * speed one up.
 */
import { describe, expect, it } from 'vitest';
import {
  inTurn,
  type ShapeRun,
  type StepFigures,
  splitSetUp,
  wideSetUp,
} from '../../src/cli/bench/shapes.ts';
import { suiteRedis } from '../support/redis.ts';

describe('decision cost at adversarial pool shapes', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);

  /**
   * Both sizes set up and measured in turn; while `holds` says the figures miss (at most twice
   * more), both again, keeping the faster measurement of each. Every measurement is returned too.
   */
  async function faster(
    setUp: (size: 'small' | 'large', attempt: number) => Promise<ShapeRun>,
    holds: (
      best: { small: StepFigures; large: StepFigures },
      all: { small: StepFigures[]; large: StepFigures[] },
    ) => boolean = ({ small, large }) => large.medianRedisStepUs! / small.medianRedisStepUs! < 2,
    steps = false,
  ): Promise<{
    small: StepFigures;
    large: StepFigures;
    all: { small: StepFigures[]; large: StepFigures[] };
  }> {
    const all: Record<'small' | 'large', StepFigures[]> = { small: [], large: [] };
    const best = (xs: StepFigures[]) =>
      xs.reduce((a, b) => ((b.medianRedisStepUs ?? 0) < (a.medianRedisStepUs ?? 0) ? b : a));
    for (let attempt = 1; ; attempt++) {
      const runs = [await setUp('small', attempt), await setUp('large', attempt)];
      const [small, large] = await inTurn(suite.admin, runs, steps);
      all.small.push(small!);
      all.large.push(large!);
      const got = { small: best(all.small), large: best(all.large) };
      if (attempt === 3 || holds(got, all)) return { ...got, all };
    }
  }

  it('multi-skill contacts against a split pool: 4,000 + 4,000 agents cost what 250 + 250 do', async () => {
    const { small, large } = await faster((size, attempt) =>
      splitSetUp(suite.admin, `split-${size}-${attempt}-${run}`, {
        n: size === 'small' ? 250 : 4000,
        contacts: 30,
        arrivals: 30,
      }),
    );
    console.log(JSON.stringify({ shape: 'split', small, large }));
    expect(large.assignments).toBe(1);
    expect(large.medianRedisStepUs! / small.medianRedisStepUs!).toBeLessThan(2);
  });

  it('the split pool with levels (each side at levels 1..5, contacts needing 1..5 of each): 4,000 + 4,000 agents cost what 250 + 250 do, no step over 5 ms', async () => {
    // A step's cost is its work, the same in every attempt (same commands, same state); the
    // machine's other processes add to one attempt's step or another's. Each step's fastest time.
    const worstOf = (runs: StepFigures[]) => {
      const [one, ...more] = runs.map((r) => r.redisStepsUs!);
      for (const other of more) expect(other.length).toBe(one!.length);
      return Math.max(...one!.map((us, i) => Math.min(us, ...more.map((o) => o[i]!))));
    };
    const { small, large, all } = await faster(
      (size, attempt) =>
        splitSetUp(suite.admin, `split-levels-${size}-${attempt}-${run}`, {
          n: size === 'small' ? 250 : 4000,
          contacts: 30,
          arrivals: 30,
          levels: true,
        }),
      (best, runs) =>
        best.large.medianRedisStepUs! / best.small.medianRedisStepUs! < 2 && worstOf(runs.large) <= 5000,
      true,
    );
    const worstUs = worstOf(all.large);
    const brief = ({ redisStepsUs: _, ...f }: StepFigures) => f;
    console.log(
      JSON.stringify({
        shape: 'split, levels',
        small: brief(small),
        large: brief(large),
        worstUs,
        attempts: all.large.length,
      }),
    );
    expect(large.assignments).toBe(1);
    expect(large.redisStepsUs!.length).toBeGreaterThanOrEqual(60);
    expect(large.medianRedisStepUs! / small.medianRedisStepUs!).toBeLessThan(2);
    expect(worstUs).toBeLessThanOrEqual(5000);
  });

  it('a 32-skill agent against 30,000 distinct 4-skill sets costs what 1,000 do', async () => {
    const { small, large } = await faster((size, attempt) =>
      wideSetUp(suite.admin, `wide-${size}-${attempt}-${run}`, {
        contacts: size === 'small' ? 1000 : 30_000,
        cycles: 40,
      }),
    );
    console.log(JSON.stringify({ shape: 'wide', small, large }));
    expect(large.assignments).toBe(41);
    expect(large.medianRedisStepUs! / small.medianRedisStepUs!).toBeLessThan(2);
  });

  it('the same agent, taking any channel, against contacts spread over 16 channels: 30,000 cost what 1,000 do', async () => {
    const { small, large } = await faster((size, attempt) =>
      wideSetUp(suite.admin, `wide16-${size}-${attempt}-${run}`, {
        contacts: size === 'small' ? 1000 : 30_000,
        cycles: 40,
        channels: 16,
      }),
    );
    console.log(JSON.stringify({ shape: 'wide, 16 channels', small, large }));
    expect(large.assignments).toBe(41);
    expect(large.medianRedisStepUs! / small.medianRedisStepUs!).toBeLessThan(2);
  });

  it('the same agent at level 5 in every skill (160 routing skills) against contacts needing levels 1..5: 30,000 cost what 1,000 do', async () => {
    const { small, large } = await faster((size, attempt) =>
      wideSetUp(suite.admin, `wide-levels-${size}-${attempt}-${run}`, {
        contacts: size === 'small' ? 1000 : 30_000,
        cycles: 40,
        levels: true,
      }),
    );
    console.log(JSON.stringify({ shape: 'wide, levels', small, large }));
    expect(large.assignments).toBe(41);
    expect(large.medianRedisStepUs! / small.medianRedisStepUs!).toBeLessThan(2);
  });
});
