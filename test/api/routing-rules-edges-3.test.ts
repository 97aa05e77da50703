/**
 * docs/ROUTING.md ("least-occupied": "the lowest share of capacity in use ... then the longest
 * available") against the server when an agent's share changes by something other than a decision:
 * a capacity raised, an offer rejected, a contact transferred away, skills changed with contacts in
 * hand; and an agent whose capacity was lowered below the contacts it holds (a share over 1), with
 * room left on another channel, comes after one whose share is below 1 there though available
 * longer. Over HTTP in process against a real Redis.
 */
import { describe, expect, it } from 'vitest';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi } from '../support/api.ts';
import { ruleScenarios } from '../support/rule-scenarios.ts';

const WS = {
  raised: 'rre3-raised',
  rejected: 'rre3-rejected',
  transferred: 'rre3-transferred',
  reskilled: 'rre3-reskilled',
  over: 'rre3-share-over-one',
} as const;
const api = inProcessApi(Object.values(WS));
const { ok, until } = api;
const { agent, availableInOrder, decided, audited } = ruleScenarios(api);

describe('least-occupied: the share after changes that are not decisions', () => {
  it('a capacity raised lowers the share at once', async () => {
    const ws = WS.raised;
    await ok('PUT', ws, '/settings', { agentSelection: 'least-occupied' });
    await agent(ws, 'p', ['a'], { capacity: 2 });
    await agent(ws, 'q', ['a'], { capacity: 4 });
    await availableInOrder(ws, ['p', 'q']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('p');
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('q'); // p 1/2, q 0/4
    await ok('PATCH', ws, '/agents/p', { capacity: 10 }); // p 1/10, q 1/4
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['a'] });
    expect(await decided(ws, 'c3')).toBe('p');
    await audited(ws);
  });

  it('a rejected offer gives its share back', async () => {
    const ws = WS.rejected;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000, agentSelection: 'least-occupied' });
    await agent(ws, 'p', ['a'], { capacity: 2 });
    await agent(ws, 'q', ['a'], { capacity: 2 });
    await availableInOrder(ws, ['p', 'q']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('p');
    await ok('POST', ws, '/contacts/c1/reject', { agentId: 'p' });
    await until(ws, '/contacts/c1', (c) => c.state === 'offered' && c.agentId === 'q');
    // p 0/2, q 1/2.
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('p');
    await audited(ws);
  });

  it('a contact transferred away gives its share back', async () => {
    const ws = WS.transferred;
    await ok('PUT', ws, '/settings', { agentSelection: 'least-occupied' });
    await agent(ws, 'p', ['a'], { capacity: 2 });
    await agent(ws, 'q', ['a'], { capacity: 2 });
    await availableInOrder(ws, ['p', 'q']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('p');
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('q');
    await ok('POST', ws, '/contacts/c1/transfer', { skills: ['z'] });
    // p 0/2, q 1/2.
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['a'] });
    expect(await decided(ws, 'c3')).toBe('p');
    await audited(ws);
  });

  it('an agent given new skills with a contact in hand keeps its share in its new pool', async () => {
    const ws = WS.reskilled;
    await ok('PUT', ws, '/settings', { agentSelection: 'least-occupied' });
    await agent(ws, 'p', ['a'], { capacity: 2 });
    await agent(ws, 'q', ['b'], { capacity: 2 });
    await availableInOrder(ws, ['p', 'q']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('p');
    await ok('PATCH', ws, '/agents/p', { skills: ['a', 'b'] }); // p 1/2 (available longer), q 0/2
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['b'] });
    expect(await decided(ws, 'c2')).toBe('q');
    await audited(ws);
  });
});

describe('least-occupied with a share over 1', () => {
  it('the agent holding 3 voice contacts on room for 1 + 1 chat comes after one holding 3 of 4', async () => {
    const ws = WS.over;
    await ok('PUT', ws, '/settings', { channels: ['chat', 'voice'], agentSelection: 'least-occupied' });
    await ok('POST', ws, '/agents', { id: 'split', skills: ['a'], capacity: { voice: 3, chat: 1 } });
    await ok('POST', ws, '/agents', { id: 'any', skills: ['a'], capacity: 4 });
    await ok('POST', ws, '/agents/split/state', { state: 'available' });
    for (const id of ['v1', 'v2', 'v3']) {
      await ok('POST', ws, '/contacts', { id, skills: ['a'] });
      expect(await decided(ws, id)).toBe('split');
    }
    await ok('POST', ws, '/agents/any/state', { state: 'available' });
    for (const id of ['v4', 'v5', 'v6']) {
      await ok('POST', ws, '/contacts', { id, skills: ['a'] });
      expect(await decided(ws, id)).toBe('any');
    }
    // split: 3 held on room for 2 (share 1.5), its chat since the older; any: 3 of 4.
    await ok('PATCH', ws, '/agents/split', { capacity: { voice: 1, chat: 1 } });
    await ok('POST', ws, '/contacts', { id: 'h1', skills: ['a'], channel: 'chat' });
    expect(await decided(ws, 'h1')).toBe('any');
    // any full (4 of 4): split takes the next chat contact.
    await ok('POST', ws, '/contacts', { id: 'h2', skills: ['a'], channel: 'chat' });
    expect(await decided(ws, 'h2')).toBe('split');
    const audit = await auditWorkspace(api.running.redis, ws, { idle: true });
    expect(audit.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
  });
});
