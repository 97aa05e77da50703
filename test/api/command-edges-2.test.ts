/**
 * Command routes at edges of API.md not covered elsewhere, against a real Switchboard (in process,
 * real Redis): a 400 names every bad field of a body at once, the rules that join two fields
 * (`preferredForMs` only with `preferredAgents`) included.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'cmd-edges-2';
const api = inProcessApi([WS]);
const B = `/v1/workspaces/${WS}`;

const streamLength = () => api.running.redis.xlen(workspaceKeys(WS).commands);

describe('POST /contacts: a 400 names every bad field at once', () => {
  it('preferredForMs without preferredAgents is named with the body’s other bad fields', async () => {
    const before = await streamLength();
    const r = await api.call('POST', `${B}/contacts`, { skills: ['x'], priority: 12, preferredForMs: 100 });
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.type).toBe('/problems/invalid-request');
    const paths = (r.body.errors as { path: string }[]).map((e) => e.path).sort();
    expect(paths).toEqual(['preferredForMs', 'priority']);
    expect(await streamLength()).toBe(before);
  });
});

describe('DELETE /agents/{id} of an agent holding an offer', () => {
  it('withdraws the offer (AssignmentRejected, reason removed): the contact is queued again and goes to the next agent', async () => {
    await api.ok('PUT', WS, '/settings', { offerTimeoutMs: 60_000 });
    await api.ok('POST', WS, '/agents', { id: 'leaver', skills: ['offer-x'] });
    await api.ok('POST', WS, '/agents/leaver/state', { state: 'available' });
    await api.ok('POST', WS, '/contacts', { id: 'rings', skills: ['offer-x'] });
    await api.until(WS, '/contacts/rings', (c) => c.state === 'offered' && c.agentId === 'leaver');

    const removed = await api.ok('DELETE', WS, '/agents/leaver');
    expect(removed).toMatchObject({ id: 'leaver', removed: true });
    await api.problem('GET', WS, '/agents/leaver', undefined, 404, 'agent-not-found');
    const back = await api.ok('GET', WS, `/contacts/rings?minPosition=${removed.position}`);
    expect(back).toMatchObject({ state: 'queued', excludedAgents: ['leaver'] });
    expect(back.agentId).toBeUndefined();

    const { events } = (await api.ok('GET', WS, '/events?type=AssignmentRejected,AgentRemoved')) as {
      events: { type: string; data: Record<string, unknown> }[];
    };
    expect(events.map((e) => [e.type, e.data.agentId, e.data.reason])).toEqual([
      ['AssignmentRejected', 'leaver', 'removed'],
      ['AgentRemoved', 'leaver', undefined],
    ]);

    await api.ok('POST', WS, '/agents', { id: 'stayer', skills: ['offer-x'] });
    await api.ok('POST', WS, '/agents/stayer/state', { state: 'available' });
    await api.until(WS, '/contacts/rings', (c) => c.state === 'offered' && c.agentId === 'stayer');
  });
});
