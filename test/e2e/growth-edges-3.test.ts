/**
 * The registry of API instances (`sb:instances`) through many starts of registered instances
 * (ADVERTISE_ADDRESS) that never left it: SIGKILLed, OOM-killed, their host gone. Only the HAProxy
 * backend sync pruned it, so a deployment without one running (a balancer of its own reading
 * the registry, the sync stopped, a new address at each start: PORT=0, a pod's address) kept one
 * member per such start for good. Now each registered instance prunes the entries whose last
 * heartbeat is older than PRUNE_AFTER_MS (by Redis's clock) as it heartbeats: the live ones stay.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTANCES_KEY, PRUNE_AFTER_MS } from '../../src/adapters/redis/instance-registry.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { killAllProcesses, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const DEAD = 300;

let redis: TestRedis;
let admin: RedisClient;

beforeAll(async () => {
  redis = await startTestRedis();
  admin = redis.adminClient();
});

afterAll(async () => {
  await killAllProcesses();
  admin?.disconnect();
  await redis?.stop();
});

async function redisMs(): Promise<number> {
  const [s, us] = (await admin.time()) as [string | number, string | number];
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

describe('the registry of API instances after many that were killed', () => {
  it('loses the entries of instances gone for longer than PRUNE_AFTER_MS, and keeps the live ones', async () => {
    // Instances started and SIGKILLed over the last hours: their last heartbeats long past.
    const now = await redisMs();
    const dead: (string | number)[] = [];
    for (let i = 0; i < DEAD; i++)
      dead.push(now - PRUNE_AFTER_MS - 1000 - i * 60_000, `10.9.${i >> 8}.${i & 255}:8080`);
    await admin.zadd(INSTANCES_KEY, ...dead);
    // One killed a moment ago: within PRUNE_AFTER_MS it stays (the sync puts it in maintenance).
    const killed = await startProcess({ roles: 'api', redis, env: { ADVERTISE_ADDRESS: 'auto' } });
    const killedMember = `127.0.0.1:${killed.port}`;
    await waitFor(
      'the first registered',
      async () => (await admin.zscore(INSTANCES_KEY, killedMember)) !== null,
      {
        timeoutMs: 5_000,
      },
    );
    killed.kill('SIGKILL');
    await killed.exited;

    const live = await startProcess({ roles: 'api', redis, env: { ADVERTISE_ADDRESS: 'auto' } });
    const liveMember = `127.0.0.1:${live.port}`;
    await waitFor('the registry pruned', async () => (await admin.zcard(INSTANCES_KEY)) <= 2, {
      timeoutMs: 5_000,
    }).catch(() => undefined);
    const members = await admin.zrange(INSTANCES_KEY, 0, -1);
    expect(members.length, `${members.length} members: ${members.slice(0, 5).join(', ')}, ...`).toBe(2);
    expect(members.sort()).toEqual([killedMember, liveMember].sort());
    await live.stop();
    expect(await admin.zrange(INSTANCES_KEY, 0, -1)).toEqual([killedMember]);
  }, 60_000);
});
