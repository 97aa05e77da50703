/**
 * `PATCH /agents/{id}` with `{"wrapUpMs": null}` removes the agent's own wrap-up time (docs/API.md,
 * "Offers, wrap-up and maximum wait"): the agent follows the workspace's `wrapUpMs` again, its
 * document (and the `AgentUpdated` fact) has no `wrapUpMs`, as an agent registered without one,
 * and the audit of the log replays the change with no violation. In process, against a real Redis.
 */
import { describe, expect, it } from 'vitest';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi, type Json } from '../support/api.ts';

const WS = { clear: 'api-wrapup-clear', none: 'api-wrapup-clear-none', bad: 'api-wrapup-clear-bad' } as const;
const api = inProcessApi(Object.values(WS));

interface Envelope {
  readonly position: string;
  readonly type: string;
  readonly data: Json;
}
const events = async (ws: string): Promise<Envelope[]> =>
  (await api.ok('GET', ws, '/events?limit=1000')).events as Envelope[];

/** Queues a contact, waits for it to be assigned, completes it: the agent's document after. */
async function handle(ws: string, id: string, skill: string): Promise<Json> {
  await api.ok('POST', ws, '/contacts', { id, skills: [skill] });
  await api.until(ws, `/contacts/${id}`, (c) => c.state === 'assigned');
  const done = await api.ok('POST', ws, `/contacts/${id}/complete`);
  return api.ok('GET', ws, `/agents/${String(done.agentId)}`);
}

describe('PATCH /agents/{id} {"wrapUpMs": null}', () => {
  it("removes the agent's own wrap-up: the next completion wraps up for the workspace's time, and the audit agrees", async () => {
    const ws = WS.clear;
    await api.ok('PUT', ws, '/settings', { wrapUpMs: 60_000 });
    await api.ok('POST', ws, '/agents', { id: 'ida', skills: ['x'], wrapUpMs: 0 });
    await api.ok('POST', ws, '/agents/ida/state', { state: 'available' });

    // Its own 0 ms: no wrap-up, whatever the workspace says.
    const first = await handle(ws, 'c-1', 'x');
    expect(first).toMatchObject({ state: 'available', wrapUpMs: 0 });

    const cleared = await api.call('PATCH', `/v1/workspaces/${ws}/agents/ida`, { wrapUpMs: null });
    expect(cleared.status, JSON.stringify(cleared.body)).toBe(200);
    expect(cleared.body).toMatchObject({ id: 'ida', state: 'available' });
    expect(cleared.body).not.toHaveProperty('wrapUpMs');
    expect(await api.ok('GET', ws, '/agents/ida')).not.toHaveProperty('wrapUpMs');

    // Now the workspace's minute applies.
    const second = await handle(ws, 'c-2', 'x');
    expect(second.state).toBe('wrapup');
    const log = await events(ws);
    const updated = log.filter((e) => e.type === 'AgentUpdated');
    expect(updated).toHaveLength(1);
    expect(updated[0]?.data).not.toHaveProperty('wrapUpMs');
    const completed = log.find((e) => e.type === 'ContactCompleted' && e.data.contactId === 'c-2');
    const started = log.filter((e) => e.type === 'WrapUpStarted');
    expect(started.map((e) => e.data.agentId)).toEqual(['ida']);
    expect(Date.parse(String(started[0]?.data.until)) - Date.parse(String(completed?.data.completedAt))).toBe(
      60_000,
    );
    // A wrap-up under way keeps its end whatever the agent's own time becomes.
    await api.ok('PATCH', ws, '/agents/ida', { wrapUpMs: 0 });
    const during = await api.ok('PATCH', ws, '/agents/ida', { wrapUpMs: null });
    expect(during).toMatchObject({ state: 'wrapup', wrapUpUntil: second.wrapUpUntil });
    expect(during).not.toHaveProperty('wrapUpMs');
    // Ended early so that the dispatcher is idle for the audit.
    await api.ok('POST', ws, '/agents/ida/state', { state: 'available' });

    const report = await auditWorkspace(api.running.redis, ws, { idle: true });
    expect(report.violations).toEqual([]);
  });

  it('of an agent with no wrap-up of its own changes nothing of its wrap-up, and name and null go together', async () => {
    const ws = WS.none;
    await api.ok('POST', ws, '/agents', { id: 'jo', skills: ['y'] });
    const same = await api.ok('PATCH', ws, '/agents/jo', { wrapUpMs: null, name: 'Jo' });
    expect(same).toMatchObject({ id: 'jo', name: 'Jo', state: 'offline' });
    expect(same).not.toHaveProperty('wrapUpMs');
    // Set again afterwards: it is the agent's own once more.
    expect(await api.ok('PATCH', ws, '/agents/jo', { wrapUpMs: 250 })).toMatchObject({ wrapUpMs: 250 });
    expect((await auditWorkspace(api.running.redis, ws, { idle: true })).violations).toEqual([]);
  });

  it('still refuses what it refused: a null name, skills or capacity, and null at POST /agents (400 naming the field)', async () => {
    const ws = WS.bad;
    await api.ok('POST', ws, '/agents', { id: 'kim', skills: ['z'] });
    for (const field of ['name', 'skills', 'capacity']) {
      const p = await api.problem('PATCH', ws, '/agents/kim', { [field]: null }, 400, 'invalid-request');
      expect(JSON.stringify(p.errors)).toContain(field);
    }
    const p = await api.problem(
      'POST',
      ws,
      '/agents',
      { id: 'lee', skills: ['z'], wrapUpMs: null },
      400,
      'invalid-request',
    );
    expect(JSON.stringify(p.errors)).toContain('wrapUpMs');
    expect((await api.ok('GET', ws, '/agents/kim')).name).toBeUndefined();
  });
});
