/**
 * An API instance stopped (SIGTERM) behind HAProxy while commands keep coming, on HAProxy
 * connections it keeps alive and reuses (infra/haproxy/haproxy.cfg.tmpl). Two API instances that
 * register for the load balancer, a projector and a dispatcher; one real HAProxy whose `api`
 * backend follows the registry at the deployment's sync interval (1 s). Eight keep-alive clients
 * POST contacts without an Idempotency-Key (which HAProxy must never replay) and never retry.
 *
 * Proves: every request is answered 201 or 202, none 5xx and none cut, while one instance stops:
 * it leaves the registry, keeps serving until HAProxy has taken it out of the backend, and only
 * then closes its connections. The instance exits 0 and the other takes the whole load.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contactLoad } from '../support/contact-load.ts';
import { type FleetBehindHaproxy, startFleetBehindHaproxy } from '../support/fleet-behind-haproxy.ts';

const CLIENTS = 8;
const LOAD_MS = 6000;
const STOP_AT_MS = 2000;

describe('an API instance stopped behind HAProxy under load', () => {
  let lb: FleetBehindHaproxy;
  const ws = `stop-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    // The sync at the deployment's interval (every second, as src/topology/local/single.ts runs it).
    lb = await startFleetBehindHaproxy({
      fleet: { api: 2, projector: 1, dispatcher: 1, env: { WORKSPACES: ws } },
    });
  }, 60_000);

  afterAll(async () => {
    await lb?.stop();
  }, 60_000);

  it('answers every command 201 or 202 while the instance leaves, and the instance exits 0', async () => {
    const load = contactLoad(lb.frontend, ws, CLIENTS);
    const { statuses } = load;
    const victim = lb.fleet.api[0]!;
    const t0 = Date.now();
    let stopped: Promise<unknown> | undefined;
    await load.run(
      () => Date.now() - t0 < LOAD_MS,
      () => {
        if (!stopped && Date.now() - t0 >= STOP_AT_MS) stopped = victim.stop(20_000);
      },
    );
    const exit = await stopped;
    const answered = Object.fromEntries(statuses);
    console.log(JSON.stringify({ suite: 'failover/api-stop-behind-haproxy', answered, exit }));
    expect(exit).toBe(0);
    for (const what of statuses.keys())
      expect(['201', '202'], `${what}: ${JSON.stringify(answered)}`).toContain(what);
    expect(statuses.get('201') ?? 0).toBeGreaterThan(100);
    expect(
      (await lb.runtime.listServers('api')).map((s) => s.name),
      'the stopped instance left the backend',
    ).toEqual([lb.serverOf(lb.fleet.api[1]!.port!)]);
    expect(lb.syncErrors).toEqual([]);
  }, 60_000);
});
