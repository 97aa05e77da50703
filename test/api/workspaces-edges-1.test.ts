/**
 * Workspaces whose names differ only in case (`Acme`, `acme`) or look alike (`a-b`, `a_b`) are
 * separate workspaces: the same agent and contact ids, the same Idempotency-Key and other settings
 * in each, and nothing done in one shows in another (documents, events, settings, stats). A
 * workspace not configured comes into being with its first command (DISCOVER_WORKSPACES) and is
 * routed like the configured ones.
 */
import { describe, expect, it } from 'vitest';
import { globalKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi, type Json } from '../support/api.ts';

const NAMES = ['Acme', 'acme', 'a-b', 'a_b'];
const api = inProcessApi(NAMES, { env: { DISCOVER_WORKSPACES: 'true' } });

async function post(ws: string, path: string, body: unknown, key: string) {
  const res = await api.running.api!.inject({
    method: 'POST',
    url: `/v1/workspaces/${ws}${path}`,
    headers: { 'idempotency-key': key },
    payload: body as Json,
  });
  return { status: res.statusCode, body: res.json() as Json, replayed: res.headers['idempotent-replayed'] };
}

describe('workspaces whose names differ in case or look alike', () => {
  it('are isolated: ids, idempotency keys, settings, documents, events and stats are their own', async () => {
    // Each workspace gets its own settings and its own number of agents under the same ids.
    for (const [i, ws] of NAMES.entries()) {
      await api.ok('PUT', ws, '/settings', { wrapUpMs: 1000 * (i + 1) });
      for (let n = 0; n <= i; n++) await api.ok('POST', ws, '/agents', { id: `ag${n}`, skills: [`s-${ws}`] });
    }
    // The same Idempotency-Key in each workspace is a new request there, not a replay.
    for (const ws of NAMES) {
      const r = await post(ws, '/contacts', { id: 'same', skills: [`s-${ws}`] }, 'one-key');
      expect(r.status, `${ws}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
      expect(r.replayed, ws).toBeUndefined();
    }
    for (const [i, ws] of NAMES.entries()) {
      expect((await api.ok('GET', ws, '/settings')).wrapUpMs, ws).toBe(1000 * (i + 1));
      const agents = (await api.ok('GET', ws, '/agents')).agents as Json[];
      expect(agents.length, ws).toBe(i + 1);
      for (const a of agents) expect(a.skills, ws).toEqual([`s-${ws}`]);
      const contact = await api.ok('GET', ws, '/contacts/same');
      expect(contact.skills, ws).toEqual([`s-${ws}`]);
      const events = (await api.ok('GET', ws, '/events?limit=1000')).events as Json[];
      expect(events.length, ws).toBeGreaterThan(0);
      for (const e of events) expect(e.workspace, ws).toBe(ws);
      expect(events.filter((e) => e.type === 'AgentRegistered').length, ws).toBe(i + 1);
      const stats = await api.ok('GET', ws, '/stats');
      expect(stats.contactsQueuedSoFar, ws).toBe(1);
    }
  });

  it('a workspace not configured comes into being with its first command and is routed', async () => {
    const ws = 'NewOne';
    // Applied within the command's wait: the workers take the new workspace up in time.
    const first = await api.call('POST', `/v1/workspaces/${ws}/agents`, { id: 'ann', skills: ['x'] });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    await api.ok('POST', ws, '/agents/ann/state', { state: 'available' });
    await api.ok('POST', ws, '/contacts', { id: 'c1', skills: ['x'] });
    const c = await api.until(ws, '/contacts/c1', (v) => v.state === 'assigned');
    expect(c.agentId).toBe('ann');
    // Its lookalike in another case holds nothing.
    await api.problem('GET', 'newone', '/contacts/c1', undefined, 404, 'contact-not-found');
    expect((await api.ok('GET', 'newone', '/agents')).agents).toEqual([]);
  });

  it('a name holding a hash-tag brace or another character is a 400 naming ws, and nothing is written', async () => {
    const before = await api.running.redis.zrange(globalKeys.activeWorkspaces, 0, -1);
    for (const name of ['a%7Bb', 'a%7Db', '%7Bacme%7D', 'acme%3Ax', 'Acme.', 'a'.repeat(65)]) {
      const r = await api.call('POST', `/v1/workspaces/${name}/agents`, { id: 'ann', skills: ['x'] });
      expect(r.status, `${name}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.errors, name).toEqual([expect.objectContaining({ path: 'ws' })]);
    }
    expect(await api.running.redis.zrange(globalKeys.activeWorkspaces, 0, -1)).toEqual(before);
  });
});
