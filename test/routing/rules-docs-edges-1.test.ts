/**
 * docs/ROUTING.md and docs/API.md against the server where the oracle and the Lua step could agree
 * and still miss the documents (the property suites compare only those two): available-since kept
 * or renewed as documented (state set again, away and back, full by a lowered capacity or an offer
 * and able again, after a wrap-up, through batched commands), the last tie by agent id in byte
 * order under each selection, most-skilled scoring the agent's highest level on the names the
 * contact needs, an agent's skills changed while contacts wait, contacts turned down, preferences
 * (turned down, ended by a transfer), offers and capacity, least-occupied after a rejection,
 * queuePosition after a rejection, channels ordered by priority and arrival only, proficiency and
 * aging at their bounds, and a multi-skill lookup past 8 pools. A user saw nothing wrong here: each
 * case pins a documented edge. Over HTTP in process against a real Redis with the dispatcher's
 * clock running, so the Lua step decides; the auditor checks every decision after.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi, type Json } from '../support/api.ts';
import { ruleScenarios } from '../support/rule-scenarios.ts';

const WS = {
  again: 'rde-routing-again',
  awayBack: 'rde-routing-away-back',
  lowered: 'rde-routing-lowered',
  wrapUp: 'rde-routing-wrapup',
  tie: 'rde-routing-tie',
  score: 'rde-routing-score',
  twice: 'rde-routing-twice',
  gained: 'rde-routing-gained',
  lost: 'rde-routing-lost',
  preferredReject: 'rde-routing-preferred-reject',
  transferPreferred: 'rde-routing-transfer-preferred',
  reservedRoom: 'rde-routing-reserved-room',
  expiredFull: 'rde-routing-expired-full',
  rejectedFull: 'rde-routing-rejected-full',
  rejectedRoom: 'rde-routing-rejected-room',
  occupiedRejected: 'rde-routing-occupied-rejected',
  positionRejected: 'rde-routing-position-rejected',
  channelsOrder: 'rde-routing-channels-order',
  levelOne: 'rde-routing-level-one',
  widest: 'rde-routing-widest',
  manyPools: 'rde-routing-many-pools',
  maxWeight: 'rde-routing-max-weight',
  blockedGained: 'rde-routing-blocked-gained',
  batched: 'rde-routing-batched',
  awayComplete: 'rde-routing-away-complete',
  tieSkilled: 'rde-routing-tie-skilled',
  tieOccupied: 'rde-routing-tie-occupied',
} as const;
const api = inProcessApi(Object.values(WS));
const { ok, until } = api;
const { sleep, agent, availableInOrder, decided, audited } = ruleScenarios(api);

const sinceOf = async (ws: string, id: string) => (await ok('GET', ws, `/agents/${id}`)).availableSince;

/** Makes two agents available together until both get the same since (the same millisecond). */
async function availableTied(ws: string, one: string, other: string): Promise<void> {
  let tied = false;
  for (let i = 0; i < 50 && !tied; i++) {
    await Promise.all([
      ok('POST', ws, `/agents/${one}/state`, { state: 'available' }),
      ok('POST', ws, `/agents/${other}/state`, { state: 'available' }),
    ]);
    tied = (await sinceOf(ws, one)) === (await sinceOf(ws, other));
    if (!tied) {
      await ok('POST', ws, `/agents/${one}/state`, { state: 'away' });
      await ok('POST', ws, `/agents/${other}/state`, { state: 'away' });
    }
  }
  expect(tied).toBe(true);
}

