/**
 * docs/API.md against the server, where the docs named the longest available agent but the
 * workspace's `agentSelection` decides ("Preferred agents", "Channels"): a contact waiting for its
 * preferred agents goes to the one of them the selection picks (the most skilled, the least
 * occupied), not to the longest available of them; and a contact goes to the agent the selection
 * picks among any-channel agents and those with room on its channel. And ("Routing steps") a
 * maximum wait runs on its own: a contact expires when it passes, its steps taken or not. In process
 * against a real Redis with the dispatcher's clock running.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi, type Json } from '../support/api.ts';

const WS = {
  skilled: 'rde1-skilled',
  occupied: 'rde1-occupied',
  channels: 'rde1-channels',
  expiry: 'rde1-expiry',
} as const;
const api = inProcessApi(Object.values(WS));
const { ok, until } = api;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const agent = (ws: string, id: string, skills: unknown[], extra: Json = {}) =>
  ok('POST', ws, '/agents', { id, skills, ...extra });
/** Agents made available one after another, each a few ms after the one before (LAA order). */
async function availableInOrder(ws: string, ids: string[]): Promise<void> {
  for (const id of ids) {
    await ok('POST', ws, `/agents/${id}/state`, { state: 'available' });
    await sleep(3);
  }
  const since = await Promise.all(
    ids.map(async (id) => Date.parse(String((await ok('GET', ws, `/agents/${id}`)).availableSince))),
  );
  expect(since).toEqual([...since].sort((a, b) => a - b));
  expect(new Set(since).size).toBe(ids.length);
}
const assignedTo = async (ws: string, id: string) =>
  (await until(ws, `/contacts/${id}`, (c) => c.state === 'assigned')).agentId;

describe('preferred agents: the selection picks among them (API.md, "Preferred agents")', () => {
  it('most-skilled: the most skilled preferred agent, not the longest available one, nor a better one not preferred', async () => {
    const ws = WS.skilled;
    await ok('PUT', ws, '/settings', { agentSelection: 'most-skilled' });
    await agent(ws, 'p1', [{ name: 'Billing', level: 1 }]);
    await agent(ws, 'p3', [{ name: 'Billing', level: 3 }]);
    await agent(ws, 'x5', [{ name: 'Billing', level: 5 }]);
    await availableInOrder(ws, ['p1', 'p3', 'x5']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['Billing'], preferredAgents: ['p1', 'p3'] });
    expect(await assignedTo(ws, 'c1')).toBe('p3');
  });

  it('least-occupied: the least occupied preferred agent, not the longest available one', async () => {
    const ws = WS.occupied;
    await ok('PUT', ws, '/settings', { agentSelection: 'least-occupied' });
    await agent(ws, 'p', ['a'], { capacity: 4 });
    await agent(ws, 'q', ['a'], { capacity: 4 });
    await availableInOrder(ws, ['p', 'q']);
    // p, available longest, takes the first contact and stays available (1 of 4).
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await assignedTo(ws, 'c1')).toBe('p');
    const p = await ok('GET', ws, '/agents/p');
    expect(p.state).toBe('available');
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'], preferredAgents: ['p', 'q'] });
    expect(await assignedTo(ws, 'c2')).toBe('q');
  });
});

describe('channels: the selection picks among any-channel agents and those with room (API.md, "Channels")', () => {
  it('most-skilled: a chat contact goes to the more skilled agent, not the one available earliest', async () => {
    const ws = WS.channels;
    await ok('PUT', ws, '/settings', { channels: ['chat', 'voice'], agentSelection: 'most-skilled' });
    await agent(ws, 'any', [{ name: 'a', level: 2 }]);
    await agent(ws, 'chat', [{ name: 'a', level: 4 }], { capacity: { chat: 2 } });
    await availableInOrder(ws, ['any', 'chat']);
    await ok('POST', ws, '/contacts', { id: 'h1', skills: ['a'], channel: 'chat' });
    expect(await assignedTo(ws, 'h1')).toBe('chat');
  });
});

describe('routing steps: the maximum wait runs on its own (API.md, "Routing steps")', () => {
  it('a contact whose step is still to come expires when its maxWaitMs passes, and the step never comes', async () => {
    const ws = WS.expiry;
    await ok('POST', ws, '/contacts', {
      id: 'c1',
      skills: ['a'],
      maxWaitMs: 100,
      steps: [{ afterMs: 300, skills: ['b'] }],
    });
    const expired = await until(ws, '/contacts/c1', (c) => c.state === 'expired', 3000);
    expect(expired).toMatchObject({ step: 0, skills: ['a'] });
    // Past the step's time: no step was taken.
    await sleep(350);
    expect((await ok('GET', ws, '/contacts/c1')).step).toBe(0);
    const { events } = await ok('GET', ws, '/events?limit=1000&type=ContactStepped,ContactExpired');
    expect((events as { type: string }[]).map((e) => e.type)).toEqual(['ContactExpired']);
  });
});
