/**
 * The bench's SLOWLOG timing on a Redis it is pointed at (`--redis-url`): it changes the server's
 * SLOWLOG settings while it measures, and puts back the ones it found, not Redis's defaults.
 */
import { describe, expect, it } from 'vitest';
import { scriptCalls, startScriptTiming } from '../../src/cli/bench/redis-time.ts';
import { suiteRedis } from '../support/redis.ts';

describe("the bench's Lua step timing", () => {
  const suite = suiteRedis();

  it('puts back the SLOWLOG settings it found', async () => {
    const r = suite.admin;
    const setting = async (name: string) => ((await r.config('GET', name)) as string[])[1];
    await r.config('SET', 'slowlog-log-slower-than', '2500');
    await r.config('SET', 'slowlog-max-len', '77');
    await startScriptTiming(r);
    expect(await setting('slowlog-log-slower-than')).toBe('0');
    await r.eval("return redis.call('PING')", 0);
    const calls = await scriptCalls(r);
    expect(Array.isArray(calls)).toBe(true);
    expect(await setting('slowlog-log-slower-than')).toBe('2500');
    expect(await setting('slowlog-max-len')).toBe('77');
  });
});