describe('available-since (ROUTING.md, "Consequences users see"; API.md, "Documents")', () => {
  it('an available agent set available again keeps its place, and no fact is appended', async () => {
    const ws = WS.again;
    await agent(ws, 'x', ['a']);
    await agent(ws, 'y', ['a']);
    await availableInOrder(ws, ['x', 'y']);
    const before = await sinceOf(ws, 'x');
    const { events: e0 } = await ok('GET', ws, '/events?limit=1000');
    await sleep(5);
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    expect(await sinceOf(ws, 'x')).toBe(before);
    const { events: e1 } = await ok('GET', ws, '/events?limit=1000');
    expect((e1 as unknown[]).length).toBe((e0 as unknown[]).length);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    await audited(ws);
  });

  it('away, then available again: a new since, behind an agent available meanwhile', async () => {
    const ws = WS.awayBack;
    await agent(ws, 'x', ['a'], { capacity: 2 });
    await agent(ws, 'y', ['a']);
    await availableInOrder(ws, ['x', 'y']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    await ok('POST', ws, '/agents/x/state', { state: 'away' });
    expect(await sinceOf(ws, 'x')).toBeNull();
    await sleep(3);
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    expect(Date.parse(String(await sinceOf(ws, 'x')))).toBeGreaterThan(
      Date.parse(String(await sinceOf(ws, 'y'))),
    );
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('y');
    await audited(ws);
  });

  it('full by a lowered capacity, then raised: able again, so a new since', async () => {
    const ws = WS.lowered;
    await agent(ws, 'x', ['a'], { capacity: 2 });
    await agent(ws, 'y', ['a'], { capacity: 2 });
    await availableInOrder(ws, ['x', 'y']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    await ok('PATCH', ws, '/agents/x', { capacity: 1 });
    expect(await sinceOf(ws, 'x')).toBeNull();
    await sleep(3);
    await ok('PATCH', ws, '/agents/x', { capacity: 2 });
    expect(Date.parse(String(await sinceOf(ws, 'x')))).toBeGreaterThan(
      Date.parse(String(await sinceOf(ws, 'y'))),
    );
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('y');
    await audited(ws);
  });

  it('a wrap-up ended early: a new since, behind an agent available meanwhile', async () => {
    const ws = WS.wrapUp;
    await agent(ws, 'x', ['a'], { capacity: 2, wrapUpMs: 60_000 });
    await agent(ws, 'y', ['a']);
    await availableInOrder(ws, ['x', 'y']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    await ok('POST', ws, '/contacts/c1/complete');
    expect(await until(ws, '/agents/x', (a) => a.state === 'wrapup')).toMatchObject({ availableSince: null });
    await sleep(3);
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    expect(Date.parse(String(await sinceOf(ws, 'x')))).toBeGreaterThan(
      Date.parse(String(await sinceOf(ws, 'y'))),
    );
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('y');
    await audited(ws);
  });

  it('a contact completed while away starts no wrap-up: back available, the agent takes work at once', async () => {
    const ws = WS.awayComplete;
    await agent(ws, 'x', ['a'], { wrapUpMs: 60_000 });
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    await ok('POST', ws, '/agents/x/state', { state: 'away' });
    await ok('POST', ws, '/contacts/c1/complete');
    const { events } = await ok('GET', ws, '/events?limit=1000&type=WrapUpStarted');
    expect(events).toEqual([]);
    expect(await ok('POST', ws, '/agents/x/state', { state: 'available' })).toMatchObject({
      state: 'available',
    });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('x');
    await audited(ws);
  });

  it('two agents available in the same millisecond: the lower id in byte order ("B" before "a")', async () => {
    const ws = WS.tie;
    await agent(ws, 'a', ['s']);
    await agent(ws, 'B', ['s']);
    await availableTied(ws, 'a', 'B');
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    expect(await decided(ws, 'c1')).toBe('B');
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'] });
    expect(await decided(ws, 'c2')).toBe('a');
    await audited(ws);
  });
});

describe('however the commands were batched (ROUTING.md, "Consequences users see")', () => {
  it('agents made available at once, then contacts sent at once: the agents available longest take them (ties by id)', async () => {
    const ws = WS.batched;
    const ids = ['f', 'E', 'd', 'C', 'b', 'A', 'z', 'Y'];
    for (const id of ids) await agent(ws, id, ['s']);
    await Promise.all(ids.map((id) => ok('POST', ws, `/agents/${id}/state`, { state: 'available' })));
    const since = new Map<string, number>();
    for (const id of ids)
      since.set(id, Date.parse(String((await ok('GET', ws, `/agents/${id}`)).availableSince)));
    await Promise.all([1, 2, 3, 4].map((i) => ok('POST', ws, '/contacts', { id: `c${i}`, skills: ['s'] })));
    const contacts = await Promise.all(
      [1, 2, 3, 4].map((i) => until(ws, `/contacts/c${i}`, (c) => c.state === 'assigned')),
    );
    const order = [...ids].sort((a, b) => since.get(a)! - since.get(b)! || (a < b ? -1 : a > b ? 1 : 0));
    expect(contacts.map((c) => String(c.agentId)).sort()).toEqual(order.slice(0, 4).sort());
    // In the order they were queued: the first contact to the longest available, and so on.
    const { events } = await ok('GET', ws, '/events?limit=1000&type=AssignmentMade');
    expect((events as { data: Json }[]).map((e) => e.data.agentId)).toEqual(order.slice(0, 4));
    await audited(ws);
  });
});

describe('most-skilled (API.md, "Routing policy")', () => {
  it('scores only the names the contact needs, at the agent level, not its minimum', async () => {
    const ws = WS.score;
    await ok('PUT', ws, '/settings', { agentSelection: 'most-skilled' });
    // wide: 2 + 1 on the contact's names (and a 5 it does not need); deep: 2 + 2.
    await agent(ws, 'wide', [{ name: 'a', level: 2 }, 'b', { name: 'c', level: 5 }]);
    await agent(ws, 'deep', [
      { name: 'a', level: 2 },
      { name: 'b', level: 2 },
    ]);
    await availableInOrder(ws, ['wide', 'deep']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a', 'b'] });
    expect(await decided(ws, 'c1')).toBe('deep');
    await ok('POST', ws, '/contacts/c1/complete');
    // A minimum of 2 on a: both hold it; the score is the agents' levels, 3 against 4 again.
    await ok('POST', ws, '/contacts', { id: 'c2', skills: [{ name: 'a', minLevel: 2 }, 'b'] });
    expect(await decided(ws, 'c2')).toBe('deep');
    await audited(ws);
  });

  it('a skill given plain and with a level counts at its highest', async () => {
    const ws = WS.twice;
    await ok('PUT', ws, '/settings', { agentSelection: 'most-skilled' });
    await agent(ws, 'old', [{ name: 'a', level: 2 }]);
    const twice = await agent(ws, 'twice', ['a', { name: 'a', level: 3 }]);
    expect(twice.skills).toEqual([{ name: 'a', level: 3 }]);
    await availableInOrder(ws, ['old', 'twice']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('twice');
    // A requirement given plain and with a minimum keeps the minimum: old (level 2) may not take it.
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a', { name: 'a', minLevel: 3 }] });
    await sleep(200);
    expect((await ok('GET', ws, '/contacts/c2')).state).toBe('queued');
    await audited(ws);
  });
});

describe('the selections\' last tie, by id in byte order (ROUTING.md: "then the longest available"; "ties by agent id in byte order")', () => {
  it('most-skilled: equal scores and sinces, "B" before "a"', async () => {
    const ws = WS.tieSkilled;
    await ok('PUT', ws, '/settings', { agentSelection: 'most-skilled' });
    await agent(ws, 'a', [{ name: 's', level: 3 }, 't']);
    await agent(ws, 'B', ['s', { name: 't', level: 3 }]);
    await availableTied(ws, 'a', 'B');
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s', 't'] });
    expect(await decided(ws, 'c1')).toBe('B');
    await audited(ws);
  });

  it('least-occupied: equal shares and sinces, "B" before "a"', async () => {
    const ws = WS.tieOccupied;
    await ok('PUT', ws, '/settings', { agentSelection: 'least-occupied' });
    await agent(ws, 'a', ['s'], { capacity: 2 });
    await agent(ws, 'B', ['s'], { capacity: 4 });
    await availableTied(ws, 'a', 'B');
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    expect(await decided(ws, 'c1')).toBe('B');
    // Shares 0 and 1/4: a; then 1/2 and 1/4: B; then both 1/2, their sinces still tied: B.
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'] });
    expect(await decided(ws, 'c2')).toBe('a');
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['s'] });
    expect(await decided(ws, 'c3')).toBe('B');
    expect(await sinceOf(ws, 'a')).toBe(await sinceOf(ws, 'B'));
    await ok('POST', ws, '/contacts', { id: 'c4', skills: ['s'] });
    expect(await decided(ws, 'c4')).toBe('B');
    await audited(ws);
  });
});

describe('an agent\'s skills changed while contacts wait (API.md: "availability sets follow at once")', () => {
  it('a skill gained: the waiting contact goes to that agent at once', async () => {
    const ws = WS.gained;
    await agent(ws, 'x', ['a']);
    await agent(ws, 'y', ['a']);
    await availableInOrder(ws, ['x', 'y']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['b'] });
    await sleep(100);
    expect((await ok('GET', ws, '/contacts/c1')).state).toBe('queued');
    await ok('PATCH', ws, '/agents/y', { skills: ['a', 'b'] });
    expect(await decided(ws, 'c1')).toBe('y');
    await audited(ws);
  });

  it('a skill lost while busy: the agent freed takes no contact needing it', async () => {
    const ws = WS.lost;
    await agent(ws, 'x', ['a', 'b']);
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['b'] });
    await ok('PATCH', ws, '/agents/x', { skills: ['a'] });
    await ok('POST', ws, '/contacts/c1/complete');
    await sleep(200);
    expect((await ok('GET', ws, '/contacts/c2')).state).toBe('queued');
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['a'] });
    expect(await decided(ws, 'c3')).toBe('x');
    await audited(ws);
  });
});

