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

/**
 * Registers an agent, makes it available, queues a contact: the dispatcher assigns it to the
 * agent. `n` numbers the agent and contact, for more than one in a workspace.
 */
export async function routeOneContact(running: Running, workspace: string, n = 1): Promise<void> {
  const base = `${running.url}/v1/workspaces/${workspace}`;
  const post = async (path: string, body: unknown) => {
    const r = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': `${path}-${Date.now()}` },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    // A master without a replica (after a failover) answers 503 not-replicated: the command is
    // on the primary all the same, and is applied.
    if (r.status === 503 && text.includes('/problems/not-replicated')) return;
    expect(r.status, `POST ${path}: ${text}`).toBeLessThan(300);
  };
  await post('/agents', { id: `a${n}`, skills: ['English'] });
  await post(`/agents/a${n}/state`, { state: 'available' });
  await post('/contacts', { id: `c${n}`, skills: ['English'] });
  await waitFor(
    'the contact assigned to the agent',
    async () => {
      const r = await fetch(`${base}/contacts/c${n}`);
      if (r.status !== 200) return false;
      const c = (await r.json()) as { state: string; agentId?: string };
      return c.state === 'assigned' && c.agentId === `a${n}`;
    },
    { timeoutMs: 20_000, everyMs: 50 },
  );
}
