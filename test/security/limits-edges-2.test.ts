/**
 * The slots of open WebSockets (WS_MAX_PER_KEY) renewed after a Redis outage longer than their
 * lifetime: the renewal only updated members still there (ZADD XX), so a socket whose slot lapsed
 * while Redis did not answer stayed open and no longer counted against its key's cap, for as long
 * as it stayed open. The renewal of an instance's open sockets now puts a lapsed slot back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SOCKET_SLOT_TTL_MS, SOCKET_SLOTS } from '../../src/adapters/http/limits.ts';
import { type RedisClient, runLua } from '../../src/adapters/redis/scripts.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let server: TestRedis;
let redis: RedisClient;

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});

afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

describe('socket slots renewed after they lapsed', () => {
  it('a renewal puts back the slot of a socket still open, and the cap counts it again', async () => {
    const key = 'sb:ws:slots-edges-2';
    const take = (member: string) =>
      runLua(redis, SOCKET_SLOTS, [key], ['take', 2, SOCKET_SLOT_TTL_MS, member]);
    expect(await take('i1|1')).toBe(1);
    expect(await take('i1|2')).toBe(1);
    expect(await take('i2|1')).toBe(0);
    // Redis away longer than the slots' lifetime: both lapse (here removed as the lapse removes them).
    await redis.zremrangebyscore(key, '-inf', '+inf');
    expect(await take('i2|1')).toBe(1);
    await redis.zrem(key, 'i2|1');
    // The instance's next renewal, its two sockets still open: both count again.
    expect(await runLua(redis, SOCKET_SLOTS, [key], ['keep', SOCKET_SLOT_TTL_MS, 'i1|1', 'i1|2'])).toBe(2);
    expect((await redis.zrange(key, 0, -1)).sort()).toEqual(['i1|1', 'i1|2']);
    expect(await take('i2|2')).toBe(0);
    // A renewal of slots that are there changes no count.
    expect(await runLua(redis, SOCKET_SLOTS, [key], ['keep', SOCKET_SLOT_TTL_MS, 'i1|1', 'i1|2'])).toBe(0);
    expect(await redis.pttl(key)).toBeGreaterThan(SOCKET_SLOT_TTL_MS - 5000);
  });
});