describe('a contact turned down by every agent holding its skills (ROUTING.md, "Contacts some agents turned down")', () => {
  it('waits, and goes to an agent given its skill; one queued behind it goes to the agent who turned it down', async () => {
    const ws = WS.blockedGained;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000 });
    await agent(ws, 'x', ['a']);
    await agent(ws, 'y', ['b']);
    await availableInOrder(ws, ['y', 'x']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    await ok('POST', ws, '/contacts/c1/reject', { agentId: 'x' });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('x');
    expect((await ok('GET', ws, '/contacts/c1')).state).toBe('queued');
    await ok('PATCH', ws, '/agents/y', { skills: ['a', 'b'] });
    expect(await decided(ws, 'c1')).toBe('y');
    await audited(ws);
  });
});

describe('preferred agents (API.md, "Preferred agents")', () => {
  it('the only preferred agent turned it down: it waits out the preference, then goes to another', async () => {
    const ws = WS.preferredReject;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000 });
    await agent(ws, 'p', ['a']);
    await agent(ws, 'o', ['a']);
    await availableInOrder(ws, ['o', 'p']);
    await ok('POST', ws, '/contacts', {
      id: 'c1',
      skills: ['a'],
      preferredAgents: ['p'],
      preferredForMs: 600,
    });
    expect(await decided(ws, 'c1')).toBe('p');
    await ok('POST', ws, '/contacts/c1/reject', { agentId: 'p' });
    await sleep(150);
    expect(await ok('GET', ws, '/contacts/c1')).toMatchObject({ state: 'queued', excludedAgents: ['p'] });
    // A contact behind it is not held back.
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('o');
    await ok('POST', ws, '/contacts/c2/accept', { agentId: 'o' });
    await ok('POST', ws, '/contacts/c2/complete');
    const c1 = await until(ws, '/contacts/c1', (c) => c.state === 'offered', 3000);
    expect(c1.agentId).toBe('o');
    await audited(ws);
  });
});

