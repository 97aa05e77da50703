/**
 * docs/ROUTING.md ("Priority aging": the weight is set or removed only while no contact is
 * queued; "A contact's key is set when it enters its queue (... when an offer goes back ...) with
 * the weight in force then") against the server for contacts that were offered, not queued, when
 * the weight was set or removed: back in the queue they take the order in force; and a contact
 * whose preference ends under a weight lowered meanwhile is keyed with the new one, while a contact
 * queued before keeps its key. Over HTTP in process against a real Redis with the clock running.
 */
import { describe, expect, it } from 'vitest';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi } from '../support/api.ts';
import { ruleScenarios } from '../support/rule-scenarios.ts';

const WS = {
  set: 'rre4-set-while-offered',
  removed: 'rre4-removed-while-offered',
  rekey: 'rre4-preference-rekey',
} as const;
const api = inProcessApi(Object.values(WS));
const { ok, until } = api;
const { sleep, agent, decided, audited } = ruleScenarios(api);

describe('the weight changed while a contact was offered', () => {
  it('set: the contact back from its offer is aged like the others, and goes first once it waited past the weight', async () => {
    const ws = WS.set;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000 });
    await agent(ws, 'x', ['a']);
    await agent(ws, 'y', ['a']);
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'], priority: 0 });
    expect(await decided(ws, 'c1')).toBe('x');
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000, priorityWeightMs: 50 });
    await sleep(120);
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'], priority: 1 });
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['a'], priority: 9 });
    await ok('POST', ws, '/contacts/c1/reject', { agentId: 'x' });
    await until(ws, '/contacts/c1', (c) => c.state === 'queued');
    // Aged: c3 (9 × 50 ms ahead) first, to x (free again, turned down only c1) ...
    expect(await decided(ws, 'c3')).toBe('x');
    // ... then c1 (waited over 50 ms longer than c2), then c2.
    await ok('POST', ws, '/agents/y/state', { state: 'available' });
    expect(await decided(ws, 'c1')).toBe('y');
    expect((await ok('GET', ws, '/contacts/c2')).state).toBe('queued');
    await audited(ws);
  });

  it('removed: the contact back from its offer is in strict order again, after a later higher priority', async () => {
    const ws = WS.removed;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000, priorityWeightMs: 50 });
    await agent(ws, 'x', ['a']);
    await agent(ws, 'y', ['a']);
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'], priority: 0 });
    expect(await decided(ws, 'c1')).toBe('x');
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000 });
    await sleep(120);
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'], priority: 1 });
    await ok('POST', ws, '/contacts/c1/reject', { agentId: 'x' });
    await until(ws, '/contacts/c1', (c) => c.state === 'queued');
    // Strict: c2 (priority 1) first, to x (free again, turned down only c1); c1 to y.
    expect(await decided(ws, 'c2')).toBe('x');
    expect((await ok('GET', ws, '/contacts/c1')).state).toBe('queued');
    await ok('POST', ws, '/agents/y/state', { state: 'available' });
    expect(await decided(ws, 'c1')).toBe('y');
    await audited(ws);
  });
});

describe('the weight changed during a preference', () => {
  it('the contact whose preference ended takes the weight in force then; the other keeps its key', async () => {
    const ws = WS.rekey;
    await ok('PUT', ws, '/settings', { priorityWeightMs: 1000 });
    await ok('POST', ws, '/agents', { id: 'p', skills: ['a'] });
    await ok('POST', ws, '/agents', { id: 'q', skills: ['a'] });
    await ok('POST', ws, '/contacts', {
      id: 'c1',
      skills: ['a'],
      priority: 0,
      preferredAgents: ['p'],
      preferredForMs: 150,
    });
    // Keyed under 1,000 ms a point: c2 (priority 5) 5 s ahead of c1 (priority 0).
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'], priority: 5 });
    await ok('PUT', ws, '/settings', { priorityWeightMs: 1 });
    await until(ws, '/contacts/c1', (c) => c.preferredAgents === undefined, 3000);
    // c1 re-keyed under 1 ms a point (5 ms behind a priority 5), c2 keeps its key: c1 first.
    await ok('POST', ws, '/agents/q/state', { state: 'available' });
    expect((await until(ws, '/contacts/c1', (c) => c.state !== 'queued')).agentId).toBe('q');
    expect((await ok('GET', ws, '/contacts/c2')).state).toBe('queued');
    const audit = await auditWorkspace(api.running.redis, ws, { idle: true });
    expect(audit.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
  });
});
