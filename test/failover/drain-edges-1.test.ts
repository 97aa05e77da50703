/**
 * An API instance stopped behind HAProxy while the registry sync is held up (a pass stuck behind
 * another server's removal, Redis slow for the sync), so HAProxy's own `/health` check takes the
 * instance out: the deployment's check (inter 1 s, fall 2) marks it down two checks after the
 * SIGTERM, about 2 s, later than the 1.5 s of `LB_DRAIN_MS`. The stop is timed right after a
 * check passed, so that window is there every run.
 *
 * A user saw: requests HAProxy still sent after the 1.5 s answered `503 shutting-down` (dozens a
 * run under load) although another instance was up. Now: the instance serves on past
 * `LB_DRAIN_MS` while requests still arrive, and closes once the balancer has stopped sending.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contactLoad } from '../support/contact-load.ts';
import { type FleetBehindHaproxy, startFleetBehindHaproxy } from '../support/fleet-behind-haproxy.ts';
import { waitFor } from '../support/wait.ts';

const CLIENTS = 8;

/** How many /health checks the instance has answered (its own /metrics). */
async function healthChecks(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n'))
    if (
      line.startsWith('switchboard_http_request_duration_seconds_count{') &&
      line.includes('route="/health"')
    )
      n += Number(line.split(' ').pop());
  return n;
}

describe('an API instance stopped behind HAProxy while the sync is held up', () => {
  let lb: FleetBehindHaproxy;
  const ws = `drain1-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    lb = await startFleetBehindHaproxy({
      fleet: { api: 2, projector: 1, dispatcher: 1, env: { WORKSPACES: ws } },
    });
    // From here only HAProxy's checks take servers out.
    await lb.sync.stop();
  }, 60_000);

  afterAll(async () => {
    await lb?.stop();
  }, 60_000);

  it('answers every command 201 or 202 until the check takes the instance out', async () => {
    const load = contactLoad(lb.frontend, ws, CLIENTS);
    const { statuses } = load;
    const victim = lb.fleet.api[0]!;
    const victimServer = lb.serverOf(victim.port!);
    let done = false;
    const clients = load.run(() => !done);
    // Right after a check passed: the next two fail, 1 s and 2 s after the SIGTERM.
    await new Promise((r) => setTimeout(r, 1000));
    const before = await healthChecks(victim.port!);
    await waitFor(
      'a /health check of the instance',
      async () => (await healthChecks(victim.port!)) > before,
      {
        timeoutMs: 5000,
        everyMs: 10,
      },
    );
    const stopped = victim.stop(20_000);
    await waitFor(
      'HAProxy marked the instance down',
      async () => (await lb.runtime.serverState('api', victimServer))?.status.startsWith('DOWN') ?? false,
      { timeoutMs: 10_000, everyMs: 50 },
    );
    await new Promise((r) => setTimeout(r, 1000));
    done = true;
    await clients;
    const exit = await stopped;
    const answered = Object.fromEntries(statuses);
    console.log(JSON.stringify({ suite: 'failover/drain-edges-1', answered, exit }));
    expect(exit).toBe(0);
    for (const what of statuses.keys())
      expect(['201', '202'], `${what}: ${JSON.stringify(answered)}`).toContain(what);
    expect(statuses.get('201') ?? 0).toBeGreaterThan(50);
  }, 60_000);
});