describe('a transfer ends the preference (API.md, "Preferred agents")', () => {
  it('the transferred contact goes to any eligible agent, the longest available first', async () => {
    const ws = WS.transferPreferred;
    await agent(ws, 'o', ['a', 'b']);
    await agent(ws, 'p', ['a', 'b']);
    await ok('POST', ws, '/agents/o/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'x', skills: ['a'] });
    expect(await decided(ws, 'x')).toBe('o');
    await ok('POST', ws, '/agents/p/state', { state: 'available' });
    await ok('POST', ws, '/contacts', {
      id: 'c1',
      skills: ['a'],
      preferredAgents: ['p'],
      preferredForMs: 600_000,
    });
    expect(await decided(ws, 'c1')).toBe('p');
    await ok('POST', ws, '/contacts/x/complete');
    await sleep(3);
    await ok('POST', ws, '/contacts/c1/transfer', { skills: ['b'] });
    const c1 = await until(ws, '/contacts/c1', (c) => c.state === 'assigned' && c.agentId !== 'p');
    expect(c1.agentId).toBe('o');
    expect(c1.preferredAgents).toBeUndefined();
    await audited(ws);
  });
});

describe('offers and capacity (ROUTING.md, rule 1: "an offer ... takes one unit of the agent\'s capacity like an assignment")', () => {
  it('an agent of capacity 2 holding an offer (reserved) is offered a second contact', async () => {
    const ws = WS.reservedRoom;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000 });
    await agent(ws, 'x', ['a'], { capacity: 2 });
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    expect((await ok('GET', ws, '/agents/x')).state).toBe('reserved');
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('x');
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['a'] });
    await sleep(150);
    expect((await ok('GET', ws, '/contacts/c3')).state).toBe('queued');
    await audited(ws);
  });

  it('capacity 1, an offer expired with missedOfferPresence available: able again, so a new since', async () => {
    const ws = WS.expiredFull;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 200, missedOfferPresence: 'available' });
    await agent(ws, 'x', ['a']);
    await agent(ws, 'y', ['a']);
    await agent(ws, 'z', ['a']);
    await availableInOrder(ws, ['x', 'y', 'z']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    const c1 = await until(ws, '/contacts/c1', (c) => c.agentId === 'y', 3000);
    expect(c1.excludedAgents).toEqual(['x']);
    expect((await ok('GET', ws, '/agents/x')).presence).toBe('available');
    expect(Date.parse(String(await sinceOf(ws, 'x')))).toBeGreaterThan(
      Date.parse(String(await sinceOf(ws, 'z'))),
    );
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('z');
    await audited(ws);
  });

  it('capacity 1, an offer rejected: able again, so a new since', async () => {
    const ws = WS.rejectedFull;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000 });
    await agent(ws, 'x', ['a']);
    await agent(ws, 'y', ['a']);
    await agent(ws, 'z', ['a']);
    await availableInOrder(ws, ['x', 'y', 'z']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    await ok('POST', ws, '/contacts/c1/reject', { agentId: 'x' });
    expect((await until(ws, '/contacts/c1', (c) => c.agentId === 'y')).excludedAgents).toEqual(['x']);
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('z');
    await audited(ws);
  });

  it('capacity 2, an offer rejected: still able all along, so its since is kept', async () => {
    const ws = WS.rejectedRoom;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000 });
    await agent(ws, 'x', ['a'], { capacity: 2 });
    await agent(ws, 'y', ['a']);
    await agent(ws, 'z', ['a']);
    await availableInOrder(ws, ['x', 'y', 'z']);
    const before = await sinceOf(ws, 'x');
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    await ok('POST', ws, '/contacts/c1/reject', { agentId: 'x' });
    expect((await until(ws, '/contacts/c1', (c) => c.agentId === 'y')).excludedAgents).toEqual(['x']);
    expect(await sinceOf(ws, 'x')).toBe(before);
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect(await decided(ws, 'c2')).toBe('x');
    await audited(ws);
  });
});

