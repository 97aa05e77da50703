/**
 * The wait histogram's fold step adds its counts only from the cursor it read: a second fold of
 * the same events (a stalled instance whose lock ran out) changes nothing, so no decision is ever
 * counted twice.
 */
import { describe, expect, it } from 'vitest';
import { FOLD } from '../../src/adapters/http/wait-histogram.ts';
import { runLua } from '../../src/adapters/redis/scripts.ts';
import { suiteRedis } from '../support/redis.ts';

describe('the wait histogram fold', () => {
  const suite = suiteRedis();

  it('applies once from its cursor; a fold from a cursor that moved changes nothing', async () => {
    const key = `sb:{fold-${Date.now().toString(36)}}:metrics:wait`;
    await suite.redis.hset(key, 'cursor', '10-0');
    const fold = ['le:1', 2, 'count', 2, 'sum_ms', 900];
    expect(await runLua(suite.redis, FOLD, [key], ['10-0', '20-0', ...fold])).toBe(1);
    // The same events again, as a second instance that read from 10-0 would fold them.
    expect(await runLua(suite.redis, FOLD, [key], ['10-0', '20-0', ...fold])).toBe(0);
    expect(await suite.redis.hgetall(key)).toEqual({
      cursor: '20-0',
      'le:1': '2',
      count: '2',
      sum_ms: '900',
    });
    expect(
      await runLua(suite.redis, FOLD, [key], ['20-0', '30-0', 'le:5', 1, 'count', 1, 'sum_ms', 4000]),
    ).toBe(1);
    expect(await suite.redis.hgetall(key)).toEqual({
      cursor: '30-0',
      'le:1': '2',
      'le:5': '1',
      count: '3',
      sum_ms: '4900',
    });
  });
});
