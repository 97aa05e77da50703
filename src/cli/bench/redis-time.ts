import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { declaredScripts, type RedisClient } from '../../adapters/redis/scripts.ts';

/** Each server's SLOWLOG settings before startScriptTiming changed them, put back by scriptCalls. */
const slowlogSettings = new WeakMap<Redis, [threshold: string, maxLen: string]>();

/** The SLOWLOG entries kept while timing (each step and each command it runs is one). */
export const SLOWLOG_KEEP = 1_000_000;

/** Each server's SLOWLOG length while timing: a log that reached it lost its oldest entries. */
const slowlogKeep = new WeakMap<Redis, number>();

/** SLOWLOG filled up while timing: its oldest steps were dropped, so the sums would be short. */
export class SlowlogFull extends Error {
  constructor(readonly keep: number) {
    super(
      `SLOWLOG filled up (${keep.toLocaleString('en-US')} entries) while timing the steps, so the oldest were dropped; time a smaller workload (fewer --contacts, --decisions or --events)`,
    );
  }
}

/**
 * Redis's own time for each Lua step, from SLOWLOG with a 0 threshold: what a workload costs the
 * shard, whatever the client saw. It clears the server's SLOWLOG (before and after) and changes
 * its settings until scriptCalls puts them back: best on a Redis the bench owns.
 */
export async function startScriptTiming(redis: RedisClient, keep = SLOWLOG_KEEP): Promise<void> {
  for (const node of masters(redis)) {
    slowlogKeep.set(node, keep);
    if (!slowlogSettings.has(node)) {
      const [, threshold = '10000'] = (await node.config('GET', 'slowlog-log-slower-than')) as string[];
      const [, maxLen = '128'] = (await node.config('GET', 'slowlog-max-len')) as string[];
      slowlogSettings.set(node, [threshold, maxLen]);
    }
    await node.config('SET', 'slowlog-log-slower-than', '0');
    await node.config('SET', 'slowlog-max-len', String(keep));
    await node.slowlog('RESET');
  }
}

export interface ScriptCall {
  /** The name the step was declared with (`dispatch`, `project`, `append`, ...). */
  readonly name: string;
  /** Its first key, which names the workspace. */
  readonly firstKey: string;
  readonly us: number;
  /**
   * Of `us`, the time inside the Redis commands the step ran (their own SLOWLOG entries); the rest
   * is the step's Lua around them. 0 for a plain append.
   */
  readonly commandsUs: number;
  /** It ran as a script (EVALSHA: the text this version declares), not as a Redis Function. */
  readonly asScript: boolean;
}

/**
 * Every Lua step Redis ran since startScriptTiming, oldest last; the timing is then stopped.
 * Throws SlowlogFull (the settings put back) when the log filled up and lost its oldest entries.
 */
export async function scriptCalls(redis: RedisClient): Promise<ScriptCall[]> {
  // A step runs as EVALSHA <sha> or, written as a Redis Function, FCALL <command name>.
  const names = new Map<string, string>();
  for (const s of declaredScripts) {
    const name = s.command.replace(/^sb_(.*)_[0-9a-f]+$/, '$1');
    names.set(createHash('sha1').update(s.lua).digest('hex'), name);
    if (s.library !== undefined) names.set(s.command, name);
  }
  const out: { name: string; firstKey: string; us: number; commandsUs: number; asScript: boolean }[] = [];
  let full: number | undefined;
  for (const node of masters(redis)) {
    const keep = slowlogKeep.get(node) ?? SLOWLOG_KEEP;
    slowlogKeep.delete(node);
    const entries = (await node.slowlog('GET', keep)) as [number, number, number, string[], string][];
    if (entries.length >= keep) full = keep;
    // Newest first: the commands a step ran are logged before it (older), from client "?:0", so
    // they follow its entry here, up to the next entry of a client.
    let running: (typeof out)[number] | undefined;
    for (const [, , us, args, client] of entries) {
      if (client === '?:0') {
        if (running) running.commandsUs += us;
        continue;
      }
      running = undefined;
      // EVALSHA <sha> | FCALL <name>, <numkeys> <first key> ...; a command appended without an
      // Idempotency-Key is a plain XADD <command stream> (the append step's work without the step).
      // The commands a step runs are logged too: they are the step's time.
      const command = args[0]?.toLowerCase();
      const name = command === 'evalsha' || command === 'fcall' ? names.get(args[1] ?? '') : undefined;
      if (name) {
        running = { name, firstKey: args[3] ?? '', us, commandsUs: 0, asScript: command === 'evalsha' };
        out.push(running);
      } else if (command === 'xadd' && args[1]?.endsWith(':commands'))
        out.push({ name: 'append', firstKey: args[1], us, commandsUs: 0, asScript: false });
    }
    // The settings the server had before the timing began (the defaults when it was not begun here).
    const [threshold, maxLen] = slowlogSettings.get(node) ?? ['10000', '128'];
    slowlogSettings.delete(node);
    await node.config('SET', 'slowlog-log-slower-than', threshold);
    await node.slowlog('RESET');
    await node.config('SET', 'slowlog-max-len', maxLen);
  }
  if (full !== undefined) throw new SlowlogFull(full);
  return out;
}

