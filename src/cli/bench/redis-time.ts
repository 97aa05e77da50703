import { createHash } from 'node:crypto';
import { declaredScripts, type RedisClient } from '../../adapters/redis/scripts.ts';

/**
 * Redis's own time for each Lua step, from SLOWLOG with a 0 threshold: what a workload costs the
 * shard, whatever the client saw. Only for a Redis the bench owns (it changes the SLOWLOG settings).
 */
export async function startScriptTiming(redis: RedisClient): Promise<void> {
  for (const node of masters(redis)) {
    await node.config('SET', 'slowlog-log-slower-than', '0');
    await node.config('SET', 'slowlog-max-len', '1000000');
    await node.slowlog('RESET');
  }
}

export interface ScriptTime {
  readonly calls: number;
  readonly us: number;
}

/** µs and calls per Lua step (by the name it was declared with) since startScriptTiming; then stops. */
export async function scriptTimes(redis: RedisClient): Promise<Record<string, ScriptTime>> {
  const names = new Map<string, string>();
  for (const s of declaredScripts)
    names.set(createHash('sha1').update(s.lua).digest('hex'), s.command.replace(/^sb_(.*)_[0-9a-f]+$/, '$1'));
  const out: Record<string, { calls: number; us: number }> = {};
  for (const node of masters(redis)) {
    const entries = (await node.slowlog('GET', 1_000_000)) as [number, number, number, string[]][];
    for (const [, , us, args] of entries) {
      const name = args[0]?.toLowerCase() === 'evalsha' ? names.get(args[1] ?? '') : undefined;
      if (!name) continue;
      const t = out[name] ?? { calls: 0, us: 0 };
      t.calls++;
      t.us += us;
      out[name] = t;
    }
    await node.config('SET', 'slowlog-log-slower-than', '10000');
    await node.slowlog('RESET');
  }
  return out;
}

/** Each step's µs divided by `n` (assignments), and their total. */
export function perAssignment(times: Record<string, ScriptTime>, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  let total = 0;
  for (const [name, t] of Object.entries(times)) {
    out[name] = Math.round((t.us / n) * 10) / 10;
    total += t.us;
  }
  out.total = Math.round((total / n) * 10) / 10;
  return out;
}

function masters(redis: RedisClient): RedisClient[] {
  return 'nodes' in redis ? redis.nodes('master') : [redis];
}
