/**
 * Offers, wrap-up, maximum wait, transfer and capacity per channel together (docs/API.md,
 * "Channels", "Offers, wrap-up and maximum wait"): an agent of capacity `{"voice":1,"chat":2}`
 * holding a chat contact and a voice offer, then the offer ends (expiry, rejection, presence,
 * DELETE, maximum wait), the chat contact is transferred or completed into a wrap-up, or the
 * capacity is changed under it. Each time the documents and events read as the docs say, the room
 * given back is on the offer's channel (the next contact of that channel goes to the agent, or not,
 * as rule 1 says) and the auditor (`npm run audit`) finds no violation.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi, type Json } from '../support/api.ts';
import { ruleScenarios } from '../support/rule-scenarios.ts';

const WS = {
  expire: 'oe1-expire',
  expireStay: 'oe1-expire-stay',
  reject: 'oe1-reject',
  away: 'oe1-away',
  remove: 'oe1-remove',
  transfer: 'oe1-transfer',
  wrap: 'oe1-wrap',
  maxwait: 'oe1-maxwait',
  toNumber: 'oe1-to-number',
  dropVoice: 'oe1-drop-voice',
  fromNumber: 'oe1-from-number',
  settings: 'oe1-settings',
  twoExpireAway: 'oe1-two-away',
  twoExpireStay: 'oe1-two-stay',
  maxwaitTwo: 'oe1-maxwait-two',
  patchWrap: 'oe1-patch-wrap',
  transferWrap: 'oe1-transfer-wrap',
  occupied: 'oe1-least-occupied',
} as const;
const api = inProcessApi(Object.values(WS));
const { ok, until, problem } = api;
const { sleep, ofType, events, audited } = ruleScenarios(api, { settleMs: 200 });

/**
 * The agent a1, capacity {voice: 1, chat: 2}, holding chat c1 (accepted) and voice v1 (offered);
 * `settings` on top of channels chat and voice and a long offer timeout.
 */
async function holding(ws: string, settings: Json = {}, v1: Json = {}): Promise<Json> {
  await ok('PUT', ws, '/settings', { channels: ['chat', 'voice'], offerTimeoutMs: 60_000, ...settings });
  await ok('POST', ws, '/agents', { id: 'a1', skills: ['s'], capacity: { voice: 1, chat: 2 } });
  await ok('POST', ws, '/agents/a1/state', { state: 'available' });
  await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'], channel: 'chat' });
  await until(ws, '/contacts/c1', (c) => c.state === 'offered' && c.agentId === 'a1');
  await ok('POST', ws, '/contacts/c1/accept', { agentId: 'a1' });
  await ok('POST', ws, '/contacts', { id: 'v1', skills: ['s'], ...v1 });
  await until(ws, '/contacts/v1', (c) => c.state === 'offered' && c.agentId === 'a1');
  const a = await ok('GET', ws, '/agents/a1');
  expect(a).toMatchObject({ state: 'reserved', activeContacts: ['c1', 'v1'] });
  expect(Object.keys(a.availableSinceByChannel as Json)).toEqual(['chat']);
  return a;
}

const keys = (o: unknown) => Object.keys(o as Json).sort();

/**
 * Whether each contact's offer (`AssignmentMade`) comes after the agent's `WrapUpEnded` in the
 * log: none was routed to it while it wrapped up.
 */
async function offeredAfterWrapUp(ws: string, ids: string[]): Promise<boolean> {
  const log = await events(ws);
  const ended = log.findIndex((e) => e.type === 'WrapUpEnded');
  const offered = ids.map((id) =>
    log.findIndex((e) => e.type === 'AssignmentMade' && e.data.contactId === id),
  );
  expect(ended, 'WrapUpEnded').toBeGreaterThanOrEqual(0);
  expect(
    offered.every((i) => i >= 0),
    `${ids.join(', ')} offered`,
  ).toBe(true);
  return offered.every((i) => i > ended);
}
const state = async (ws: string, id: string) => (await ok('GET', ws, `/contacts/${id}`)).state;

