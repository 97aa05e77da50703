import type { RedisClient } from '../../src/adapters/redis/scripts.ts';

type SlowlogEntry = [id: number, at: number, us: number, args: string[], client: string, name: string];

/**
 * What `run` returns, and every command Redis ran meanwhile (each as its arguments, oldest first;
 * the commands a Lua step runs are logged too), read from SLOWLOG at a 0 threshold through `admin`.
 * The threshold is put back to 10 ms after.
 */
export async function commandsDuring<T>(
  admin: RedisClient,
  run: () => Promise<T>,
): Promise<{ result: T; calls: string[][] }> {
  await admin.config('SET', 'slowlog-log-slower-than', '0');
  await admin.config('SET', 'slowlog-max-len', '100000');
  await admin.slowlog('RESET');
  try {
    const result = await run();
    const log = (await admin.slowlog('GET', '-1')) as SlowlogEntry[];
    return { result, calls: log.reverse().map((e) => e[3]) };
  } finally {
    await admin.config('SET', 'slowlog-log-slower-than', '10000');
    await admin.slowlog('RESET');
  }
}
