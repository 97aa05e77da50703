/**
 * The two pool shapes whose decisions used to grow with the pool (BENCH.md): at sizes where a
 * step took over 20 ms before, the median dispatch step, as Redis times it, stays flat.
 */
import { describe, expect, it } from 'vitest';
import { splitShape, wideShape } from '../../src/cli/bench/shapes.ts';
import { suiteRedis } from '../support/redis.ts';

describe('decision cost at adversarial pool shapes', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);

  it('multi-skill contacts against a split pool: 4,000 + 4,000 agents cost what 250 + 250 do', async () => {
    const small = await splitShape(suite.redis, `split-s-${run}`, { n: 250, contacts: 30, arrivals: 30 });
    const large = await splitShape(suite.redis, `split-l-${run}`, { n: 4000, contacts: 30, arrivals: 30 });
    console.log(JSON.stringify({ shape: 'split', small, large }));
    expect(large.assignments).toBe(1);
    expect(large.medianRedisStepUs! / small.medianRedisStepUs!).toBeLessThan(2);
  });

  it('a 32-skill agent against 30,000 distinct 4-skill sets costs what 1,000 do', async () => {
    const small = await wideShape(suite.redis, `wide-s-${run}`, { contacts: 1000, cycles: 40 });
    const large = await wideShape(suite.redis, `wide-l-${run}`, { contacts: 30_000, cycles: 40 });
    console.log(JSON.stringify({ shape: 'wide', small, large }));
    expect(large.assignments).toBe(41);
    expect(large.medianRedisStepUs! / small.medianRedisStepUs!).toBeLessThan(2);
  });
});
