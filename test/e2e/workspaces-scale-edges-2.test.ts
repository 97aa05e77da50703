/**
 * Two dispatcher processes sharing many workspaces (one per tenant) on one Redis: each takes about
 * half of the leases (the fair share, `ceil(workspaces / live dispatchers)`), and once one is
 * SIGKILLed the other holds every workspace's lease, each one checked, within the documented time
 * (a lease's TTL and a renewal: 3.3 s with 200 workspaces).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const COUNT = Number(process.env.WSSCALE_WORKSPACES ?? 200);
const WORKSPACES = Array.from({ length: COUNT }, (_, i) => `wsscale2-${i}`);
const TTL_MS = 3000;

/** Each workspace's lease holder (its process id, from the holder's name), or '' when free. */
async function holders(admin: RedisClient): Promise<string[]> {
  const values = await Promise.all(WORKSPACES.map((ws) => admin.get(workspaceKeys(ws).lease)));
  return values.map((v) => (v ? (/-(\d+)-[0-9a-f]{8}$/.exec(v)?.[1] ?? v) : ''));
}

describe('two dispatchers sharing many workspaces', () => {
  let server: TestRedis;
  let admin: RedisClient;
  const procs: SwitchboardProcess[] = [];

  beforeAll(async () => {
    server = await startTestRedis();
    admin = server.adminClient();
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    admin?.disconnect();
    await server?.stop();
  });

  it('split the leases about evenly, and the survivor serves every workspace after a SIGKILL', async () => {
    const env = { WORKSPACES: WORKSPACES.join(','), LEASE_TTL_MS: String(TTL_MS) };
    for (const name of ['dispatcher-a', 'dispatcher-b'])
      procs.push(
        await startProcess({ roles: 'dispatcher', name, redis: server, env, readyTimeoutMs: 60_000 }),
      );
    const [a, b] = procs as [SwitchboardProcess, SwitchboardProcess];
    const half = Math.ceil((COUNT + 1) / 2); // the workspaces and `default`
    const split = await waitFor(
      'the leases split between the two dispatchers',
      async () => {
        const h = await holders(admin);
        const ofA = h.filter((x) => x === String(a.pid)).length;
        const ofB = h.filter((x) => x === String(b.pid)).length;
        return ofA + ofB === COUNT && ofA <= half && ofB <= half ? { ofA, ofB } : undefined;
      },
      { timeoutMs: 20_000 },
    );
    expect(split.ofA).toBeGreaterThanOrEqual(COUNT / 2 - 2);
    expect(split.ofB).toBeGreaterThanOrEqual(COUNT / 2 - 2);

    b.kill('SIGKILL');
    await b.exited;
    const killedAt = Date.now();
    await waitFor(
      'every workspace leased by the survivor',
      async () => {
        const h = await holders(admin);
        const missing = h.filter((x) => x !== String(a.pid)).length;
        return missing === 0 ? true : undefined;
      },
      { timeoutMs: 20_000, everyMs: 100 },
    );
    const tookMs = Date.now() - killedAt;
    console.log(`${COUNT} workspaces: every lease with the survivor ${tookMs} ms after the SIGKILL`);
    // A TTL for the dead holder's leases, a renewal, and the scheduling of a busy test machine.
    expect(tookMs).toBeLessThanOrEqual(TTL_MS + TTL_MS / 3 + 1500);
  }, 90_000);
});