describe('least-occupied after a rejection (API.md, "Routing policy"; "Offers")', () => {
  it('the contact goes to the next least occupied agent, not the longest available one', async () => {
    const ws = WS.occupiedRejected;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000, agentSelection: 'least-occupied' });
    await agent(ws, 'y', ['a'], { capacity: 2 });
    await agent(ws, 'z', ['a'], { capacity: 4 });
    await agent(ws, 'x', ['a'], { capacity: 2 });
    await ok('POST', ws, '/agents/y/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'cy', skills: ['a'] });
    expect(await decided(ws, 'cy')).toBe('y');
    await ok('POST', ws, '/contacts/cy/accept', { agentId: 'y' });
    await ok('POST', ws, '/agents/z/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'cz', skills: ['a'] });
    expect(await decided(ws, 'cz')).toBe('z');
    await ok('POST', ws, '/contacts/cz/accept', { agentId: 'z' });
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    // Shares: x 0, z 1/4, y 1/2; y is the longest available.
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    await ok('POST', ws, '/contacts/c1/reject', { agentId: 'x' });
    expect((await until(ws, '/contacts/c1', (c) => c.agentId !== 'x' && c.state === 'offered')).agentId).toBe(
      'z',
    );
    await audited(ws);
  });
});

describe('queuePosition (API.md, "Queue position and estimated wait")', () => {
  it('a contact back from a rejection stands ahead of one queued after it', async () => {
    const ws = WS.positionRejected;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 30_000 });
    await agent(ws, 'x', ['a']);
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    expect(await decided(ws, 'c1')).toBe('x');
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a'] });
    expect((await ok('GET', ws, '/contacts/c2')).queuePosition).toBe(0);
    await ok('POST', ws, '/contacts/c1/reject', { agentId: 'x' });
    // x takes c2 (c1 excluded it); c3 then waits behind c1.
    expect(await decided(ws, 'c2')).toBe('x');
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['a'] });
    expect((await ok('GET', ws, '/contacts/c1')).queuePosition).toBe(0);
    expect((await ok('GET', ws, '/contacts/c3')).queuePosition).toBe(1);
    await audited(ws);
  });
});