describe.concurrent('a voice offer ends while a chat contact is held', () => {
  it('expires (missedOfferPresence away): the agent is away, keeps the chat contact; back, it takes the next voice', async () => {
    const ws = WS.expire;
    await holding(ws, { offerTimeoutMs: 1500 });
    await until(ws, '/contacts/v1', (c) => c.state === 'queued', 4000);
    const a = await ok('GET', ws, '/agents/a1');
    expect(a).toMatchObject({
      presence: 'away',
      state: 'away',
      activeContacts: ['c1'],
      availableSince: null,
    });
    expect(a.availableSinceByChannel).toBeUndefined();
    expect(await ok('GET', ws, '/contacts/v1')).toMatchObject({ state: 'queued', excludedAgents: ['a1'] });
    const [expired] = await ofType(ws, 'AssignmentExpired');
    expect(keys(expired)).toEqual(['agentId', 'contactId', 'expiredAt']);
    // `from`: the agent as the expiry left it (the chat contact in hand, room for one more).
    expect((await ofType(ws, 'AgentStateChanged')).at(-1)).toEqual({
      agentId: 'a1',
      from: 'available',
      to: 'away',
      presence: 'away',
      availableSince: null,
    });
    await ok('POST', ws, '/agents/a1/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'v2', skills: ['s'] });
    await until(ws, '/contacts/v2', (c) => c.state === 'offered' && c.agentId === 'a1');
    expect(await state(ws, 'v1')).toBe('queued');
    await ok('POST', ws, '/contacts/v2/accept', { agentId: 'a1' });
    await audited(ws);
  });

  it('expires (missedOfferPresence available): the voice room is back at once and the next voice is offered', async () => {
    const ws = WS.expireStay;
    await holding(ws, { offerTimeoutMs: 1500, missedOfferPresence: 'available' });
    await until(ws, '/contacts/v1', (c) => c.state === 'queued', 4000);
    const a = await ok('GET', ws, '/agents/a1');
    expect(a).toMatchObject({ presence: 'available', state: 'available', activeContacts: ['c1'] });
    expect(keys(a.availableSinceByChannel)).toEqual(['chat', 'voice']);
    expect(await ofType(ws, 'AgentStateChanged')).toHaveLength(1); // its first available only
    await ok('POST', ws, '/contacts', { id: 'v2', skills: ['s'] });
    await until(ws, '/contacts/v2', (c) => c.state === 'offered' && c.agentId === 'a1');
    await ok('POST', ws, '/contacts/v2/accept', { agentId: 'a1' });
    expect(await state(ws, 'v1')).toBe('queued');
    await audited(ws);
  });

  it('is rejected: voice room back, chat room as it was (one of two)', async () => {
    const ws = WS.reject;
    const before = await holding(ws);
    const chatSince = (before.availableSinceByChannel as Json).chat;
    await ok('POST', ws, '/contacts/v1/reject', { agentId: 'a1' });
    const a = await ok('GET', ws, '/agents/a1');
    expect(a).toMatchObject({ state: 'available', activeContacts: ['c1'] });
    expect((a.availableSinceByChannel as Json).chat).toBe(chatSince);
    const [rej] = await ofType(ws, 'AssignmentRejected');
    expect(rej).toEqual({
      contactId: 'v1',
      agentId: 'a1',
      rejectedAt: expect.any(String),
      reason: 'rejected',
    });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'], channel: 'chat' });
    await ok('POST', ws, '/contacts', { id: 'v2', skills: ['s'] });
    await until(ws, '/contacts/v2', (c) => c.state === 'offered' && c.agentId === 'a1');
    await until(ws, '/contacts/c2', (c) => c.state === 'offered' && c.agentId === 'a1');
    const full = await ok('GET', ws, '/agents/a1');
    expect(full).toMatchObject({ state: 'reserved', availableSince: null });
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['s'], channel: 'chat' });
    await sleep(200);
    expect(await state(ws, 'c3')).toBe('queued');
    await audited(ws);
  });

  it('is withdrawn by away: the chat contact stays; available again, both channels take work', async () => {
    const ws = WS.away;
    await holding(ws);
    const away = await ok('POST', ws, '/agents/a1/state', { state: 'away' });
    expect(away).toMatchObject({ state: 'away', activeContacts: ['c1'] });
    const [changed] = (await ofType(ws, 'AgentStateChanged')).slice(-1);
    expect(changed).toEqual({
      agentId: 'a1',
      from: 'reserved',
      to: 'away',
      presence: 'away',
      availableSince: null,
    });
    await ok('POST', ws, '/agents/a1/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'], channel: 'chat' });
    await ok('POST', ws, '/contacts', { id: 'v2', skills: ['s'] });
    await until(ws, '/contacts/v2', (c) => c.state === 'offered' && c.agentId === 'a1');
    await until(ws, '/contacts/c2', (c) => c.state === 'offered' && c.agentId === 'a1');
    expect(await state(ws, 'v1')).toBe('queued');
    await audited(ws);
  });

  it('DELETE: refused while the chat contact is held; with only offers on both channels, they are withdrawn', async () => {
    const ws = WS.remove;
    await holding(ws);
    await problem('DELETE', ws, '/agents/a1', undefined, 409, 'agent-busy');
    expect(await state(ws, 'v1')).toBe('offered');
    await ok('POST', ws, '/contacts/c1/complete');
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'], channel: 'chat' });
    await until(ws, '/contacts/c2', (c) => c.state === 'offered' && c.agentId === 'a1');
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({ activeContacts: ['v1', 'c2'] });
    await ok('DELETE', ws, '/agents/a1');
    const rejected = await ofType(ws, 'AssignmentRejected');
    expect(rejected.map((r) => [r.contactId, r.reason])).toEqual([
      ['v1', 'removed'],
      ['c2', 'removed'],
    ]);
    expect(await ok('GET', ws, '/contacts/c2')).toMatchObject({ state: 'queued', excludedAgents: ['a1'] });
    await audited(ws);
  });

  it('transfer of the chat contact: the chat room is back, the voice offer rings on; the chat contact may come back to it', async () => {
    const ws = WS.transfer;
    await holding(ws);
    await ok('POST', ws, '/contacts/c1/transfer', { skills: ['s'] });
    await until(ws, '/contacts/c1', (c) => c.state === 'offered' && c.agentId === 'a1');
    const a = await ok('GET', ws, '/agents/a1');
    expect(a).toMatchObject({ state: 'reserved', activeContacts: ['v1', 'c1'] });
    const [moved] = await ofType(ws, 'ContactTransferred');
    expect(keys(moved)).toEqual(['contactId', 'fromAgentId', 'priority', 'skills', 'transferredAt']);
    expect(await state(ws, 'v1')).toBe('offered');
    await ok('POST', ws, '/contacts/v1/accept', { agentId: 'a1' });
    await ok('POST', ws, '/contacts/c1/accept', { agentId: 'a1' });
    await ok('POST', ws, '/contacts', { id: 'v2', skills: ['s'] });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'], channel: 'chat' });
    await until(ws, '/contacts/c2', (c) => c.state === 'offered' && c.agentId === 'a1');
    await sleep(200);
    expect(await state(ws, 'v2')).toBe('queued');
    await audited(ws);
  });

  it('completion into a wrap-up: the voice offer rings on and may be accepted; the wrap-up ends and chat takes two again', async () => {
    const ws = WS.wrap;
    await holding(ws, { wrapUpMs: 2500 });
    await ok('POST', ws, '/contacts/c1/complete');
    const wrapping = await ok('GET', ws, '/agents/a1');
    expect(wrapping).toMatchObject({ state: 'wrapup', activeContacts: ['v1'], availableSince: null });
    const [started] = await ofType(ws, 'WrapUpStarted');
    expect(keys(started)).toEqual(['agentId', 'until', 'wrapUp']);
    await ok('POST', ws, '/contacts/v1/accept', { agentId: 'a1' });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'], channel: 'chat' });
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['s'], channel: 'chat' });
    await until(ws, '/contacts/c3', (c) => c.state === 'offered' && c.agentId === 'a1', 6000);
    expect(await state(ws, 'c2')).toBe('offered');
    const [ended] = await ofType(ws, 'WrapUpEnded');
    expect(ended).toEqual({ agentId: 'a1', wrapUp: 1, early: false, endedAt: expect.any(String) });
    // Not routed during the wrap-up, read from the log rather than at a moment of the wall clock
    // (a loaded machine can pass the 2.5 s between two requests).
    expect(await offeredAfterWrapUp(ws, ['c2', 'c3'])).toBe(true);
    await audited(ws);
  });

  it("the offered contact's maximum wait passes: ContactExpired names the agent, whose voice room is back", async () => {
    const ws = WS.maxwait;
    await holding(ws, {}, { maxWaitMs: 1500 });
    await until(ws, '/contacts/v1', (c) => c.state === 'expired', 4000);
    const v1 = await ok('GET', ws, '/contacts/v1');
    expect(v1.agentId).toBeUndefined();
    expect(v1.offerExpiresAt).toBeUndefined();
    const [gone] = await ofType(ws, 'ContactExpired');
    expect(gone).toEqual({
      contactId: 'v1',
      agentId: 'a1',
      expiredAt: expect.any(String),
      waitedMs: expect.any(Number),
    });
    const a = await ok('GET', ws, '/agents/a1');
    expect(a).toMatchObject({ state: 'available', presence: 'available', activeContacts: ['c1'] });
    expect(keys(a.availableSinceByChannel)).toEqual(['chat', 'voice']);
    await ok('POST', ws, '/contacts', { id: 'v2', skills: ['s'] });
    await until(ws, '/contacts/v2', (c) => c.state === 'offered' && c.agentId === 'a1');
    await audited(ws);
  });
});

