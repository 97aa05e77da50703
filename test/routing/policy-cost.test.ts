/**
 * What each routing policy costs a decision at the shapes that cost it most (docs/ROUTING.md, "The
 * policy the rule takes"): priority aging and least-occupied keep the split and wide shapes' step
 * what longest-available's is, and most-skilled's walk over every skill set holding a skill stays
 * bounded at the limit of 1,024 sets. Redis times each step. On split and wide every policy's
 * workspace is set up first, then their decisions taken in turn (src/cli/bench/shapes.ts,
 * `inTurn`), so whatever else takes the 2 cores meanwhile weighs on every policy alike. The
 * policies are measured again (the faster kept) only when the figures miss: another process can
 * slow a measurement, never speed it up.
 */
import { describe, expect, it } from 'vitest';
import {
  inTurn,
  POLICIES,
  type ShapeRun,
  type StepFigures,
  skilledShape,
  splitSetUp,
  wideSetUp,
} from '../../src/cli/bench/shapes.ts';
import { suiteRedis } from '../support/redis.ts';

describe('decision cost under each routing policy', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  const policies = Object.keys(POLICIES);

  /**
   * Every policy measured (`measure`: all of them, one attempt); while `holds` says the figures
   * miss (at most twice more), all again, keeping the run with the lower median of each.
   */
  async function perPolicy(
    measure: (attempt: number) => Promise<Record<string, StepFigures>>,
    holds: (r: Record<string, StepFigures>) => boolean = (r) =>
      policies.every((p) => r[p]!.medianRedisStepUs! / r['longest-available']!.medianRedisStepUs! < 2),
  ): Promise<Record<string, StepFigures>> {
    const got: Record<string, StepFigures[]> = {};
    for (let attempt = 1; ; attempt++) {
      const measured = await measure(attempt);
      for (const p of policies) got[p] = [...(got[p] ?? []), measured[p]!];
      const best = Object.fromEntries(
        Object.entries(got).map(([p, xs]) => [
          p,
          xs.reduce((a, b) => ((b.medianRedisStepUs ?? 0) < (a.medianRedisStepUs ?? 0) ? b : a)),
        ]),
      );
      if (attempt === 3 || holds(best)) return best;
    }
  }

  /** Every policy's workspace set up by `setUp`, then their decisions in turn. */
  const inTurnPerPolicy =
    (setUp: (policy: string, attempt: number) => Promise<ShapeRun>) =>
    async (attempt: number): Promise<Record<string, StepFigures>> => {
      const runs: ShapeRun[] = [];
      for (const p of policies) runs.push(await setUp(p, attempt));
      const figures = await inTurn(suite.admin, runs);
      return Object.fromEntries(policies.map((p, i) => [p, figures[i]!]));
    };

  it('split pool (2,000 + 2,000 agents): every policy decides at longest-available’s cost', async () => {
    const r = await perPolicy(
      inTurnPerPolicy((p, attempt) =>
        splitSetUp(suite.admin, `pol-split-${p}-${attempt}-${run}`, {
          n: 2000,
          contacts: 20,
          arrivals: 20,
          policy: POLICIES[p],
        }),
      ),
    );
    console.log(JSON.stringify({ shape: 'split', r }));
    const base = r['longest-available']!.medianRedisStepUs!;
    for (const p of policies) {
      expect(r[p]!.assignments, p).toBe(1);
      expect(r[p]!.medianRedisStepUs! / base, p).toBeLessThan(2);
    }
  });

  it('a 32-skill agent with levels against 5,000 distinct sets: every policy decides at longest-available’s cost', async () => {
    const r = await perPolicy(
      inTurnPerPolicy((p, attempt) =>
        wideSetUp(suite.admin, `pol-wide-${p}-${attempt}-${run}`, {
          contacts: 5000,
          cycles: 20,
          levels: true,
          policy: POLICIES[p],
        }),
      ),
    );
    console.log(JSON.stringify({ shape: 'wide, levels', r }));
    const base = r['longest-available']!.medianRedisStepUs!;
    for (const p of policies) {
      expect(r[p]!.assignments, p).toBe(21);
      expect(r[p]!.medianRedisStepUs! / base, p).toBeLessThan(2);
    }
  });

  it('most-skilled over 1,024 skill sets holding the skill (the limit): the walk stays well under 5 ms', async () => {
    const r = await perPolicy(
      async (attempt) => {
        const out: Record<string, StepFigures> = {};
        for (const p of policies)
          out[p] =
            p === 'most-skilled' || p === 'longest-available'
              ? await skilledShape(suite.admin, `pol-skilled-${p}-${attempt}-${run}`, {
                  sets: 1024,
                  decisions: 30,
                  policy: POLICIES[p],
                })
              : ({ medianRedisStepUs: 0 } as StepFigures);
        return out;
      },
      (r) => r['most-skilled']!.medianRedisStepUs! < 2500,
    );
    console.log(JSON.stringify({ shape: 'skilled', r }));
    const skilled = r['most-skilled']!;
    expect(skilled.assignments).toBe(30);
    // Median: a loaded machine can stretch one step, not the middle of thirty.
    expect(skilled.medianRedisStepUs!).toBeLessThan(2500);
  });
});
