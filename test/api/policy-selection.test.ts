/**
 * Priority aging and agent selection through the API, from a user's point of view (docs/API.md,
 * "Settings"; docs/ROUTING.md), in process against a real Redis: what each setting changes, the
 * settings it refuses (409 settings-conflict) and the malformed ones (400 naming the field); the
 * auditor re-checks every decision from the log with the policy in force.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi, type Json } from '../support/api.ts';

const WS = {
  aging: 'api-policy-aging',
  agingFar: 'api-policy-aging-far',
  agingConflict: 'api-policy-aging-conflict',
  skilled: 'api-policy-most-skilled',
  occupied: 'api-policy-least-occupied',
  malformed: 'api-policy-settings-malformed',
} as const;
const api = inProcessApi(Object.values(WS));
const { call, ok, until } = api;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function audited(ws: string): Promise<void> {
  const audit = await auditWorkspace(api.running.redis, ws, { idle: true });
  expect(audit.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
}

/** An agent with `skills`, busy with a contact of its own so that the next ones wait. */
async function busyAgent(ws: string, id: string, skills: unknown[]): Promise<void> {
  await ok('POST', ws, '/agents', { id, skills });
  await ok('POST', ws, `/agents/${id}/state`, { state: 'available' });
  await ok('POST', ws, '/contacts', { id: `${id}-first`, skills: ['Billing'] });
  await until(ws, `/contacts/${id}-first`, (c) => c.state === 'assigned');
}

describe('priority aging', () => {
  it('each priority point counts as priorityWeightMs of waiting: a priority-0 contact waiting longer than that goes before a later priority-1 contact', async () => {
    const ws = WS.aging;
    await ok('PUT', ws, '/settings', { priorityWeightMs: 200 });
    expect(await ok('GET', ws, '/settings')).toMatchObject({ priorityWeightMs: 200 });
    await busyAgent(ws, 'ann', ['Billing']);
    await ok('POST', ws, '/contacts', { id: 'old', skills: ['Billing'] });
    await sleep(500);
    await ok('POST', ws, '/contacts', { id: 'vip', skills: ['Billing'], priority: 1 });
    // 'old' waited 500 ms, more than vip's one point of 200 ms: it is first, as its place says.
    expect((await ok('GET', ws, '/contacts/old')).queuePosition).toBe(0);
    expect((await ok('GET', ws, '/contacts/vip')).queuePosition).toBe(1);
    await ok('POST', ws, '/contacts/ann-first/complete');
    expect((await until(ws, '/contacts/old', (c) => c.state === 'assigned')).agentId).toBe('ann');
    expect((await ok('GET', ws, '/contacts/vip')).state).toBe('queued');
    await ok('POST', ws, '/contacts/old/complete');
    expect((await until(ws, '/contacts/vip', (c) => c.state === 'assigned')).agentId).toBe('ann');
    await audited(ws);
  });

  it('a later contact whose priority is worth more than the wait between them goes first', async () => {
    const ws = WS.agingFar;
    await ok('PUT', ws, '/settings', { priorityWeightMs: 60_000 });
    await busyAgent(ws, 'ann', ['Billing']);
    await ok('POST', ws, '/contacts', { id: 'p0', skills: ['Billing'] });
    await ok('POST', ws, '/contacts', { id: 'p2', skills: ['Billing'], priority: 2 });
    await ok('POST', ws, '/contacts', { id: 'p1', skills: ['Billing'], priority: 1 });
    expect(
      await Promise.all(
        ['p2', 'p1', 'p0'].map(async (id) => (await ok('GET', ws, `/contacts/${id}`)).queuePosition),
      ),
    ).toEqual([0, 1, 2]);
    // The queue members carry the aged key: "<queue>|A|<key>|<contact>".
    const members = await api.running.redis.zrangebylex(workspaceKeys(ws).skillSetQueues, '-', '+');
    expect(members.map((m) => m.split('|')[1])).toEqual(['A', 'A', 'A']);
    expect(members.map((m) => m.split('|')[3])).toEqual(['p2', 'p1', 'p0']);
    await ok('POST', ws, '/contacts/ann-first/complete');
    expect((await until(ws, '/contacts/p2', (c) => c.state === 'assigned')).agentId).toBe('ann');
    await audited(ws);
  });

  it('the weight is set or removed only while no contact is queued (409 settings-conflict); its value may change at any time', async () => {
    const ws = WS.agingConflict;
    await ok('POST', ws, '/contacts', { id: 'waiting', skills: ['Nobody'] });
    const set = await call('PUT', `/v1/workspaces/${ws}/settings`, { priorityWeightMs: 1000 });
    expect(set.status, JSON.stringify(set.body)).toBe(409);
    expect(set.body).toMatchObject({ type: '/problems/settings-conflict', title: 'Contacts are queued' });
    expect(set.body.detail).toContain('priorityWeightMs can be set only while no contact is queued');
    expect((await ok('GET', ws, '/settings')).priorityWeightMs).toBeUndefined();
    await ok('POST', ws, '/contacts/waiting/abandon');
    await ok('PUT', ws, '/settings', { priorityWeightMs: 1000 });
    await ok('POST', ws, '/contacts', { id: 'aged', skills: ['Nobody'] });
    await ok('PUT', ws, '/settings', { priorityWeightMs: 2000 });
    const removed = await call('PUT', `/v1/workspaces/${ws}/settings`, {});
    expect(removed.status).toBe(409);
    expect(removed.body.detail).toContain('priorityWeightMs can be removed only while no contact is queued');
    expect((await ok('GET', ws, '/settings')).priorityWeightMs).toBe(2000);
    await audited(ws);
  });
});

