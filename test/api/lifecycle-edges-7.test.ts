/**
 * The agent and contact lifecycle over HTTP (docs/API.md, "Offers, wrap-up and maximum wait"), in
 * combinations the other suites leave out: wrap-ups that overlap on an agent of capacity 2, an
 * offer that ends (expiry, rejection, abandon, maximum wait) while its agent wraps up, changes
 * (PATCH, presence, DELETE) while an agent holds an offer or wraps up, refusals that must change
 * nothing, and preferred or turned-down contacts through transfers, abandons and expiries. Each
 * workspace ends with the auditor (`npm run audit`) finding no violation.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi, type Json } from '../support/api.ts';
import { ruleScenarios } from '../support/rule-scenarios.ts';

const WS = {
  overlap: 'le7-overlap',
  away: 'le7-away',
  reserved: 'le7-reserved',
  patchWrap: 'le7-patch-wrap',
  again: 'le7-again',
  refusals: 'le7-refusals',
  blocked: 'le7-blocked',
  expire: 'le7-end-expire',
  reject: 'le7-end-reject',
  abandon: 'le7-end-abandon',
  maxwait: 'le7-end-maxwait',
} as const;
const api = inProcessApi(Object.values(WS));
const { call, ok, until, problem } = api;
const { sleep, events, ofType, audited, agentWith } = ruleScenarios(api, { settleMs: 200 });

const commands = (ws: string) => api.running.redis.xlen(workspaceKeys(ws).commands);

describe.concurrent('wrap-ups', () => {
  it('two wrap-ups of an agent of capacity 2 overlap: the first one’s timer does not end the second', async () => {
    const ws = WS.overlap;
    await ok('PUT', ws, '/settings', { wrapUpMs: 1000 });
    await agentWith(ws, 'a1', { capacity: 2 });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'] });
    await until(ws, '/contacts/c2', (c) => c.state === 'assigned');

    await ok('POST', ws, '/contacts/c1/complete');
    // Wrapping up while it still holds c2.
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({ state: 'wrapup', activeContacts: ['c2'] });
    await sleep(500);
    await ok('POST', ws, '/contacts/c2/complete');
    const second = await ok('GET', ws, '/agents/a1');
    expect(second).toMatchObject({ state: 'wrapup', activeContacts: [] });
    // Past the first wrap-up's end, before the second's: still wrapping up (read in time: on a
    // loaded machine the read may come after the second's end, which the events below hold).
    await sleep(700);
    const between = await ok('GET', ws, '/agents/a1');
    if (Date.now() < Date.parse(String(second.wrapUpUntil)))
      expect(between).toMatchObject({ state: 'wrapup', wrapUpUntil: second.wrapUpUntil });
    await until(ws, '/agents/a1', (a) => a.state === 'available');
    const ended = await ofType(ws, 'WrapUpEnded');
    expect(ended).toEqual([expect.objectContaining({ agentId: 'a1', wrapUp: 2, early: false })]);
    // The second wrap-up ended at its own end, not at the first's.
    expect(Date.parse(String(ended[0]!.endedAt))).toBeGreaterThanOrEqual(
      Date.parse(String(second.wrapUpUntil)),
    );
    await audited(ws);
  });

  it('complete and transfer of an agent away start no wrap-up; away during a wrap-up ends it, and its timer then changes nothing', async () => {
    const ws = WS.away;
    await ok('PUT', ws, '/settings', { wrapUpMs: 500 });
    await agentWith(ws, 'a1', { capacity: 2 });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'] });
    await until(ws, '/contacts/c2', (c) => c.state === 'assigned');
    await ok('POST', ws, '/agents/a1/state', { state: 'away' });
    expect(await ok('POST', ws, '/contacts/c1/transfer', { skills: ['t'] })).toMatchObject({
      state: 'queued',
    });
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({ state: 'away', activeContacts: ['c2'] });
    // Offline holding a contact: still not removable (nothing changes), and its completion frees it.
    await problem('DELETE', ws, '/agents/a1', undefined, 409, 'agent-busy');
    await ok('POST', ws, '/agents/a1/state', { state: 'offline' });
    await ok('POST', ws, '/contacts/c2/complete');
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({ state: 'offline', activeContacts: [] });
    expect(await ofType(ws, 'WrapUpStarted')).toEqual([]);

    // Back, a completion wraps up; away ends the wrap-up (no WrapUpEnded); back again at once, the
    // wrap-up's timer finds nothing to end.
    await ok('POST', ws, '/agents/a1/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['s'] });
    await until(ws, '/contacts/c3', (c) => c.state === 'assigned');
    await ok('POST', ws, '/contacts/c3/complete');
    const away = await ok('POST', ws, '/agents/a1/state', { state: 'away' });
    expect(away).toMatchObject({ state: 'away' });
    expect(away.wrapUpUntil).toBeUndefined();
    expect((await ofType(ws, 'AgentStateChanged')).at(-1)).toMatchObject({ from: 'wrapup', to: 'away' });
    await ok('POST', ws, '/agents/a1/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'c4', skills: ['s'] });
    await until(ws, '/contacts/c4', (c) => c.state === 'assigned');
    await sleep(700);
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({ state: 'available', activeContacts: ['c4'] });
    expect(await ofType(ws, 'WrapUpEnded')).toEqual([]);
    await audited(ws);
  });

  it('PATCH during a wrap-up (skills, capacity, wrapUpMs null) keeps the agent out of routing until it ends', async () => {
    const ws = WS.patchWrap;
    await ok('PUT', ws, '/settings', { wrapUpMs: 5000 });
    // Long enough for the five calls below on a loaded machine (800 ms ended it before the check).
    await agentWith(ws, 'a1', { wrapUpMs: 3000 });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await until(ws, '/contacts/c1', (c) => c.state === 'assigned');
    await ok('POST', ws, '/contacts/c1/complete');
    const until1 = (await ok('GET', ws, '/agents/a1')).wrapUpUntil;
    await ok('PATCH', ws, '/agents/a1', { skills: ['s', 't'], capacity: 2 });
    const cleared = await ok('PATCH', ws, '/agents/a1', { wrapUpMs: null });
    expect(cleared).toMatchObject({ state: 'wrapup', wrapUpUntil: until1, availableSince: null });
    expect(cleared.wrapUpMs).toBeUndefined();
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['t'] });
    await ok('PATCH', ws, '/agents/a1', { capacity: { voice: 2 } });
    await sleep(200);
    expect((await ok('GET', ws, '/contacts/c2')).state).toBe('queued');
    expect((await ok('GET', ws, '/agents/a1')).state).toBe('wrapup');
    await until(ws, '/contacts/c2', (c) => c.state === 'assigned' && c.agentId === 'a1', 10_000);
    await audited(ws);
  });

  it('an agent removed while wrapping up and registered again: the old wrap-up’s timer leaves the new one alone', async () => {
    const ws = WS.again;
    await agentWith(ws, 'a1', { wrapUpMs: 600 });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await until(ws, '/contacts/c1', (c) => c.state === 'assigned');
    await ok('POST', ws, '/contacts/c1/complete');
    expect(await ok('DELETE', ws, '/agents/a1')).toMatchObject({ id: 'a1', removed: true });
    await agentWith(ws, 'a1', { wrapUpMs: 2000 });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'] });
    await until(ws, '/contacts/c2', (c) => c.state === 'assigned');
    await ok('POST', ws, '/contacts/c2/complete');
    const wrapping = await ok('GET', ws, '/agents/a1');
    await sleep(900);
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({
      state: 'wrapup',
      wrapUpUntil: wrapping.wrapUpUntil,
    });
    expect(await ofType(ws, 'WrapUpEnded')).toEqual([]);
    await audited(ws);
  });
});

describe.concurrent('an offer that ends while its agent wraps up leaves the agent wrapping up', () => {
  const cases = [
    ['expires', WS.expire],
    ['is rejected', WS.reject],
    ['is abandoned', WS.abandon],
    ['passes its maximum wait', WS.maxwait],
  ] as const;
  for (const [how, ws] of cases)
    it(how, async () => {
      await ok('PUT', ws, '/settings', {
        offerTimeoutMs: ws === WS.expire ? 400 : 60_000,
        wrapUpMs: 3000,
        missedOfferPresence: 'available',
      });
      await agentWith(ws, 'a1', { capacity: 2 });
      await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
      await until(ws, '/contacts/c1', (c) => c.state === 'offered');
      await ok('POST', ws, '/contacts/c1/accept', { agentId: 'a1' });
      await ok('POST', ws, '/contacts', {
        id: 'c2',
        skills: ['s'],
        ...(ws === WS.maxwait ? { maxWaitMs: 500 } : {}),
      });
      await until(ws, '/contacts/c2', (c) => c.state === 'offered');
      await ok('POST', ws, '/contacts/c1/complete');
      expect(await ok('GET', ws, '/agents/a1')).toMatchObject({ state: 'wrapup', activeContacts: ['c2'] });
      if (ws === WS.reject) await ok('POST', ws, '/contacts/c2/reject', { agentId: 'a1' });
      if (ws === WS.abandon) await ok('POST', ws, '/contacts/c2/abandon');
      await until(ws, '/contacts/c2', (c) => c.state !== 'offered', 3000);
      expect(await ok('GET', ws, '/agents/a1')).toMatchObject({
        state: 'wrapup',
        presence: 'available',
        activeContacts: [],
        availableSince: null,
      });
      await ok('POST', ws, '/contacts', { id: 'c3', skills: ['s'] });
      await sleep(300);
      expect((await ok('GET', ws, '/contacts/c3')).state).toBe('queued');
      await audited(ws);
    });
});

describe.concurrent('changes while an agent holds an offer', () => {
  it('a lower capacity and other skills keep the offer; accepted, the agent is busy; its new skills take the next one', async () => {
    const ws = WS.reserved;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 60_000, channels: ['chat', 'voice'] });
    await agentWith(ws, 'a1', { capacity: 2 });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await until(ws, '/contacts/c1', (c) => c.state === 'offered');
    expect(await ok('PATCH', ws, '/agents/a1', { capacity: 1 })).toMatchObject({
      state: 'reserved',
      activeContacts: ['c1'],
    });
    expect(await ok('PATCH', ws, '/agents/a1', { skills: ['x'] })).toMatchObject({ state: 'reserved' });
    expect(await ok('POST', ws, '/contacts/c1/accept', { agentId: 'a1' })).toMatchObject({
      state: 'assigned',
    });
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({ state: 'busy', activeContacts: ['c1'] });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['x'] });
    await sleep(200);
    expect((await ok('GET', ws, '/contacts/c2')).state).toBe('queued');
    await ok('PATCH', ws, '/agents/a1', { capacity: 3 });
    await until(ws, '/contacts/c2', (c) => c.state === 'offered' && c.agentId === 'a1');

    // A capacity per channel leaving out the offer's channel, then away: the offer is withdrawn.
    await ok('POST', ws, '/contacts/c2/reject', { agentId: 'a1' });
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['x'], channel: 'chat' });
    await until(ws, '/contacts/c3', (c) => c.state === 'offered');
    const narrowed = await ok('PATCH', ws, '/agents/a1', { capacity: { voice: 2 } });
    expect(narrowed).toMatchObject({ state: 'reserved', activeContacts: ['c1', 'c3'] });
    expect(Object.keys(narrowed.availableSinceByChannel as Json)).toEqual(['voice']);
    expect(await ok('POST', ws, '/agents/a1/state', { state: 'away' })).toMatchObject({
      state: 'away',
      activeContacts: ['c1'],
    });
    expect(await ok('GET', ws, '/contacts/c3')).toMatchObject({ state: 'queued', excludedAgents: ['a1'] });
    expect((await ofType(ws, 'AssignmentRejected')).at(-1)).toMatchObject({
      contactId: 'c3',
      reason: 'presence',
    });
    await audited(ws);
  });
});

describe.concurrent('refusals change nothing', () => {
  it('offer-not-yours, contact-not-assigned, contact-not-queued, agent-busy: no document moves, the offer stays', async () => {
    const ws = WS.refusals;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 60_000 });
    await agentWith(ws, 'a1', { capacity: 2 });
    await ok('POST', ws, '/agents', { id: 'a2', skills: ['s'] });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await until(ws, '/contacts/c1', (c) => c.state === 'offered');
    const before = [await ok('GET', ws, '/contacts/c1'), await ok('GET', ws, '/agents/a1')];

    for (const agentId of ['a2', 'nobody']) {
      const p = await problem('POST', ws, '/contacts/c1/reject', { agentId }, 409, 'offer-not-yours');
      expect(p.errors).toEqual([{ path: 'agentId', message: expect.stringContaining(agentId) }]);
    }
    await problem('POST', ws, '/contacts/c1/complete', undefined, 409, 'contact-not-assigned');
    await problem('POST', ws, '/contacts/c1/transfer', { skills: ['s'] }, 409, 'contact-not-assigned');
    expect([await ok('GET', ws, '/contacts/c1'), await ok('GET', ws, '/agents/a1')]).toEqual(before);

    await ok('POST', ws, '/contacts/c1/accept', { agentId: 'a1' });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'] });
    await until(ws, '/contacts/c2', (c) => c.state === 'offered');
    await problem('POST', ws, '/contacts/c1/abandon', undefined, 409, 'contact-not-queued');
    // An agent holding an assigned contact and an offer: refused, and the offer is not withdrawn.
    const held = [await ok('GET', ws, '/contacts/c2'), await ok('GET', ws, '/agents/a1')];
    const n = await commands(ws);
    await problem('DELETE', ws, '/agents/a1', undefined, 409, 'agent-busy');
    expect(await commands(ws)).toBe(n + 1);
    expect([await ok('GET', ws, '/contacts/c2'), await ok('GET', ws, '/agents/a1')]).toEqual(held);
    expect(await ofType(ws, 'AssignmentRejected')).toEqual([]);

    // The state it is in: 200, no fact; a state that is derived, not set: a 400 naming state.
    const facts = (await events(ws)).length;
    expect(await ok('POST', ws, '/agents/a1/state', { state: 'available' })).toMatchObject({
      state: 'reserved',
    });
    for (const state of ['reserved', 'busy', 'wrapup'])
      expect((await call('POST', `/v1/workspaces/${ws}/agents/a1/state`, { state })).status).toBe(400);
    expect((await events(ws)).length).toBe(facts);
    await audited(ws);
  });
});

describe.concurrent('turned-down and preferred contacts', () => {
  it('through transfer, abandon and expiry: documents as the log says, and the blocked count agrees', async () => {
    const ws = WS.blocked;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 60_000, channels: ['chat', 'voice'] });
    await agentWith(ws, 'a1', { capacity: { voice: 1, chat: 2 } });
    await ok('POST', ws, '/agents', { id: 'a2', skills: ['s'] });
    // Preferred, taken during its preference, then transferred: the preference is gone.
    await ok('POST', ws, '/contacts', {
      id: 'c1',
      skills: ['s'],
      preferredAgents: ['a1'],
      preferredForMs: 60_000,
    });
    await until(ws, '/contacts/c1', (c) => c.state === 'offered');
    await ok('POST', ws, '/contacts/c1/accept', { agentId: 'a1' });
    const moved = await ok('POST', ws, '/contacts/c1/transfer', { skills: ['t'] });
    expect(moved.preferredAgents).toBeUndefined();
    expect(moved.preferredUntil).toBeUndefined();
    // Turned down, then abandoned while queued.
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'], channel: 'chat' });
    await until(ws, '/contacts/c2', (c) => c.state === 'offered');
    await ok('POST', ws, '/contacts/c2/reject', { agentId: 'a1' });
    expect(await ok('POST', ws, '/contacts/c2/abandon')).toMatchObject({
      state: 'abandoned',
      excludedAgents: ['a1'],
    });
    // Turned down by one preferred agent, taken by the other, transferred: no maximum wait, a1 still excluded.
    await ok('POST', ws, '/contacts', {
      id: 'c3',
      skills: ['s'],
      preferredAgents: ['a1', 'a2'],
      maxWaitMs: 5000,
    });
    await until(ws, '/contacts/c3', (c) => c.state === 'offered');
    await ok('POST', ws, '/contacts/c3/reject', { agentId: 'a1' });
    await ok('POST', ws, '/agents/a2/state', { state: 'available' });
    await until(ws, '/contacts/c3', (c) => c.state === 'offered' && c.agentId === 'a2');
    await ok('POST', ws, '/contacts/c3/accept', { agentId: 'a2' });
    const back = await ok('POST', ws, '/contacts/c3/transfer', { skills: ['s'] });
    expect(back).toMatchObject({ state: 'queued', excludedAgents: ['a1'], maxWaitMs: 5000 });
    expect(back.expiresAt).toBeUndefined();
    expect(back.preferredAgents).toBeUndefined();
    await until(ws, '/contacts/c3', (c) => c.state === 'offered' && c.agentId === 'a2');
    // Turned down, then past its maximum wait.
    await ok('POST', ws, '/contacts', { id: 'c4', skills: ['s'], channel: 'chat', maxWaitMs: 400 });
    await until(ws, '/contacts/c4', (c) => c.state === 'offered');
    await ok('POST', ws, '/contacts/c4/reject', { agentId: 'a1' });
    await until(ws, '/contacts/c4', (c) => c.state === 'expired');
    await sleep(200);

    const page = (await ok('GET', ws, '/events?limit=1000')).events as { position: string }[];
    const state = await ok('GET', ws, `/state?at=${page.at(-1)!.position}`);
    for (const c of state.contacts as Json[]) {
      const { queuePosition: _q, estimatedWaitMs: _e, ...read } = await ok('GET', ws, `/contacts/${c.id}`);
      expect(c, `${c.id}`).toEqual(read);
    }
    for (const a of state.agents as Json[])
      expect(a, `${a.id}`).toEqual(await ok('GET', ws, `/agents/${a.id}`));
    const blocked = (state.contacts as Json[]).filter(
      (c) => c.state === 'queued' && (c.excludedAgents !== undefined || c.preferredAgents !== undefined),
    ).length;
    const counted = await api.running.redis.hget(workspaceKeys(ws).meta, 'excluded');
    expect(Number(counted ?? 0)).toBe(blocked);
    await audited(ws);
  });
});