describe('channels (ROUTING.md: "the rule orders them together only through priority and arrival")', () => {
  it('an any-channel agent takes the higher priority first, then the earlier arrival, whatever the channel', async () => {
    const ws = WS.channelsOrder;
    await ok('PUT', ws, '/settings', { channels: ['chat', 'email', 'voice'] });
    await agent(ws, 'x', ['a']);
    await ok('POST', ws, '/contacts', { id: 'chat1', skills: ['a'], channel: 'chat' });
    await ok('POST', ws, '/contacts', { id: 'email1', skills: ['a'], channel: 'email' });
    await ok('POST', ws, '/contacts', { id: 'voice9', skills: ['a'], priority: 9 });
    await ok('POST', ws, '/contacts', { id: 'chat2', skills: ['a'], channel: 'chat' });
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    const order: string[] = [];
    for (const id of ['voice9', 'chat1', 'email1', 'chat2']) {
      const c = await until(ws, `/contacts/${id}`, (v) => v.state === 'assigned');
      order.push(id);
      await ok('POST', ws, `/contacts/${c.id}/complete`);
    }
    const { events } = await ok('GET', ws, '/events?limit=1000&type=AssignmentMade');
    expect((events as { data: { contactId: string } }[]).map((e) => e.data.contactId)).toEqual(order);
    await audited(ws);
  });
});

