import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { masters } from '../../src/cli/bench/redis-time.ts';

type SlowlogEntry = [id: number, at: number, us: number, args: string[], client: string, name: string];

/**
 * What `run` returns, and every command Redis ran meanwhile (each as its arguments, oldest first
 * on each master; the commands a Lua step runs are logged too), read from SLOWLOG at a 0 threshold
 * through `admin` (on a cluster, every master's, one master's after another: a workspace's keys
 * are on one). The
 * threshold is put back to 10 ms after.
 */
export async function commandsDuring<T>(
  admin: RedisClient,
  run: () => Promise<T>,
): Promise<{ result: T; calls: string[][] }> {
  await admin.ping(); // a cluster client knows its masters once connected
  const nodes = masters(admin);
  for (const node of nodes) {
    await node.config('SET', 'slowlog-log-slower-than', '0');
    await node.config('SET', 'slowlog-max-len', '100000');
    await node.slowlog('RESET');
  }
  try {
    const result = await run();
    const calls: string[][] = [];
    for (const node of nodes) {
      const log = (await node.slowlog('GET', '-1')) as SlowlogEntry[];
      calls.push(...log.reverse().map((e) => e[3]));
    }
    return { result, calls };
  } finally {
    for (const node of nodes) {
      await node.config('SET', 'slowlog-log-slower-than', '10000');
      await node.slowlog('RESET');
    }
  }
}

/**
 * What `run` returns, and the duration (µs, Redis's own timing) of each Lua step Redis ran
 * meanwhile (EVAL, EVALSHA or FCALL), read from SLOWLOG at a 0 threshold through `admin`. Throws
 * when there was none: a bound on no steps holds for nothing.
 */
export async function stepDurations<T>(
  admin: RedisClient,
  run: () => Promise<T>,
): Promise<{ result: T; us: number[] }> {
  await admin.config('SET', 'slowlog-log-slower-than', '0');
  await admin.config('SET', 'slowlog-max-len', '200000');
  await admin.slowlog('RESET');
  try {
    const result = await run();
    const log = (await admin.slowlog('GET', '-1')) as SlowlogEntry[];
    const us = log
      .filter(([, , , args]) => /^(fcall|evalsha|eval)$/i.test(args[0] ?? ''))
      .map(([, , t]) => t);
    if (us.length === 0) throw new Error('no Lua step ran: nothing to time');
    return { result, us };
  } finally {
    await admin.config('SET', 'slowlog-log-slower-than', '10000');
    await admin.slowlog('RESET');
  }
}
