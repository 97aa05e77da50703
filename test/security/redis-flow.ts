/**
 * For the Redis security suites: Switchboard started in-process on a given Redis configuration,
 * and one contact routed through its HTTP API end to end (an agent registered and available, a
 * contact queued, the assignment read back), so every role's Redis commands run at least once.
 */
import pino from 'pino';
import { expect } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { waitFor } from '../support/wait.ts';

export async function startOn(env: Record<string, string>, workspace: string): Promise<Running> {
  return startSwitchboard(
    loadConfig({
      AUTH: 'off',
      PORT: '0',
      LOG_LEVEL: 'silent',
      WORKSPACES: workspace,
      DISCOVER_WORKSPACES: 'false',
      ...env,
    }),
    pino({ level: 'silent' }),
  );
}

/** Registers an agent, makes it available, queues a contact: the dispatcher assigns it to the agent. */
export async function routeOneContact(running: Running, workspace: string): Promise<void> {
  const base = `${running.url}/v1/workspaces/${workspace}`;
  const post = async (path: string, body: unknown) => {
    const r = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': `${path}-${Date.now()}` },
      body: JSON.stringify(body),
    });
    expect(r.status, `POST ${path}: ${await r.clone().text()}`).toBeLessThan(300);
  };
  await post('/agents', { id: 'a1', skills: ['English'] });
  await post('/agents/a1/state', { state: 'available' });
  await post('/contacts', { id: 'c1', skills: ['English'] });
  await waitFor(
    'the contact assigned to the agent',
    async () => {
      const r = await fetch(`${base}/contacts/c1`);
      if (r.status !== 200) return false;
      const c = (await r.json()) as { state: string; agentId?: string };
      return c.state === 'assigned' && c.agentId === 'a1';
    },
    { timeoutMs: 10_000, everyMs: 50 },
  );
}
