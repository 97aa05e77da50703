/**
 * The two pool shapes whose decisions used to grow with the pool (BENCH.md): at sizes where a
 * step took over 20 ms before, the median dispatch step, as Redis times it, stays flat.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { splitShape, wideShape } from '../../src/cli/bench/shapes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

describe('decision cost at adversarial pool shapes', () => {
  let server: TestRedis;
  let redis: RedisClient;
  const run = Date.now().toString(36);

  beforeAll(async () => {
    server = await startTestRedis();
    redis = server.client();
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('multi-skill contacts against a split pool: 4,000 + 4,000 agents cost what 250 + 250 do', async () => {
    const small = await splitShape(redis, `split-s-${run}`, { n: 250, contacts: 30, arrivals: 30 });
    const large = await splitShape(redis, `split-l-${run}`, { n: 4000, contacts: 30, arrivals: 30 });
    console.log(JSON.stringify({ shape: 'split', small, large }));
    expect(large.assignments).toBe(1);
    expect(large.medianRedisStepUs! / small.medianRedisStepUs!).toBeLessThan(2);
  });

  it('a 32-skill agent against 30,000 distinct 4-skill sets costs what 1,000 do', async () => {
    const small = await wideShape(redis, `wide-s-${run}`, { contacts: 1000, cycles: 40 });
    const large = await wideShape(redis, `wide-l-${run}`, { contacts: 30_000, cycles: 40 });
    console.log(JSON.stringify({ shape: 'wide', small, large }));
    expect(large.assignments).toBe(41);
    expect(large.medianRedisStepUs! / small.medianRedisStepUs!).toBeLessThan(2);
  });
});
