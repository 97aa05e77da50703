/**
 * A new tenant's workspace on a process that serves many already: its first command (the
 * workspace comes into being with it) is applied, and its first contact assigned, about as soon
 * as on a process serving none (0.2 s and under 1 s with 500 workspaces besides): the workers find
 * it in the registry within a round (the projector's 500 ms, the dispatcher's lease round, a third
 * of LEASE_TTL_MS). Measured once the process has started its loops: right after it answers, with
 * 500 workspaces, the first command waited 7 s (docs/DEPLOYMENT.md, "Many workspaces").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const COUNT = Number(process.env.WSSCALE_WORKSPACES ?? 200);
const WORKSPACES = Array.from({ length: COUNT }, (_, i) => `wsscale3-${i}`);

describe('a new workspace beside many', () => {
  let server: TestRedis;
  let proc: SwitchboardProcess;

  beforeAll(async () => {
    server = await startTestRedis();
    proc = await startProcess({
      roles: 'api,projector,dispatcher',
      redis: server,
      env: { WORKSPACES: WORKSPACES.join(',') },
      readyTimeoutMs: 60_000,
    });
  }, 90_000);

  afterAll(async () => {
    await proc?.stop();
    await server?.stop();
  });

  it('applies its first command and assigns its first contact within a few seconds', async () => {
    const base = `${proc.url}/v1/workspaces/wsscale3-new`;
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return res.status;
    };
    // Started: every workspace's loops connected (three each), as they are a few seconds after
    // the process answers (7 s with 500 workspaces on 2 cores, docs/DEPLOYMENT.md).
    const admin = server.adminClient();
    try {
      await waitFor(
        'every workspace loop connected',
        async () => {
          const n = Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))?.[1]);
          return n >= 3 * (COUNT + 1) ? true : undefined;
        },
        { timeoutMs: 30_000 },
      );
    } finally {
      admin.disconnect();
    }
    const t0 = Date.now();
    expect([201, 202]).toContain(await post('/agents', { id: 'ana', skills: ['English'] }));
    await waitFor('the agent applied', async () => {
      const res = await fetch(`${base}/agents/ana`);
      return res.status === 200 ? true : undefined;
    });
    const appliedMs = Date.now() - t0;
    expect([200, 202]).toContain(await post('/agents/ana/state', { state: 'available' }));
    const t1 = Date.now();
    expect([201, 202]).toContain(await post('/contacts', { id: 'c1', skills: ['English'] }));
    await waitFor(
      'the first contact assigned',
      async () => {
        const res = await fetch(`${base}/contacts/c1`);
        if (res.status !== 200) return undefined;
        const c = (await res.json()) as { status?: string; state?: string };
        return (c.status ?? c.state) === 'offered' || (c.status ?? c.state) === 'assigned' ? true : undefined;
      },
      { timeoutMs: 15_000 },
    );
    const assignedMs = Date.now() - t1;
    console.log(
      `beside ${COUNT} workspaces: first command applied in ${appliedMs} ms, first contact assigned ${assignedMs} ms after it was queued`,
    );
    expect(appliedMs).toBeLessThan(2000);
    expect(assignedMs).toBeLessThan(3000);
  }, 60_000);
});
