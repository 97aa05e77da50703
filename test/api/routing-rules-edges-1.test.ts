/**
 * docs/ROUTING.md and docs/API.md against the server at the rules' edges, each the smallest
 * scenario whose outcome the docs decide, over HTTP in process against a real Redis with the
 * dispatcher's clock running: per-channel room and available-since beside an any-channel agent;
 * least-occupied counting every channel (and offers); most-skilled after a rejection; a routing
 * step's priority under aging; a contact whose preference ends takes its own place; an agent whose
 * offer expired (staying available) is never offered that contact again.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';
import { ruleScenarios } from '../support/rule-scenarios.ts';

const WS = {
  channelSince: 'rre1-channel-since',
  occupiedChannels: 'rre1-occupied-channels',
  occupiedOffers: 'rre1-occupied-offers',
  skilledReject: 'rre1-skilled-reject',
  agingStep: 'rre1-aging-step',
  agingQueues: 'rre1-aging-queues',
  preferenceEnd: 'rre1-preference-end',
  expiredStays: 'rre1-expired-stays',
} as const;
const api = inProcessApi(Object.values(WS));
const { ok, until } = api;
const { sleep, agent, availableInOrder, decided, audited, decisions } = ruleScenarios(api);

describe('channels: room and available-since per channel (ROUTING.md, "With channels")', () => {
  it('an agent full on voice keeps its chat since: a chat contact goes to it before a newer any-channel agent', async () => {
    const ws = WS.channelSince;
    await ok('PUT', ws, '/settings', { channels: ['chat', 'voice'] });
    await agent(ws, 'split', ['a'], { capacity: { voice: 1, chat: 1 } });
    await agent(ws, 'any', ['a'], { capacity: 2 });
    await availableInOrder(ws, ['split', 'any']);
    await ok('POST', ws, '/contacts', { id: 'v1', skills: ['a'] });
    expect(await decided(ws, 'v1')).toBe('split');
    // split is full on voice: the next voice contact goes to any.
    await ok('POST', ws, '/contacts', { id: 'v2', skills: ['a'] });
    expect(await decided(ws, 'v2')).toBe('any');
    // any (1 of 2) keeps its since, split its chat since, the older: chat goes to split.
    await ok('POST', ws, '/contacts', { id: 'h1', skills: ['a'], channel: 'chat' });
    expect(await decided(ws, 'h1')).toBe('split');
    await ok('POST', ws, '/contacts', { id: 'h2', skills: ['a'], channel: 'chat' });
    expect(await decided(ws, 'h2')).toBe('any');
    await audited(ws);
  });
});

describe('least-occupied (ROUTING.md, "The policy the rule takes")', () => {
  it('the share counts every channel: an agent full on voice but with room on chat compares by its whole load', async () => {
    const ws = WS.occupiedChannels;
    await ok('PUT', ws, '/settings', { channels: ['chat', 'voice'], agentSelection: 'least-occupied' });
    await agent(ws, 'split', ['a'], { capacity: { voice: 1, chat: 3 } });
    await agent(ws, 'any', ['a'], { capacity: 4 });
    await availableInOrder(ws, ['split', 'any']);
    await ok('POST', ws, '/contacts', { id: 'v1', skills: ['a'] });
    expect(await decided(ws, 'v1')).toBe('split'); // 0/4 each: split available longer
    // split 1/4 (full on voice), any 0/4: chat goes to any.
    await ok('POST', ws, '/contacts', { id: 'h1', skills: ['a'], channel: 'chat' });
    expect(await decided(ws, 'h1')).toBe('any');
    // 1/4 each: split's chat since is the older.
    await ok('POST', ws, '/contacts', { id: 'h2', skills: ['a'], channel: 'chat' });
    expect(await decided(ws, 'h2')).toBe('split');
    // split 2/4, any 1/4.
    await ok('POST', ws, '/contacts', { id: 'h3', skills: ['a'], channel: 'chat' });
    expect(await decided(ws, 'h3')).toBe('any');
    await audited(ws);
  });

  it('offers count: the agent holding an offer has the larger share', async () => {
    const ws = WS.occupiedOffers;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000, agentSelection: 'least-occupied' });
    await agent(ws, 'p', ['a'], { capacity: 2 });
    await agent(ws, 'q', ['a'], { capacity: 2 });
    await availableInOrder(ws, ['p', 'q']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('p');
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('q');
    await audited(ws);
  });
});

describe('most-skilled after a rejection (API.md, "Offers": "goes to the next agent by rule 1")', () => {
  it('the next most skilled agent, not the longest available one', async () => {
    const ws = WS.skilledReject;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000, agentSelection: 'most-skilled' });
    await agent(ws, 'l1', [{ name: 'a', level: 1 }]);
    await agent(ws, 'l3', [{ name: 'a', level: 3 }]);
    await agent(ws, 'l5', [{ name: 'a', level: 5 }]);
    await availableInOrder(ws, ['l1', 'l3', 'l5']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('l5');
    await ok('POST', ws, '/contacts/c1/reject', { agentId: 'l5' });
    const again = await until(ws, '/contacts/c1', (c) => c.state === 'offered' && c.agentId !== 'l5');
    expect(again).toMatchObject({ agentId: 'l3', excludedAgents: ['l5'] });
    await audited(ws);
  });
});

describe('priority aging (ROUTING.md, "Priority aging"; API.md, "Routing steps")', () => {
  it("a step's new priority counts from the contact's arrival: it overtakes a later contact of a middle priority", async () => {
    const ws = WS.agingStep;
    await ok('PUT', ws, '/settings', { priorityWeightMs: 1000 });
    await agent(ws, 'x', ['a']);
    await ok('POST', ws, '/contacts', {
      id: 'c1',
      skills: ['a'],
      priority: 0,
      steps: [{ afterMs: 100, skills: ['a'], priority: 9 }],
    });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'], priority: 5 });
    await until(ws, '/contacts/c1', (c) => c.step === 1 && c.priority === 9, 3000);
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    expect(await decided(ws, 'c1')).toBe('x');
    expect((await ok('GET', ws, '/contacts/c2')).state).toBe('queued');
    await audited(ws);
  });

  it('an older lower-priority contact in another queue goes first once its wait passes the weight', async () => {
    const ws = WS.agingQueues;
    await ok('PUT', ws, '/settings', { priorityWeightMs: 50 });
    await agent(ws, 'x', ['a', 'b']);
    await ok('POST', ws, '/contacts', { id: 'old', skills: ['a'], priority: 0 });
    await sleep(120);
    await ok('POST', ws, '/contacts', { id: 'new', skills: ['a', 'b'], priority: 1 });
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    expect(await decided(ws, 'old')).toBe('x');
    expect((await ok('GET', ws, '/contacts/new')).state).toBe('queued');
    await audited(ws);
  });
});

describe('preferred agents all away (API.md, "Preferred agents")', () => {
  it('when the preference ends the contact is served at its own place, before a later contact', async () => {
    const ws = WS.preferenceEnd;
    await agent(ws, 'p', ['a']);
    await agent(ws, 'q', ['a']);
    await ok('POST', ws, '/contacts', {
      id: 'c1',
      skills: ['a'],
      preferredAgents: ['p'],
      preferredForMs: 100,
    });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    await until(ws, '/contacts/c1', (c) => c.preferredAgents === undefined, 3000);
    await ok('POST', ws, '/agents/q/state', { state: 'available' });
    expect(await decided(ws, 'c1')).toBe('q');
    expect((await ok('GET', ws, '/contacts/c2')).state).toBe('queued');
    await audited(ws);
  });
});

describe('an expired offer (ROUTING.md, "excludedAgents")', () => {
  it('an agent that stays available after letting an offer expire is never offered that contact again, and takes the next', async () => {
    const ws = WS.expiredStays;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 100, missedOfferPresence: 'available' });
    await agent(ws, 'x', ['a']);
    await availableInOrder(ws, ['x']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    const back = await until(ws, '/contacts/c1', (c) => c.state === 'queued', 3000);
    expect(back.excludedAgents).toEqual(['x']);
    expect((await ok('GET', ws, '/agents/x')).state).toBe('available');
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('x');
    await ok('POST', ws, '/contacts/c2/accept', { agentId: 'x' });
    expect(await decisions(ws)).toEqual([
      ['c1', 'x'],
      ['c2', 'x'],
    ]);
    await audited(ws);
  });
});
