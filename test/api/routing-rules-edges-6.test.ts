/**
 * docs/API.md ("Routing steps": "the contact's requirements become that step's skills") against
 * the server when a step lowers a contact's requirements while an agent who meets the new ones is
 * available already: the step itself leads to the decision, also into a queue whose head is
 * blocked (waiting for its preferred agent), behind it or ahead of it. Over HTTP in process against
 * a real Redis with the dispatcher's clock running.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi, type Json } from '../support/api.ts';
import { ruleScenarios } from '../support/rule-scenarios.ts';

const WS = {
  level: 'rre6-level',
  behindBlocked: 'rre6-behind-blocked',
  aheadOfBlocked: 'rre6-ahead-of-blocked',
} as const;
const api = inProcessApi(Object.values(WS));
const { ok, until } = api;
const { agent, audited } = ruleScenarios(api);

async function stepThenAssigned(ws: string, id: string): Promise<Json> {
  const c = await until(ws, `/contacts/${id}`, (x) => x.state !== 'queued', 3000);
  expect(c).toMatchObject({ state: 'assigned', step: 1 });
  const { events } = await ok('GET', ws, '/events?limit=1000&type=ContactStepped,AssignmentMade');
  const mine = (events as { type: string; data: Json }[]).filter((e) => e.data.contactId === id);
  expect(mine.map((e) => e.type)).toEqual(['ContactStepped', 'AssignmentMade']);
  return c;
}

describe('a step lowering the requirements while an agent is available', () => {
  it('a minimum level lowered: the level-2 agent available all along takes it at the step', async () => {
    const ws = WS.level;
    await agent(ws, 'x', [{ name: 'a', level: 2 }]);
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    await ok('POST', ws, '/contacts', {
      id: 'c1',
      skills: [{ name: 'a', minLevel: 4 }],
      steps: [{ afterMs: 100, skills: [{ name: 'a', minLevel: 2 }] }],
    });
    expect((await stepThenAssigned(ws, 'c1')).agentId).toBe('x');
    await audited(ws);
  });

  it('into a queue whose head waits for its preferred agent: the stepped contact, behind it, goes to the available agent', async () => {
    const ws = WS.behindBlocked;
    await agent(ws, 'p', ['a']);
    await agent(ws, 'q', ['a']);
    await ok('POST', ws, '/agents/q/state', { state: 'available' });
    await ok('POST', ws, '/contacts', {
      id: 'c0',
      skills: ['a'],
      preferredAgents: ['p'],
      preferredForMs: 60_000,
    });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['z'], steps: [{ afterMs: 100, skills: ['a'] }] });
    expect((await stepThenAssigned(ws, 'c1')).agentId).toBe('q');
    expect((await ok('GET', ws, '/contacts/c0')).state).toBe('queued');
    await audited(ws);
  });

  it('into a queue whose head waits for its preferred agent: the stepped contact, arrived earlier, goes ahead of it to the available agent', async () => {
    const ws = WS.aheadOfBlocked;
    await agent(ws, 'p', ['a']);
    await agent(ws, 'q', ['a']);
    await ok('POST', ws, '/agents/q/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['z'], steps: [{ afterMs: 100, skills: ['a'] }] });
    await ok('POST', ws, '/contacts', {
      id: 'c0',
      skills: ['a'],
      preferredAgents: ['p'],
      preferredForMs: 60_000,
    });
    expect((await stepThenAssigned(ws, 'c1')).agentId).toBe('q');
    expect((await ok('GET', ws, '/contacts/c0')).state).toBe('queued');
    await audited(ws);
  });
});
