/**
 * docs/ROUTING.md and docs/API.md against the server at more of the rules' edges, over HTTP in
 * process against a real Redis with the dispatcher's clock running: an agent keeps its
 * available-since through a change of skills or capacity and gets a new one after being full (per
 * channel too); a routing step during a preference keeps the preference; the AssignmentMade of a
 * stepped contact says its new requirements and its arrival; most-skilled ties go by the since on
 * the contact's channel; the workspace's maximum wait is the one in force when a contact was queued.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi, type Json } from '../support/api.ts';
import { ruleScenarios } from '../support/rule-scenarios.ts';

const WS = {
  keepSince: 'rre2-keep-since',
  fullAgain: 'rre2-full-again',
  stepPreferred: 'rre2-step-preferred',
  steppedEvent: 'rre2-stepped-event',
  skilledTie: 'rre2-skilled-tie',
  maxWait: 'rre2-max-wait-when-queued',
} as const;
const api = inProcessApi(Object.values(WS));
const { ok, until } = api;
const { sleep, agent, availableInOrder, decided, audited } = ruleScenarios(api);

describe('available-since (ROUTING.md, "Consequences users see")', () => {
  it('a change of skills and capacity keeps an agent at its place in the LAA order', async () => {
    const ws = WS.keepSince;
    await agent(ws, 'x', ['a']);
    await agent(ws, 'y', ['a', 'b']);
    await availableInOrder(ws, ['x', 'y']);
    const before = (await ok('GET', ws, '/agents/x')).availableSince;
    await sleep(5);
    await ok('PATCH', ws, '/agents/x', { skills: ['a', 'b'], capacity: 2 });
    expect((await ok('GET', ws, '/agents/x')).availableSince).toBe(before);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['b'] });
    expect(await decided(ws, 'c1')).toBe('x');
    await audited(ws);
  });

  it('after being full on a channel an agent comes back to that channel as the newest; its other channel keeps its place', async () => {
    const ws = WS.fullAgain;
    await ok('PUT', ws, '/settings', { channels: ['chat', 'voice'] });
    await agent(ws, 'split', ['a'], { capacity: { chat: 1, voice: 1 } });
    await agent(ws, 'any', ['a'], { capacity: 3 });
    await availableInOrder(ws, ['split', 'any']);
    await ok('POST', ws, '/contacts', { id: 'h1', skills: ['a'], channel: 'chat' });
    expect(await decided(ws, 'h1')).toBe('split');
    await sleep(3);
    await ok('POST', ws, '/contacts/h1/complete');
    // split's chat since is now: any (since before) is the longest available on chat ...
    await ok('POST', ws, '/contacts', { id: 'h2', skills: ['a'], channel: 'chat' });
    expect(await decided(ws, 'h2')).toBe('any');
    // ... while on voice split, never full there, still is.
    await ok('POST', ws, '/contacts', { id: 'v1', skills: ['a'] });
    expect(await decided(ws, 'v1')).toBe('split');
    await audited(ws);
  });
});

describe('a routing step during a preference (API.md, "Preferred agents", "Routing steps")', () => {
  it('the preference holds after the step: another available agent does not take it until the preference ends', async () => {
    const ws = WS.stepPreferred;
    await agent(ws, 'p', ['a', 'b']);
    await agent(ws, 'q', ['a', 'b']);
    await availableInOrder(ws, ['q']);
    await ok('POST', ws, '/contacts', {
      id: 'c1',
      skills: ['a'],
      preferredAgents: ['p'],
      preferredForMs: 600,
      steps: [{ afterMs: 100, skills: ['b'], priority: 3 }],
    });
    await until(ws, '/contacts/c1', (c) => c.step === 1, 3000);
    await sleep(50);
    expect(await ok('GET', ws, '/contacts/c1')).toMatchObject({
      state: 'queued',
      skills: ['b'],
      priority: 3,
      preferredAgents: ['p'],
    });
    expect(await decided(ws, 'c1')).toBe('q');
    const c1 = await ok('GET', ws, '/contacts/c1');
    expect(c1.preferredAgents).toBeUndefined();
    await audited(ws);
  });
});

describe('AssignmentMade of a stepped contact (API.md, "Events")', () => {
  it('names its requirements and priority after the step, its arrival, and the wait from it', async () => {
    const ws = WS.steppedEvent;
    await agent(ws, 'x', ['b']);
    const queued = await ok('POST', ws, '/contacts', {
      id: 'c1',
      skills: ['a'],
      priority: 1,
      steps: [{ afterMs: 80, skills: ['b'], priority: 4 }],
    });
    await availableInOrder(ws, ['x']);
    expect(await decided(ws, 'c1')).toBe('x');
    const doc = await ok('GET', ws, '/contacts/c1');
    const { events } = await ok('GET', ws, '/events?limit=1000&type=AssignmentMade');
    const [made] = events as { data: Json }[];
    expect(made!.data).toMatchObject({
      contactId: 'c1',
      agentId: 'x',
      skills: ['b'],
      channel: 'voice',
      priority: 4,
      queuedAt: queued.queuedAt,
      assignedAt: doc.assignedAt,
      waitedMs: Date.parse(String(doc.assignedAt)) - Date.parse(String(queued.queuedAt)),
    });
    expect(doc.waitedMs).toBe(made!.data.waitedMs);
    await audited(ws);
  });
});

describe('most-skilled ties (API.md, "Channels": "its ties go by that since")', () => {
  it('equal level sums: the one with the older since on the contact’s channel, a per-channel agent against an any-channel one', async () => {
    const ws = WS.skilledTie;
    await ok('PUT', ws, '/settings', { channels: ['chat', 'voice'], agentSelection: 'most-skilled' });
    await agent(ws, 'split', [{ name: 'a', level: 2 }, 'b'], { capacity: { chat: 2, voice: 1 } });
    await agent(ws, 'any', ['a', { name: 'b', level: 2 }], { capacity: 2 });
    await agent(ws, 'low', ['a', 'b'], { capacity: 2 });
    await availableInOrder(ws, ['low', 'split', 'any']);
    await ok('POST', ws, '/contacts', { id: 'h1', skills: ['a', 'b'], channel: 'chat' });
    expect(await decided(ws, 'h1')).toBe('split');
    // split stays able on chat (1 of 2) and keeps its since: it wins the tie again.
    await ok('POST', ws, '/contacts', { id: 'h2', skills: ['a', 'b'], channel: 'chat' });
    expect(await decided(ws, 'h2')).toBe('split');
    // split full on chat: any (3) over low (2), though low is available longer.
    await ok('POST', ws, '/contacts', { id: 'h3', skills: ['a', 'b'], channel: 'chat' });
    expect(await decided(ws, 'h3')).toBe('any');
    await audited(ws);
  });
});

describe('maximum wait (API.md: "the contact\'s own, else the workspace\'s when it was queued")', () => {
  it('a maximum wait set after a contact was queued does not apply to it; one queued after expires', async () => {
    const ws = WS.maxWait;
    await ok('POST', ws, '/contacts', { id: 'before', skills: ['a'] });
    await ok('PUT', ws, '/settings', { maxWaitMs: 100 });
    const after = await ok('POST', ws, '/contacts', { id: 'after', skills: ['a'] });
    expect(after.expiresAt).toBeDefined();
    await until(ws, '/contacts/after', (c) => c.state === 'expired', 3000);
    await sleep(100);
    const doc = await ok('GET', ws, '/contacts/before');
    expect(doc.state).toBe('queued');
    expect(doc.expiresAt).toBeUndefined();
  });
});