describe.concurrent('capacity changed while a chat contact and a voice offer are held', () => {
  it('to a number (2): full; the rejected offer gives one unit back, taken by either channel', async () => {
    const ws = WS.toNumber;
    await holding(ws);
    const patched = await ok('PATCH', ws, '/agents/a1', { capacity: 2 });
    expect(patched).toMatchObject({ capacity: 2, state: 'reserved', availableSince: null });
    expect(patched.availableSinceByChannel).toBeUndefined();
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'], channel: 'chat' });
    await sleep(200);
    expect(await state(ws, 'c2')).toBe('queued');
    await ok('POST', ws, '/contacts/v1/reject', { agentId: 'a1' });
    await until(ws, '/contacts/c2', (c) => c.state === 'offered' && c.agentId === 'a1');
    // Back to per channel: the held contacts count on their channels (2 chat: full there).
    const back = await ok('PATCH', ws, '/agents/a1', { capacity: { voice: 1, chat: 2 } });
    expect(keys(back.availableSinceByChannel)).toEqual(['voice']);
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['s'], channel: 'chat' });
    await ok('POST', ws, '/contacts', { id: 'v2', skills: ['s'] });
    await until(ws, '/contacts/v2', (c) => c.state === 'offered' && c.agentId === 'a1');
    await sleep(200);
    expect(await state(ws, 'c3')).toBe('queued');
    await audited(ws);
  });

  it('per channel dropping voice while the voice offer rings: kept; rejected, no voice room comes back', async () => {
    const ws = WS.dropVoice;
    await holding(ws);
    const patched = await ok('PATCH', ws, '/agents/a1', { capacity: { chat: 2 } });
    expect(patched).toMatchObject({ state: 'reserved', activeContacts: ['c1', 'v1'] });
    expect(keys(patched.availableSinceByChannel)).toEqual(['chat']);
    await ok('POST', ws, '/contacts/v1/reject', { agentId: 'a1' });
    const a = await ok('GET', ws, '/agents/a1');
    expect(a).toMatchObject({ state: 'available', activeContacts: ['c1'] });
    expect(keys(a.availableSinceByChannel)).toEqual(['chat']);
    await ok('POST', ws, '/contacts', { id: 'v2', skills: ['s'] });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'], channel: 'chat' });
    await until(ws, '/contacts/c2', (c) => c.state === 'offered' && c.agentId === 'a1');
    await sleep(200);
    expect(await state(ws, 'v2')).toBe('queued');
    // Voice given again: room for one, taken by v2 (v1 never comes back to a1).
    await ok('PATCH', ws, '/agents/a1', { capacity: { chat: 2, voice: 1 } });
    await until(ws, '/contacts/v2', (c) => c.state === 'offered' && c.agentId === 'a1');
    await audited(ws);
  });

  it('from a number to per channel while holding an offer on each channel: each counts on its own', async () => {
    const ws = WS.fromNumber;
    await ok('PUT', ws, '/settings', { channels: ['chat', 'voice'], offerTimeoutMs: 60_000 });
    await ok('POST', ws, '/agents', { id: 'a1', skills: ['s'], capacity: 3 });
    await ok('POST', ws, '/agents/a1/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'v1', skills: ['s'] });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'], channel: 'chat' });
    await until(ws, '/contacts/c1', (c) => c.state === 'offered');
    await until(ws, '/contacts/v1', (c) => c.state === 'offered');
    const patched = await ok('PATCH', ws, '/agents/a1', { capacity: { voice: 1, chat: 2 } });
    expect(keys(patched.availableSinceByChannel)).toEqual(['chat']);
    await ok('POST', ws, '/contacts/c1/reject', { agentId: 'a1' });
    await ok('POST', ws, '/contacts/v1/accept', { agentId: 'a1' });
    await ok('POST', ws, '/contacts', { id: 'v2', skills: ['s'] });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'], channel: 'chat' });
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['s'], channel: 'chat' });
    await until(ws, '/contacts/c3', (c) => c.state === 'offered' && c.agentId === 'a1');
    await until(ws, '/contacts/c2', (c) => c.state === 'offered' && c.agentId === 'a1');
    await sleep(200);
    expect(await state(ws, 'v2')).toBe('queued');
    expect(await state(ws, 'c1')).toBe('queued');
    await audited(ws);
  });
});