export interface ScriptTime {
  readonly calls: number;
  readonly us: number;
  /** Of `us`, the time inside the commands the steps ran. */
  readonly commandsUs: number;
}

/**
 * µs and calls per Lua step since startScriptTiming, of the steps `keep` keeps (all by default);
 * the timing is then stopped.
 */
export async function scriptTimes(
  redis: RedisClient,
  keep: (c: ScriptCall) => boolean = () => true,
): Promise<Record<string, ScriptTime>> {
  const out: Record<string, { calls: number; us: number; commandsUs: number }> = {};
  for (const c of await scriptCalls(redis)) {
    if (!keep(c)) continue;
    const t = out[c.name] ?? { calls: 0, us: 0, commandsUs: 0 };
    t.calls++;
    t.us += c.us;
    t.commandsUs += c.commandsUs;
    out[c.name] = t;
  }
  return out;
}

/** The share of the steps' time spent inside the commands they ran (the rest is their Lua). */
export function commandsShare(times: Record<string, ScriptTime>): number {
  let us = 0;
  let commandsUs = 0;
  for (const t of Object.values(times)) {
    us += t.us;
    commandsUs += t.commandsUs;
  }
  return us > 0 ? Math.round((commandsUs / us) * 1000) / 1000 : 0;
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

/**
 * CPU seconds Redis's main thread has used (INFO cpu, from the server's own rusage), summed over
 * the masters, in µs: unlike SLOWLOG's wall time, time the server spent descheduled on a busy
 * machine is not in it, and the parsing and replies around each call are.
 */
export async function mainThreadCpuUs(redis: RedisClient): Promise<number> {
  let us = 0;
  for (const node of masters(redis)) {
    const info = await node.info('cpu');
    const read = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? Number.NaN);
    us += (read('used_cpu_user_main_thread') + read('used_cpu_sys_main_thread')) * 1e6;
  }
  return us;
}

/** The masters of a client's target: the one server, or each master of a cluster. */
export function masters(redis: RedisClient): Redis[] {
  return 'nodes' in redis ? redis.nodes('master') : [redis];
}

/** How many times Redis ran `command` (INFO commandstats, every master; calls inside Lua included). */
export async function commandCalls(redis: RedisClient, command: string): Promise<number> {
  let n = 0;
  for (const node of masters(redis)) {
    const info = (await node.info('commandstats')) as string;
    n += Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
  }
  return n;
}

export interface RedisStats {
  readonly evalCalls: number;
  readonly evalUs: number;
  readonly cpuUs: number;
}

/** EVAL/EVALSHA/FCALL calls and µs (commandstats) and main-thread CPU µs, so far. */
export async function redisStats(redis: RedisClient): Promise<RedisStats> {
  const stats = (await redis.info('commandstats')) as string;
  const cpu = (await redis.info('cpu')) as string;
  let evalCalls = 0;
  let evalUs = 0;
  for (const [, calls, usec] of stats.matchAll(/cmdstat_(?:eval|evalsha|fcall):calls=(\d+),usec=(\d+)/g)) {
    evalCalls += Number(calls);
    evalUs += Number(usec);
  }
  const read = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(cpu)?.[1] ?? 0);
  return {
    evalCalls,
    evalUs,
    cpuUs: (read('used_cpu_user_main_thread') + read('used_cpu_sys_main_thread')) * 1e6,
  };
}
