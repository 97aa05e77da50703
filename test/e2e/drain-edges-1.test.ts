/**
 * An API instance stopped (SIGTERM) that is not registered for the load balancer (no
 * ADVERTISE_ADDRESS: e.g. infra's Docker compose, where HAProxy finds the replicas by DNS and takes
 * a server out by its `GET /health` check) drains too: for LB_DRAIN_MS it keeps serving, with
 * `/health` answering 503 `shutting-down` and `/status` saying `stopping`, so a health-checking
 * balancer stops sending it requests before it closes. Then it exits 0. LB_DRAIN_MS=0 closes at once.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllProcesses, type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
}, 30_000);
afterAll(async () => {
  await killAllProcesses();
  await redis?.stop();
});

/** SIGTERM `p` (started with LB_DRAIN_MS=1500): during the drain it says it is stopping and still serves. */
async function drains(p: SwitchboardProcess, ws: string): Promise<void> {
  expect((await fetch(`${p.url}/health`)).status).toBe(200);
  const t0 = Date.now();
  p.kill('SIGTERM');
  await sleep(300);
  expect(p.running, p.logText()).toBe(true);

  const health = await fetch(`${p.url}/health`);
  const healthBody = (await health.json()) as { type?: string; state?: string };
  expect(health.status, JSON.stringify(healthBody)).toBe(503);
  expect(health.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(healthBody.type).toMatch(/\/problems\/shutting-down$/);
  expect(healthBody.state).toBe('stopping');

  const status = (await (await fetch(`${p.url}/status`)).json()) as { state?: string };
  expect(status.state).toBe('stopping');

  // A request a balancer sent before its check saw the 503 is still answered (the projector in
  // the same process applies it: 201).
  const created = await fetch(`${p.url}/v1/workspaces/${ws}/contacts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'c-1', skills: ['s'] }),
  });
  expect(created.status, await created.text()).toBe(201);

  expect(await p.exited, p.logText()).toBe(0);
  // It served the whole drain, not less.
  expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
}

describe('an API instance stopped drains for LB_DRAIN_MS, saying so on /health and /status', () => {
  it('not registered for the load balancer (no ADVERTISE_ADDRESS): drains too, then exits 0', async () => {
    const ws = `drain-${randomUUID().slice(0, 8)}`;
    const p = await startProcess({
      roles: ['api', 'projector'],
      redis,
      env: { WORKSPACES: ws, LB_DRAIN_MS: '1500', ADVERTISE_ADDRESS: undefined },
    });
    await drains(p, ws);
  }, 30_000);

  it('registered for the load balancer (ADVERTISE_ADDRESS): /health is 503 during its drain, then exits 0', async () => {
    const ws = `drain-${randomUUID().slice(0, 8)}`;
    const p = await startProcess({
      roles: ['api', 'projector'],
      redis,
      env: { WORKSPACES: ws, LB_DRAIN_MS: '1500', ADVERTISE_ADDRESS: 'auto' },
    });
    await drains(p, ws);
  }, 30_000);

  it('with LB_DRAIN_MS=0 closes at once and exits 0', async () => {
    const p = await startProcess({
      roles: ['api'],
      redis,
      env: { LB_DRAIN_MS: '0', ADVERTISE_ADDRESS: undefined },
    });
    const t0 = Date.now();
    expect(await p.stop(10_000), p.logText()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(1400);
  }, 30_000);
});
