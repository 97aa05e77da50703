import { READ_PAGE } from './event-log.ts';
import type { RedisClient } from './scripts.ts';

/**
 * Every field of a hash, in pages of about READ_PAGE (HSCAN), not in one HGETALL or HVALS: Redis
 * runs one command at a time, and HVALS of 10,000 agents held it for 1.3 – 15 ms. Each field is
 * handed on once (HSCAN may return a field twice while the hash grows: repeats are dropped), as it
 * was when its page was read; fields changed during the scan are seen before or after the change.
 * The next page is asked for before this one is handed on.
 */
export async function scanHash(
  redis: RedisClient,
  key: string,
  each: (field: string, value: string) => void,
): Promise<void> {
  const seen = new Set<string>();
  const count = String(READ_PAGE);
  let reply = redis.hscan(key, '0', 'COUNT', count);
  for (;;) {
    const [cursor, flat] = await reply;
    if (cursor !== '0') reply = redis.hscan(key, cursor, 'COUNT', count);
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const field = flat[i]!;
      if (seen.has(field)) continue;
      seen.add(field);
      each(field, flat[i + 1]!);
    }
    if (cursor === '0') return;
  }
}

/**
 * Every field of a hash with its value, handed to `each` a page at a time: a hash of at most
 * READ_PAGE fields in one HGETALL, a larger one by scanHash. What `each` does with a page runs
 * before the next page is awaited, so a large hash never has its whole work done in one turn of the
 * event loop. Scanning costs Redis about three times what one read does (10,000 agents of 300
 * bytes: 9.6 ms in 10 reads of at most 1.6 ms, against 1.3 – 3.6 ms, once 15 ms, in one), so only a
 * hash whose one read would hold Redis for long is scanned.
 */
export async function eachEntry(
  redis: RedisClient,
  key: string,
  each: (field: string, value: string) => void,
): Promise<void> {
  if ((await redis.hlen(key)) > READ_PAGE) return scanHash(redis, key, each);
  const all = await redis.hgetall(key);
  for (const field of Object.keys(all)) each(field, all[field]!);
}

/** Every field of a hash with its value (eachEntry), as [field, value] pairs. */
export async function hashEntries(redis: RedisClient, key: string): Promise<[string, string][]> {
  const out: [string, string][] = [];
  await eachEntry(redis, key, (field, value) => out.push([field, value]));
  return out;
}