describe.concurrent('settings changed mid-way', () => {
  it('offerTimeoutMs and wrapUpMs changed while an offer rings and a wrap-up runs: each keeps its time', async () => {
    const ws = WS.settings;
    await holding(ws, { offerTimeoutMs: 2500, wrapUpMs: 2500, missedOfferPresence: 'available' });
    await ok('POST', ws, '/contacts/c1/complete');
    const v1 = await ok('GET', ws, '/contacts/v1');
    const wrap = await ok('GET', ws, '/agents/a1');
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 0, wrapUpMs: 0, missedOfferPresence: 'away' });
    await sleep(300);
    expect(await ok('GET', ws, '/contacts/v1')).toMatchObject({
      state: 'offered',
      offerExpiresAt: v1.offerExpiresAt,
    });
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({
      state: 'wrapup',
      wrapUpUntil: wrap.wrapUpUntil,
    });
    await until(ws, '/contacts/v1', (c) => c.state === 'queued', 5000);
    // The expiry applies the settings in force when it is applied: away now.
    await until(ws, '/agents/a1', (a) => a.presence === 'away', 5000);
    await ok('POST', ws, '/agents/a1/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'v2', skills: ['s'] });
    // Offers off now: assigned at once.
    await until(ws, '/contacts/v2', (c) => c.state === 'assigned' && c.agentId === 'a1');
    await audited(ws);
  });
});

