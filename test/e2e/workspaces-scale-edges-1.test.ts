/**
 * One process serving many workspaces (one per tenant) on one Redis. Each workspace a process
 * serves holds Redis connections of its own (the projector role's two blocking reads, the
 * dispatcher role's one), so the number of workspaces runs into Redis's `maxclients` (or the
 * process's open-file limit). Past it, a user saw a warning per workspace and per retry (hundreds
 * a second) telling them to check that Redis is up, which it was. Now it says what to do (raise
 * maxclients and the open-file limit, or spread the workspaces) in the retries of one workspace a
 * role, with how many failures of the others it left out, and serves every workspace once Redis
 * takes the connections, without a restart; and the connections stay at three per workspace
 * (docs/DEPLOYMENT.md, "Many workspaces"). A failure of a workspace's own keys is still logged for
 * each workspace, though two read the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WORKSPACES = Array.from({ length: 200 }, (_, i) => `wsscale1-${i}`);
/** The projector role's two blocking connections and the dispatcher role's one, per workspace. */
const PER_WORKSPACE = 3;

/** The connections Redis has, without the admin's own. */
async function clients(admin: RedisClient): Promise<number> {
  return Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))?.[1]) - 1;
}

describe('one process serving many workspaces', () => {
  let server: TestRedis;
  let admin: RedisClient;
  let proc: SwitchboardProcess | undefined;

  beforeAll(async () => {
    server = await startTestRedis();
    admin = server.adminClient();
  });

  afterAll(async () => {
    await proc?.stop();
    admin?.disconnect();
    await server?.stop();
  });

  it("says what to do in one workspace's lines when Redis is out of connections, and serves every workspace once it has them", async () => {
    if (server.target === 'cluster') return; // maxclients is set on one node here
    // Room for the process's own connections and about half the workspaces' loops.
    await admin.call('CONFIG', 'SET', 'maxclients', String(20 + (WORKSPACES.length * PER_WORKSPACE) / 2));
    proc = await startProcess({
      roles: 'projector,dispatcher',
      redis: server,
      env: { WORKSPACES: WORKSPACES.join(','), LOG_LEVEL: 'warn' },
      readyTimeoutMs: 60_000,
    });
    const failed = () => proc!.logs.filter((l) => l.includes('workspace loop failed'));
    await waitFor(
      'a workspace loop to fail for want of a connection',
      () => (failed().length > 0 ? true : undefined),
      { timeoutMs: 30_000 },
    );
    // Several rounds of the loops' retries (their backoff reaches 2 s).
    await sleep(5000);
    const lines = failed();
    // Refused connections name the limits; a read whose connection never opened says so, with
    // the general advice (its error does not tell why; which of the two a loop meets is timing).
    const refused = lines.filter((l) => l.includes('max number of clients reached'));
    for (const l of refused) {
      expect(l).toMatch(/maxclients/);
      expect(l).toMatch(/open-file limit/);
      expect(l).not.toMatch(/Check that Redis is up/);
    }
    // One workspace's retries a runner (projector, intervals, dispatcher) and kind of failure
    // (refused, or a read that never got its connection), the others counted in them: not a line
    // per workspace and retry.
    const named = new Set(lines.map((l) => /"workspace":"([^"]+)"/.exec(l)?.[1]));
    expect(named.size, lines.slice(0, 8).join('\n')).toBeLessThanOrEqual(6);
    expect(lines.length).toBeLessThanOrEqual(40);

    await admin.call('CONFIG', 'SET', 'maxclients', '10000');
    const up = await waitFor(
      'every workspace loop connected',
      async () => {
        const n = await clients(admin);
        return n >= WORKSPACES.length * PER_WORKSPACE + 1 ? n : undefined;
      },
      { timeoutMs: 20_000 },
    );
    // Three per workspace and a handful of the process's own (commands, leases, health), no more.
    expect(up).toBeLessThanOrEqual(WORKSPACES.length * PER_WORKSPACE + 10);
    await sleep(1000);
    expect(await clients(admin)).toBeLessThanOrEqual(WORKSPACES.length * PER_WORKSPACE + 10);
  }, 90_000);

  it('still logs each workspace whose own keys fail, though their errors read the same', async () => {
    // Two workspaces' command streams damaged alike (a string where the stream belongs): WRONGTYPE
    // names no key, and a line per workspace is what tells the operator which ones to mend.
    const damaged = ['wsscale1-damaged-a', 'wsscale1-damaged-b'];
    for (const ws of damaged) await admin.set(`sb:{${ws}}:commands`, 'not a stream');
    const one = await startProcess({
      roles: 'projector',
      redis: server,
      env: { WORKSPACES: damaged.join(','), LOG_LEVEL: 'warn' },
    });
    try {
      const named = () =>
        new Set(
          one.logs
            .filter((l) => l.includes('workspace loop failed') && l.includes('WRONGTYPE'))
            .map((l) => /"workspace":"([^"]+)"/.exec(l)?.[1]),
        );
      await waitFor(`a line for each of ${damaged.join(', ')}`, () =>
        damaged.every((ws) => named().has(ws)) ? true : undefined,
      );
    } finally {
      await one.stop();
    }
  }, 60_000);
});
