/**
 * A Lua step taking any number of keys (`<name>-any.lua`, such as the interval projection's) on a
 * Redis Cluster, called in the same tick as other commands for other slots: each reaches its own
 * node. The clients write each command when it is issued (src/adapters/redis/client.ts); under
 * ioredis's auto-pipelining, which groups a step by its first argument (the number of keys), some
 * pipelines mixed nodes and failed with "All keys in the pipeline should belong to the same slots
 * allocation group".
 */
import { describe, expect, it } from 'vitest';
import { luaScript, runLua } from '../../src/adapters/redis/scripts.ts';
import { suiteRedis } from '../support/redis.ts';

const COUNT = luaScript('count', new URL('../support/lua/count-any.lua', import.meta.url));

describe('a step with any number of keys', () => {
  const suite = suiteRedis();

  it('runs beside other slots’ commands in the same tick, every call on its own node', async () => {
    const run = Date.now().toString(36);
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const tag = `sb:{lua-any-${run}-${i}}`;
      const keys = Array.from({ length: 1 + (i % 4) }, (_, k) => `${tag}:k${k}`);
      calls.push(runLua(suite.redis, COUNT, keys, [String(i)]));
      calls.push(suite.redis.get(`sb:{other-${run}-${i}}:x`));
    }
    const got = await Promise.all(calls);
    expect(got.filter((_, j) => j % 2 === 0)).toEqual(Array.from({ length: 200 }, (_, i) => 1 + (i % 4)));
    expect(await suite.redis.get(`sb:{lua-any-${run}-199}:k3`)).toBe('199');
  });
});