describe('agent selection', () => {
  it('most-skilled: the highest level summed over the contact’s skills wins, then the longest available', async () => {
    const ws = WS.skilled;
    await ok('PUT', ws, '/settings', { agentSelection: 'most-skilled' });
    expect(await ok('GET', ws, '/settings')).toMatchObject({ agentSelection: 'most-skilled' });
    // ann is available longest, bob knows Billing better; English evens them out.
    await ok('POST', ws, '/agents', {
      id: 'ann',
      skills: [
        { name: 'Billing', level: 2 },
        { name: 'English', level: 3 },
      ],
      capacity: 2,
    });
    await ok('POST', ws, '/agents/ann/state', { state: 'available' });
    await sleep(5);
    await ok('POST', ws, '/agents', {
      id: 'bob',
      skills: [{ name: 'Billing', level: 4 }, 'English'],
      capacity: 2,
    });
    await ok('POST', ws, '/agents/bob/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'billing', skills: ['Billing'] });
    expect((await until(ws, '/contacts/billing', (c) => c.state === 'assigned')).agentId).toBe('bob');
    // Billing + English: ann 2 + 3, bob 4 + 1; equal, so the longest available (ann).
    await ok('POST', ws, '/contacts', { id: 'both', skills: ['Billing', 'English'] });
    expect((await until(ws, '/contacts/both', (c) => c.state === 'assigned')).agentId).toBe('ann');
    // A minimum level still rules out who is below it: only bob has Billing at 3.
    await ok('POST', ws, '/contacts', { id: 'expert', skills: [{ name: 'Billing', minLevel: 3 }] });
    expect((await until(ws, '/contacts/expert', (c) => c.state === 'assigned')).agentId).toBe('bob');
    await audited(ws);
  });

  it('least-occupied: chat goes to the agent with the lowest share of capacity in use, then the longest available', async () => {
    const ws = WS.occupied;
    await ok('PUT', ws, '/settings', { agentSelection: 'least-occupied' });
    await ok('POST', ws, '/agents', { id: 'ann', skills: ['Chat'], capacity: 3 });
    await ok('POST', ws, '/agents', { id: 'bob', skills: ['Chat'], capacity: 3 });
    await ok('POST', ws, '/agents/ann/state', { state: 'available' });
    await sleep(5);
    await ok('POST', ws, '/agents/bob/state', { state: 'available' });
    const got: string[] = [];
    for (const id of ['c1', 'c2', 'c3', 'c4']) {
      await ok('POST', ws, '/contacts', { id, skills: ['Chat'] });
      got.push((await until(ws, `/contacts/${id}`, (c) => c.state === 'assigned')).agentId as string);
    }
    // Longest-available would give ann three in a row; here they alternate (equal shares: ann,
    // available longer).
    expect(got).toEqual(['ann', 'bob', 'ann', 'bob']);
    await ok('POST', ws, '/contacts/c1/complete');
    await ok('POST', ws, '/contacts', { id: 'c5', skills: ['Chat'] });
    expect((await until(ws, '/contacts/c5', (c) => c.state === 'assigned')).agentId).toBe('ann');
    // Leaving least-occupied while agents can take work is refused; once they are away, it is not.
    const leave = await call('PUT', `/v1/workspaces/${ws}/settings`, { agentSelection: 'most-skilled' });
    expect(leave.status).toBe(409);
    expect(leave.body).toMatchObject({ type: '/problems/settings-conflict', title: 'Agents are available' });
    await ok('PUT', ws, '/settings', { agentSelection: 'least-occupied', wrapUpMs: 10 });
    for (const id of ['ann', 'bob']) await ok('POST', ws, `/agents/${id}/state`, { state: 'away' });
    await ok('PUT', ws, '/settings', {});
    expect((await ok('GET', ws, '/settings')).agentSelection).toBeUndefined();
    await audited(ws);
  });
});

describe('malformed policy settings: 400 naming the field, nothing appended', () => {
  const cases: [string, Json, string][] = [
    ['priorityWeightMs 0', { priorityWeightMs: 0 }, 'priorityWeightMs'],
    ['priorityWeightMs over an hour', { priorityWeightMs: 3_600_001 }, 'priorityWeightMs'],
    ['priorityWeightMs a string', { priorityWeightMs: '10' }, 'priorityWeightMs'],
    ['priorityWeightMs a fraction', { priorityWeightMs: 1.5 }, 'priorityWeightMs'],
    ['agentSelection unknown', { agentSelection: 'round-robin' }, 'agentSelection'],
    ['agentSelection null', { agentSelection: null }, 'agentSelection'],
  ];
  for (const [name, body, field] of cases)
    it(name, async () => {
      const before = await api.running.redis.xlen(workspaceKeys(WS.malformed).commands);
      const r = await call('PUT', `/v1/workspaces/${WS.malformed}/settings`, body);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect((r.body.errors as { path: string }[]).map((e) => e.path)).toEqual([field]);
      expect(await api.running.redis.xlen(workspaceKeys(WS.malformed).commands)).toBe(before);
    });
});
