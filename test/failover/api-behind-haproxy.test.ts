/**
 * An API instance dies behind HAProxy. One Redis; three API processes that register themselves
 * for the load balancer (ADVERTISE_ADDRESS=auto), two projectors and two dispatchers; one real
 * HAProxy whose `api` backend starts empty and is kept equal to the live instances by
 * `syncBackends` (run here, from the test process). The load driver sends ALL traffic, commands
 * and the WebSocket feed, through HAProxy's HTTP frontend. Mid-run one API instance is SIGKILLed
 * and not restarted.
 *
 * Proves: the guarantees (a)-(e) of the audit hold; no client request fails after its retries;
 * the feed resumes through HAProxy with no gap and no duplicate; the registry takes the dead
 * instance out of the backend. Reports (one JSON line) the time until traffic resumed (first 2xx
 * after the kill, and the longest gap between 2xx answers), failed and retried requests.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import type { HaproxyRuntime } from '../../src/topology/haproxy/runtime.ts';
import { auditWorkspace, LoadDriver, trafficGap, waitProjectorSettled } from '../support/audit.ts';
import type { Fleet } from '../support/fleet.ts';
import { type FleetBehindHaproxy, startFleetBehindHaproxy } from '../support/fleet-behind-haproxy.ts';
import { sleep, waitFor } from '../support/wait.ts';

// FAILOVER_FULL=1: 600 contacts, the kill at 5 s. By default 400, the kill at 3 s: 150 contacts
// before it and 250 (5 s) after, beyond the check's DOWN (fall 2 x 500 ms) and the registry's
// removal (within 3 s).
const FULL = process.env.FAILOVER_FULL === '1';
const CONTACTS = FULL ? 600 : 400;
const AGENTS = 30;
const RATE_PER_S = 50;
// The full load takes about 15 s on a quiet machine; the bound leaves room for a loaded one (it
// stopped short of every contact at 25 s with a load average of 14) and still ends a stuck run.
const LOAD_DEADLINE_MS = 50_000;
const KILL_AT_MS = FULL ? 5_000 : 3_000;

describe('an API instance SIGKILLed behind HAProxy', () => {
  let lb: FleetBehindHaproxy;
  let fleet: Fleet;
  let redis: RedisClient;
  let runtime: HaproxyRuntime;
  let frontend: string;
  let syncErrors: string[];
  const ws = `lb-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    lb = await startFleetBehindHaproxy({
      fleet: { api: 3, projector: 2, dispatcher: 2, env: { WORKSPACES: ws } },
      haproxy: { apiCheckInter: '500ms', checkTimeout: '1s' },
      sync: { intervalMs: 250, server: { inter: '500ms', fall: 2, rise: 2 } },
    });
    ({ fleet, runtime, frontend, syncErrors } = lb);
    redis = fleet.client;
  }, 60_000);

  afterAll(async () => {
    await lb?.stop();
  }, 60_000);

  it('keeps every guarantee and every request succeeds through HAProxy', async () => {
    const load = new LoadDriver({
      apiUrls: [frontend],
      ws,
      contacts: CONTACTS,
      agents: AGENTS,
      ratePerS: RATE_PER_S,
      deadlineMs: LOAD_DEADLINE_MS,
      maxAttempts: 10,
    });
    const { client, follower } = load;
    await load.prepare();

    // Mid-run: SIGKILL one API instance, never restarted. Then: how soon 2xx answers flow again,
    // an assignment made after the kill reaches the feed, and the registry drops the instance.
    const victim = fleet.api[0]!;
    const victimServer = lb.serverOf(victim.port!);
    const measured: Record<string, number | null> = {};
    let killedAt = 0;
    const killing = sleep(KILL_AT_MS).then(async () => {
      const before = await runtime.listServers('api');
      measured.sessionsOnVictimBeforeKill =
        before.find((s) => s.name === victimServer)?.totalSessions ?? null;
      killedAt = Date.now();
      victim.kill('SIGKILL');
      await victim.exited;
      await Promise.all([
        waitFor('an assignment after the kill on the feed', () => follower.seenAfter(killedAt), {
          timeoutMs: 20_000,
          everyMs: 20,
        }).then(() => {
          measured.firstAssignmentAfterMs = Date.now() - killedAt;
        }),
        waitFor(
          'the dead instance removed from the api backend',
          async () => !(await runtime.listServers('api')).some((s) => s.name === victimServer),
          { timeoutMs: 20_000, everyMs: 50 },
        ).then(() => {
          measured.removedFromBackendMs = Date.now() - killedAt;
        }),
      ]);
    });

    const { queued, loadMs } = await load.run();
    await killing;
    await load.quiesce(redis);
    load.stop();

    const audit = await auditWorkspace(redis, ws, load.acknowledged.keys());
    expect(follower.duplicates, 'duplicates on the live feed').toBe(0);
    expect(
      follower.seen.map((e) => e.position),
      'the feed resumed with no gap',
    ).toEqual(audit.assignmentPositions);
    await waitProjectorSettled(redis, ws);

    const servers = await runtime.listServers('api');
    expect(servers.map((s) => s.name).sort()).toEqual(
      fleet.api
        .slice(1)
        .map((a) => lb.serverOf(a.port!))
        .sort(),
    );
    expect(client.failures, 'requests that failed or were refused').toEqual([]);
    expect(client.failed, 'failed client requests after retries').toBe(0);
    expect(load.unanswered).toEqual([]);
    expect(load.acknowledged.size).toBe(CONTACTS);
    expect(load.completedOk.size).toBe(audit.assignments);

    const gap = trafficGap(client.okAt, killedAt, killedAt + 10_000);
    console.log(
      JSON.stringify({
        suite: 'failover/api-behind-haproxy',
        killAtMs: killedAt - load.loadStart,
        firstOkAfterKillMs: gap.firstOkAfterMs,
        longestGapMs: gap.longestGapMs,
        longestGapStartMs: gap.longestGapStartMs,
        ...measured,
        failedRequests: client.failed,
        retriedRequests: client.retriedRequests,
        retries: client.retries,
        ...load.summary(),
        assignments: audit.assignments,
        commands: audit.commands,
        queued,
        loadMs,
        sessionsPerServer: Object.fromEntries(servers.map((s) => [s.name, s.totalSessions])),
        syncErrors: syncErrors.length,
      }),
    );
  }, 150_000);
});
