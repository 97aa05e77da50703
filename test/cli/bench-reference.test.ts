/**
 * The reference ACD's dispatcher loop as the bench re-implements it (src/cli/bench/reference.ts):
 * the agent it picks, a drain with every skill pair covered, and the misses (re-queued 1 s back,
 * then a sleep) when some contacts need a pair no agent holds.
 */
import { describe, expect, it } from 'vitest';
import { longestAvailable, referenceWorkload } from '../../src/cli/bench/reference.ts';
import { suiteRedis } from '../support/redis.ts';

describe('the reference loop', () => {
  it('picks, of the agents in every set, the one available longest', () => {
    const english = ['a', '30', 'b', '10', 'c', '20'];
    const billing = ['c', '20', 'a', '30', 'd', '5'];
    // b is in English only and d in Billing only: c (20) beats a (30).
    expect(longestAvailable([english, billing])).toBe('c');
    expect(longestAvailable([english])).toBe('b');
    expect(longestAvailable([english, ['d', '1']])).toBeUndefined();
    expect(longestAvailable([])).toBeUndefined();
  });

  const suite = suiteRedis();

  it('assigns every contact one at a time in 18 Redis calls each', async () => {
    // The bench is an admin's tool (it SCANs its keys away): it runs as the admin.
    const f = await referenceWorkload(
      suite.server.adminUrl,
      { agents: 40, contacts: 300, seed: 42 },
      () => {},
    );
    expect(f).toMatchObject({ assignments: 300, misses: 0, unassignable: 0, lockContended: 0 });
    expect(f.callsPerAssignment).toBe(18);
    expect(f.assignmentsPerS).toBeGreaterThan(0);
    // Its keys are removed afterwards.
    expect(await suite.admin.keys('sb:{bench-reference-*')).toEqual([]);
  });

  it('re-queues a contact no agent can serve and sleeps before the next pop', async () => {
    const f = await referenceWorkload(
      suite.server.adminUrl,
      { agents: 2, contacts: 30, seed: 42, maxSleepMs: 20 },
      () => {},
    );
    expect(f.unassignable).toBeGreaterThan(0);
    expect(f.assignments).toBe(30 - f.unassignable);
    expect(f.misses).toBeGreaterThan(0);
  });
});