describe.concurrent('an offer on each channel', () => {
  /** a1 {voice: 1, chat: 2} holding a chat offer c1 and a voice offer v1, both ringing. */
  async function twoOffers(ws: string, settings: Json, v1: Json = {}): Promise<void> {
    await ok('PUT', ws, '/settings', { channels: ['chat', 'voice'], ...settings });
    await ok('POST', ws, '/agents', { id: 'a1', skills: ['s'], capacity: { voice: 1, chat: 2 } });
    await ok('POST', ws, '/agents/a1/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'], channel: 'chat' });
    await ok('POST', ws, '/contacts', { id: 'v1', skills: ['s'], ...v1 });
    await until(ws, '/contacts/c1', (c) => c.state === 'offered' && c.agentId === 'a1');
    await until(ws, '/contacts/v1', (c) => c.state === 'offered' && c.agentId === 'a1');
  }

  it('both ring out (away): the first expiry withdraws the other offer (presence); the second timer changes nothing', async () => {
    const ws = WS.twoExpireAway;
    await twoOffers(ws, { offerTimeoutMs: 1200 });
    await until(ws, '/agents/a1', (a) => a.presence === 'away', 4000);
    await sleep(400);
    const a = await ok('GET', ws, '/agents/a1');
    expect(a).toMatchObject({ state: 'away', activeContacts: [], availableSince: null });
    const expired = await ofType(ws, 'AssignmentExpired');
    const rejected = await ofType(ws, 'AssignmentRejected');
    expect(expired).toHaveLength(1);
    expect(rejected).toEqual([expect.objectContaining({ agentId: 'a1', reason: 'presence' })]);
    expect(new Set([expired[0]!.contactId, rejected[0]!.contactId])).toEqual(new Set(['c1', 'v1']));
    for (const id of ['c1', 'v1'])
      expect(await ok('GET', ws, `/contacts/${id}`)).toMatchObject({
        state: 'queued',
        excludedAgents: ['a1'],
      });
    await audited(ws);
  });

  it('both ring out (available): two expiries, the agent free on both channels for the next contacts', async () => {
    const ws = WS.twoExpireStay;
    await twoOffers(ws, { offerTimeoutMs: 1200, missedOfferPresence: 'available' });
    await until(ws, '/agents/a1', (a) => (a.activeContacts as string[]).length === 0, 4000);
    expect((await ofType(ws, 'AssignmentExpired')).map((e) => e.contactId).sort()).toEqual(['c1', 'v1']);
    const a = await ok('GET', ws, '/agents/a1');
    expect(a).toMatchObject({ state: 'available', presence: 'available' });
    expect(keys(a.availableSinceByChannel)).toEqual(['chat', 'voice']);
    // The next offers ring long enough to be accepted on a loaded machine (the 1.2 s was for the
    // expiries above; a changed timeout applies to offers made after it).
    await ok('PUT', ws, '/settings', { channels: ['chat', 'voice'], offerTimeoutMs: 60_000 });
    await ok('POST', ws, '/contacts', { id: 'v2', skills: ['s'] });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'], channel: 'chat' });
    await until(ws, '/contacts/v2', (c) => c.state === 'offered' && c.agentId === 'a1');
    await until(ws, '/contacts/c2', (c) => c.state === 'offered' && c.agentId === 'a1');
    await ok('POST', ws, '/contacts/v2/accept', { agentId: 'a1' });
    await ok('POST', ws, '/contacts/c2/accept', { agentId: 'a1' });
    await audited(ws);
  });

  it("the voice contact's maximum wait passes while both ring: the chat offer stays, voice room is back", async () => {
    const ws = WS.maxwaitTwo;
    await twoOffers(ws, { offerTimeoutMs: 60_000 }, { maxWaitMs: 1200 });
    await until(ws, '/contacts/v1', (c) => c.state === 'expired', 4000);
    const a = await ok('GET', ws, '/agents/a1');
    expect(a).toMatchObject({ state: 'reserved', activeContacts: ['c1'] });
    expect(keys(a.availableSinceByChannel)).toEqual(['chat', 'voice']);
    await ok('POST', ws, '/contacts', { id: 'v2', skills: ['s'] });
    await until(ws, '/contacts/v2', (c) => c.state === 'offered' && c.agentId === 'a1');
    await ok('POST', ws, '/contacts/c1/accept', { agentId: 'a1' });
    await audited(ws);
  });

  it('PATCH to per channel during a wrap-up with an offer ringing: out of routing until the wrap-up ends, then as the capacity says', async () => {
    const ws = WS.patchWrap;
    await twoOffers(ws, { offerTimeoutMs: 60_000, wrapUpMs: 2500 });
    await ok('POST', ws, '/contacts/c1/accept', { agentId: 'a1' });
    await ok('POST', ws, '/contacts/c1/complete');
    const patched = await ok('PATCH', ws, '/agents/a1', { capacity: { voice: 2, chat: 1 } });
    expect(patched).toMatchObject({ state: 'wrapup', activeContacts: ['v1'], availableSince: null });
    await ok('POST', ws, '/contacts', { id: 'v2', skills: ['s'] });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'], channel: 'chat' });
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['s'], channel: 'chat' });
    await until(ws, '/contacts/v2', (c) => c.state === 'offered' && c.agentId === 'a1', 6000);
    await until(ws, '/contacts/c2', (c) => c.state === 'offered' && c.agentId === 'a1');
    expect(await offeredAfterWrapUp(ws, ['v2', 'c2'])).toBe(true);
    await sleep(200);
    expect(await state(ws, 'c3')).toBe('queued');
    await audited(ws);
  });

  it('a transfer during a wrap-up replaces it; the voice offer, accepted meanwhile, stays', async () => {
    const ws = WS.transferWrap;
    await twoOffers(ws, { offerTimeoutMs: 60_000, wrapUpMs: 3000 });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'], channel: 'chat' });
    await until(ws, '/contacts/c2', (c) => c.state === 'offered' && c.agentId === 'a1');
    await ok('POST', ws, '/contacts/c1/accept', { agentId: 'a1' });
    await ok('POST', ws, '/contacts/c2/accept', { agentId: 'a1' });
    await ok('POST', ws, '/contacts/c1/complete');
    await sleep(500);
    await ok('POST', ws, '/contacts/c2/transfer', { skills: ['t'] });
    const [, second] = await ofType(ws, 'WrapUpStarted');
    expect(second).toMatchObject({ agentId: 'a1', wrapUp: 2 });
    await ok('POST', ws, '/contacts/v1/accept', { agentId: 'a1' });
    const a = await ok('GET', ws, '/agents/a1');
    expect(a).toMatchObject({ state: 'wrapup', activeContacts: ['v1'], wrapUpUntil: second!.until });
    await until(ws, '/agents/a1', (x) => x.state === 'available', 6000);
    const ended = await ofType(ws, 'WrapUpEnded');
    expect(ended).toEqual([expect.objectContaining({ wrapUp: 2, early: false })]);
    expect(keys((await ok('GET', ws, '/agents/a1')).availableSinceByChannel)).toEqual(['chat']);
    await audited(ws);
  });
});