describe('proficiency at its bounds (API.md, "Words": proficiency; skills 1..64 characters, 1..32 per agent or contact)', () => {
  it('a minimum of 1 is a plain name: the same queue, any level, shown plain', async () => {
    const ws = WS.levelOne;
    const c1 = await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    const c2 = await ok('POST', ws, '/contacts', { id: 'c2', skills: [{ name: 'a', minLevel: 1 }] });
    expect(c1.skills).toEqual(['a']);
    expect(c2.skills).toEqual(['a']);
    expect((await ok('GET', ws, '/contacts/c2')).queuePosition).toBe(1);
    await agent(ws, 'x', [{ name: 'a', level: 1 }], { capacity: 2 });
    expect((await ok('GET', ws, '/agents/x')).skills).toEqual(['a']);
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    expect(await decided(ws, 'c1')).toBe('x');
    expect(await decided(ws, 'c2')).toBe('x');
    await audited(ws);
  });

  it('32 skills of 64 characters at level 5: a contact needing them all at 5 is served, most-skilled scoring 160', async () => {
    const ws = WS.widest;
    await ok('PUT', ws, '/settings', { agentSelection: 'most-skilled' });
    const names = Array.from({ length: 32 }, (_, i) => `${String(i).padStart(2, '0')}${'s'.repeat(62)}`);
    await agent(
      ws,
      'old',
      names.map((name) => ({ name, level: 4 })),
    );
    await agent(
      ws,
      'top',
      names.map((name) => ({ name, level: 5 })),
    );
    await availableInOrder(ws, ['old', 'top']);
    // Every name at 4 or above: both hold it; top scores 160 against 128.
    await ok('POST', ws, '/contacts', { id: 'c1', skills: names.map((name) => ({ name, minLevel: 4 })) });
    expect(await decided(ws, 'c1')).toBe('top');
    await ok('POST', ws, '/contacts/c1/complete');
    await ok('POST', ws, '/contacts', { id: 'c2', skills: names.map((name) => ({ name, minLevel: 5 })) });
    expect(await decided(ws, 'c2')).toBe('top');
    await audited(ws);
  });
});

describe('a multi-skill contact past the first 8 pools (ROUTING.md, "the first skill is tried for 8 pools, then the rarest skill ... is walked")', () => {
  it('the longest available of the agents holding every skill, among many pools holding only the first', async () => {
    const ws = WS.manyPools;
    const others = Array.from({ length: 12 }, (_, i) => `p${String(i).padStart(2, '0')}`);
    for (const id of others) await agent(ws, id, ['a', `x-${id}`]);
    await agent(ws, 'q1', ['a', 'b', 'y']);
    await agent(ws, 'q2', ['a', 'b']);
    await agent(ws, 'q3', ['b', 'c']);
    await availableInOrder(ws, ['q3', ...others, 'q1', 'q2']);
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a', 'b'] });
    expect(await decided(ws, 'c1')).toBe('q1');
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['a', 'b'] });
    expect(await decided(ws, 'c2')).toBe('q2');
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['a', 'b'] });
    await sleep(150);
    expect((await ok('GET', ws, '/contacts/c3')).state).toBe('queued');
    await audited(ws);
  });
});

describe('priority aging at its upper bound (API.md, "Routing policy": priorityWeightMs 1..3,600,000)', () => {
  it('an hour a point: a later priority-9 contact goes first, a later priority-1 one too', async () => {
    const ws = WS.maxWeight;
    await ok('PUT', ws, '/settings', { priorityWeightMs: 3_600_000 });
    await ok('POST', ws, '/contacts', { id: 'p0', skills: ['a'] });
    await sleep(5);
    await ok('POST', ws, '/contacts', { id: 'p1', skills: ['a'], priority: 1 });
    await ok('POST', ws, '/contacts', { id: 'p9', skills: ['a'], priority: 9 });
    expect((await ok('GET', ws, '/contacts/p0')).queuePosition).toBe(2);
    await agent(ws, 'x', ['a']);
    await ok('POST', ws, '/agents/x/state', { state: 'available' });
    for (const id of ['p9', 'p1', 'p0']) {
      expect(await decided(ws, id)).toBe('x');
      await ok('POST', ws, `/contacts/${id}/complete`);
    }
    await audited(ws);
  });
});
