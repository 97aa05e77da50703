/**
 * Workspace settings, third part (docs/API.md, "Offers, wrap-up and maximum wait"): the presence a
 * missed offer leaves its agent in is the one in force when the offer expires (available: no
 * AgentStateChanged, the contact goes to another agent; offline: while holding an assigned
 * contact), and offers switched on while an agent holds an assigned contact. Each workspace ends
 * with the auditor finding no violation.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';
import { ruleScenarios } from '../support/rule-scenarios.ts';

const WS = {
  missedAvailable: 'se3-missed-available',
  missedOffline: 'se3-missed-offline',
  offersOn: 'se3-offers-on',
} as const;
const api = inProcessApi(Object.values(WS));
const { ok, until } = api;
const { events, audited, agentWith } = ruleScenarios(api, { settleMs: 200 });

describe.concurrent('missed offers and offers switched on', () => {
  it('missedOfferPresence changed to available while an offer rings: the agent stays available, the contact goes elsewhere', async () => {
    const ws = WS.missedAvailable;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 400 });
    await agentWith(ws, 'a1');
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await until(ws, '/contacts/c1', (c) => c.state === 'offered');
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 400, missedOfferPresence: 'available' });
    await until(
      ws,
      '/contacts/c1',
      (c) => c.state === 'queued' || (c.state === 'offered' && c.agentId !== 'a1'),
    );
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({ presence: 'available', state: 'available' });
    expect(await ok('GET', ws, '/contacts/c1')).toMatchObject({ excludedAgents: ['a1'] });
    const changed = (await events(ws)).filter((e) => e.type === 'AgentStateChanged').map((e) => e.data.to);
    expect(changed).toEqual(['available']);
    await agentWith(ws, 'a2');
    await until(ws, '/contacts/c1', (c) => c.state === 'offered' && c.agentId === 'a2');
    await ok('POST', ws, '/contacts/c1/accept', { agentId: 'a2' });
    await audited(ws);
  });

  it('missedOfferPresence offline, the agent holding an assigned contact too: offline with it, then completes it', async () => {
    const ws = WS.missedOffline;
    await ok('PUT', ws, '/settings', {
      offerTimeoutMs: 60_000,
      missedOfferPresence: 'offline',
      wrapUpMs: 300,
    });
    await agentWith(ws, 'a1', { capacity: 2 });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await until(ws, '/contacts/c1', (c) => c.state === 'offered');
    await ok('POST', ws, '/contacts/c1/accept', { agentId: 'a1' });
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 300, missedOfferPresence: 'offline', wrapUpMs: 300 });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'] });
    await until(ws, '/contacts/c2', (c) => c.state === 'offered');
    await until(ws, '/agents/a1', (a) => a.presence === 'offline');
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({ state: 'offline', activeContacts: ['c1'] });
    expect(await ok('GET', ws, '/contacts/c2')).toMatchObject({ state: 'queued' });
    await ok('POST', ws, '/contacts/c1/complete');
    // Not available: no wrap-up.
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({ state: 'offline', activeContacts: [] });
    expect((await events(ws)).filter((e) => e.type === 'WrapUpStarted')).toEqual([]);
    await audited(ws);
  });

  it('offers switched on while an agent holds an assigned contact: the next is an offer, the first stays assigned', async () => {
    const ws = WS.offersOn;
    await agentWith(ws, 'a1', { capacity: 2 });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await until(ws, '/contacts/c1', (c) => c.state === 'assigned');
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 60_000 });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'] });
    await until(ws, '/contacts/c2', (c) => c.state === 'offered');
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({
      state: 'reserved',
      activeContacts: ['c1', 'c2'],
    });
    await ok('POST', ws, '/contacts/c1/complete');
    await ok('PUT', ws, '/settings', {});
    await ok('POST', ws, '/contacts/c2/reject', { agentId: 'a1' });
    await agentWith(ws, 'a2');
    await until(ws, '/contacts/c2', (c) => c.state === 'assigned' && c.agentId === 'a2');
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({ state: 'available', activeContacts: [] });
    await audited(ws);
  });
});
