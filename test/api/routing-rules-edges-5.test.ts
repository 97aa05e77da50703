/**
 * docs/API.md against the server where the docs said less than the rule: an offer withdrawn (the
 * agent went away, or was removed) adds the agent to the contact's `excludedAgents` as a rejection
 * or an expiry does ("Offers"; the contact document and ROUTING.md's rule 1 named only those two);
 * and a contact's `queuePosition` counts the contacts ahead of it in its queue, which rule 1 serves
 * before it unless they are blocked (waiting for their preferred agents, or turned down by the
 * agents free): then a contact behind is served first ("Queue position and estimated wait").
 * Over HTTP in process against a real Redis.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi, type Json } from '../support/api.ts';
import { ruleScenarios } from '../support/rule-scenarios.ts';

const WS = {
  withdrawn: 'rre5-withdrawn',
  removed: 'rre5-removed',
  position: 'rre5-position',
} as const;
const api = inProcessApi(Object.values(WS));
const { ok, until } = api;
const { agent, decided, audited } = ruleScenarios(api);

describe('an offer withdrawn (API.md, "Offers": "A rejected, expired or withdrawn offer ... adds the agent to its excludedAgents")', () => {
  it('the agent that went away while offered is in excludedAgents, and is not offered the contact again when back', async () => {
    const ws = WS.withdrawn;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000 });
    await agent(ws, 'x', ['a']);
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    await ok('POST', ws, '/agents/x/state', { state: 'away' });
    const back = await until(ws, '/contacts/c1', (c) => c.state === 'queued');
    expect(back.excludedAgents).toEqual(['x']);
    const { events } = await ok('GET', ws, '/events?limit=1000&type=AssignmentRejected');
    expect((events as { data: Json }[]).map((e) => e.data)).toMatchObject([
      { contactId: 'c1', agentId: 'x', reason: 'presence' },
    ]);
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('x');
    expect((await ok('GET', ws, '/contacts/c1')).state).toBe('queued');
    await audited(ws);
  });

  it('an agent removed while offered is in excludedAgents too', async () => {
    const ws = WS.removed;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000 });
    await agent(ws, 'x', ['a']);
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    await ok('DELETE', ws, '/agents/x');
    const back = await until(ws, '/contacts/c1', (c) => c.state === 'queued');
    expect(back.excludedAgents).toEqual(['x']);
    await audited(ws);
  });
});

describe('queuePosition and contacts ahead that are blocked (API.md, "Queue position and estimated wait")', () => {
  it('a contact ahead waiting for its preferred agent counts in the position, and the contact behind is served first', async () => {
    const ws = WS.position;
    await agent(ws, 'p', ['a']);
    await agent(ws, 'q', ['a']);
    await ok('POST', ws, '/contacts', {
      id: 'c1',
      skills: ['a'],
      preferredAgents: ['p'],
      preferredForMs: 60_000,
    });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect((await ok('GET', ws, '/contacts/c2')).queuePosition).toBe(1);
    await ok('POST', ws, '/agents/q/state', { state: 'available' });
    expect(await decided(ws, 'c2')).toBe('q');
    expect((await ok('GET', ws, '/contacts/c1')).state).toBe('queued');
    await audited(ws);
  });
});