describe('least-occupied', () => {
  it('the share counts the offer on the other channel, gives it back when rejected, and follows a PATCH to a number', async () => {
    const ws = WS.occupied;
    await ok('PUT', ws, '/settings', {
      channels: ['chat', 'voice'],
      offerTimeoutMs: 60_000,
      agentSelection: 'least-occupied',
    });
    await ok('POST', ws, '/agents', { id: 'a1', skills: ['s'], capacity: { voice: 1, chat: 2 } });
    await ok('POST', ws, '/agents', { id: 'a2', skills: ['s'], capacity: { chat: 3 } });
    await ok('POST', ws, '/agents/a1/state', { state: 'available' });
    await sleep(5);
    await ok('POST', ws, '/agents/a2/state', { state: 'available' });
    const served = async (id: string, channel: string, agentId: string) => {
      await ok('POST', ws, '/contacts', { id, skills: ['s'], channel });
      await until(ws, `/contacts/${id}`, (c) => c.state === 'offered');
      expect((await ok('GET', ws, `/contacts/${id}`)).agentId, id).toBe(agentId);
      if (channel === 'chat') await ok('POST', ws, `/contacts/${id}/accept`, { agentId });
    };
    await served('c1', 'chat', 'a1'); // both empty: a1 available first
    await served('v1', 'voice', 'a1'); // a1: 2 of 3
    await served('c2', 'chat', 'a2'); // a2: 0 of 3
    await served('c3', 'chat', 'a2'); // a2: 1 of 3
    await ok('POST', ws, '/contacts/v1/reject', { agentId: 'a1' }); // a1: 1 of 3
    await served('c4', 'chat', 'a1'); // a1 1/3 before a2 2/3
    await ok('PATCH', ws, '/agents/a1', { capacity: 9 }); // a1: 2 of 9
    await served('c5', 'chat', 'a1');
    expect(await state(ws, 'v1')).toBe('queued');
    await audited(ws);
  });
});
