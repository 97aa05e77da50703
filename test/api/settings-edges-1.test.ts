/**
 * Workspace settings (docs/API.md, `PUT /settings`, "Offers, wrap-up and maximum wait", "Routing
 * policy", "Channels") changed while work is in flight, and what PUT, GET, SettingsChanged and
 * refusals say: a change applies from its command on (offers, wrap-ups and contacts already running
 * keep the times they started with); PUT replaces the settings whole but for channels; a refusal
 * changes nothing. Each workspace ends with the auditor finding no violation.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi, type Json } from '../support/api.ts';
import { ruleScenarios } from '../support/rule-scenarios.ts';

const WS = {
  offerZero: 'se1-offer-zero',
  offerLonger: 'se1-offer-longer',
  wrap: 'se1-wrap',
  maxWait: 'se1-maxwait',
  channel: 'se1-channel',
  whole: 'se1-whole',
  refusal: 'se1-refusal',
  idem: 'se1-idem',
  pooled: 'se1-pooled',
  aging: 'se1-aging',
} as const;
const api = inProcessApi(Object.values(WS));
const { call, ok, until, problem } = api;
const { sleep, ofType, audited, agentWith } = ruleScenarios(api, { settleMs: 200 });

const commands = (ws: string) => api.running.redis.xlen(workspaceKeys(ws).commands);

describe.concurrent('in flight', () => {
  it('offerTimeoutMs to 0 while an offer rings: the offer keeps its expiry and ends by it; the contact then goes directly', async () => {
    const ws = WS.offerZero;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 600, missedOfferPresence: 'offline' });
    await agentWith(ws, 'a1');
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    const offered = await until(ws, '/contacts/c1', (c) => c.state === 'offered');
    await ok('PUT', ws, '/settings', {});
    expect(await ok('GET', ws, '/contacts/c1')).toMatchObject({
      state: 'offered',
      offerExpiresAt: offered.offerExpiresAt,
    });
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({ state: 'reserved' });
    await agentWith(ws, 'a2');
    // The missed offer's agent takes the presence in force when it expires (the default, away).
    await until(ws, '/contacts/c1', (c) => c.state === 'assigned' && c.agentId === 'a2');
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({ state: 'away' });
    expect(await ofType(ws, 'AssignmentExpired')).toEqual([
      expect.objectContaining({ contactId: 'c1', agentId: 'a1' }),
    ]);
    const made = await ofType(ws, 'AssignmentMade');
    expect(made.map((d) => [d.agentId, d.offer === undefined])).toEqual([
      ['a1', false],
      ['a2', true],
    ]);
    await audited(ws);
  });

  it('offerTimeoutMs raised while an offer rings: it keeps its expiry; the next offer gets the new one', async () => {
    const ws = WS.offerLonger;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 400 });
    await agentWith(ws, 'a1');
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    const offered = await until(ws, '/contacts/c1', (c) => c.state === 'offered');
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 60_000 });
    await until(ws, '/agents/a1', (a) => a.state === 'away');
    expect(Date.parse(String(offered.offerExpiresAt)) - Date.parse(String(offered.assignedAt))).toBe(400);
    await agentWith(ws, 'a2');
    const second = await until(ws, '/contacts/c1', (c) => c.state === 'offered' && c.agentId === 'a2');
    expect(Date.parse(String(second.offerExpiresAt)) - Date.parse(String(second.assignedAt))).toBe(60_000);
    await ok('POST', ws, '/contacts/c1/accept', { agentId: 'a2' });
    await audited(ws);
  });

  it('wrapUpMs changed while an agent wraps up: that wrap-up keeps its end; the next uses the new time', async () => {
    const ws = WS.wrap;
    await ok('PUT', ws, '/settings', { wrapUpMs: 900 });
    await agentWith(ws, 'a1');
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await until(ws, '/contacts/c1', (c) => c.state === 'assigned');
    await ok('POST', ws, '/contacts/c1/complete');
    const wrapping = await ok('GET', ws, '/agents/a1');
    expect(wrapping.state).toBe('wrapup');
    await ok('PUT', ws, '/settings', { wrapUpMs: 0 });
    expect((await ok('GET', ws, '/agents/a1')).wrapUpUntil).toBe(wrapping.wrapUpUntil);
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'] });
    await sleep(150);
    expect(await ok('GET', ws, '/contacts/c2')).toMatchObject({ state: 'queued' });
    await until(ws, '/contacts/c2', (c) => c.state === 'assigned');
    await ok('POST', ws, '/contacts/c2/complete');
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({ state: 'available' });
    await ok('PUT', ws, '/settings', { wrapUpMs: 86_400_000 });
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['s'] });
    await until(ws, '/contacts/c3', (c) => c.state === 'assigned');
    await ok('POST', ws, '/contacts/c3/complete');
    const long = await ok('GET', ws, '/agents/a1');
    expect(long.state).toBe('wrapup');
    await ok('PUT', ws, '/settings', { wrapUpMs: 100 });
    await sleep(300);
    expect(await ok('GET', ws, '/agents/a1')).toMatchObject({
      state: 'wrapup',
      wrapUpUntil: long.wrapUpUntil,
    });
    await ok('POST', ws, '/agents/a1/state', { state: 'available' });
    expect(await ofType(ws, 'WrapUpEnded')).toEqual([
      expect.objectContaining({ wrapUp: 1, early: false }),
      expect.objectContaining({ wrapUp: 2, early: true }),
    ]);
    await audited(ws);
  });

  it('maxWaitMs to null, or longer, while contacts wait: they keep the expiry they were queued with; a rejected offer keeps it too', async () => {
    const ws = WS.maxWait;
    // Long enough for the steps before the reject on a loaded machine (c1 must still wait then).
    await ok('PUT', ws, '/settings', { maxWaitMs: 3000, offerTimeoutMs: 60_000 });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['t'] });
    const c1 = await ok('GET', ws, '/contacts/c1');
    await ok('PUT', ws, '/settings', { maxWaitMs: null, offerTimeoutMs: 60_000 });
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['t'] });
    expect(await ok('GET', ws, '/contacts/c3')).not.toHaveProperty('expiresAt');
    await agentWith(ws, 'a1');
    await until(ws, '/contacts/c1', (c) => c.state === 'offered');
    await ok('POST', ws, '/contacts/c1/reject', { agentId: 'a1' });
    expect(await ok('GET', ws, '/contacts/c1')).toMatchObject({ state: 'queued', expiresAt: c1.expiresAt });
    await until(ws, '/contacts/c2', (c) => c.state === 'expired', 8000);
    await until(ws, '/contacts/c1', (c) => c.state === 'expired', 8000);
    await sleep(300);
    expect(await ok('GET', ws, '/contacts/c3')).toMatchObject({ state: 'queued' });
    expect((await ofType(ws, 'ContactExpired')).map((d) => d.contactId).sort()).toEqual(['c1', 'c2']);
    await audited(ws);
  });

  it('a channel added while agents have capacity per channel: only those naming it (or one number) take it', async () => {
    const ws = WS.channel;
    await agentWith(ws, 'perChannel', { capacity: { voice: 1 } });
    await ok('POST', ws, '/contacts', { id: 'v1', skills: ['s'] });
    await until(ws, '/contacts/v1', (c) => c.state === 'assigned');
    await ok('PUT', ws, '/settings', { channels: ['chat', 'voice'] });
    expect(await ok('GET', ws, '/agents/perChannel')).toMatchObject({
      state: 'busy',
      capacity: { voice: 1 },
    });
    await ok('POST', ws, '/contacts', { id: 'ch1', skills: ['s'], channel: 'chat' });
    await sleep(200);
    expect(await ok('GET', ws, '/contacts/ch1')).toMatchObject({ state: 'queued' });
    await agentWith(ws, 'anyChannel', { capacity: 2 });
    await until(ws, '/contacts/ch1', (c) => c.state === 'assigned' && c.agentId === 'anyChannel');
    await ok('PATCH', ws, '/agents/perChannel', { capacity: { voice: 1, chat: 1 } });
    await ok('POST', ws, '/contacts', { id: 'ch2', skills: ['s'], channel: 'chat' });
    await ok('POST', ws, '/contacts', { id: 'ch3', skills: ['s'], channel: 'chat' });
    await until(ws, '/contacts/ch3', (c) => c.state === 'assigned');
    const held = [
      (await ok('GET', ws, '/contacts/ch2')).agentId,
      (await ok('GET', ws, '/contacts/ch3')).agentId,
    ];
    expect(held.sort()).toEqual(['anyChannel', 'perChannel']);
    const stats = await ok('GET', ws, '/stats');
    expect(stats.agentsByState).toMatchObject({ busy: 2 });
    await audited(ws);
  });
});

describe.concurrent('the command', () => {
  it('PUT replaces the settings whole but channels; its answer, GET and SettingsChanged are one', async () => {
    const ws = WS.whole;
    const full = {
      offerTimeoutMs: 1000,
      wrapUpMs: 2000,
      missedOfferPresence: 'offline',
      maxWaitMs: 3000,
      channels: ['voice', 'chat', 'chat'],
      priorityWeightMs: 4000,
      agentSelection: 'most-skilled',
    };
    const first = await ok('PUT', ws, '/settings', full);
    const want = { ...full, channels: ['chat', 'voice'] };
    const { position, ...body } = first;
    expect(body).toEqual(want);
    expect(await ok('GET', ws, `/settings?minPosition=${position}`)).toEqual(want);
    const second = await ok('PUT', ws, '/settings', { wrapUpMs: 5 });
    const { position: _p, ...body2 } = second;
    const want2 = {
      offerTimeoutMs: 0,
      wrapUpMs: 5,
      missedOfferPresence: 'away',
      maxWaitMs: null,
      channels: ['chat', 'voice'],
    };
    expect(body2).toEqual(want2);
    expect(await ok('GET', ws, '/settings')).toEqual(want2);
    const explicitDefaults = await ok('PUT', ws, '/settings', {
      wrapUpMs: 5,
      priorityWeightMs: null,
      agentSelection: 'longest-available',
    });
    const { position: _q, ...body3 } = explicitDefaults;
    expect(body3).toEqual(want2);
    expect(await ofType(ws, 'SettingsChanged')).toEqual([want, want2, want2]);
    await audited(ws);
  });

  it('a refusal (400, 409, 422) changes nothing and appends no SettingsChanged; it names the field', async () => {
    const ws = WS.refusal;
    const set = {
      offerTimeoutMs: 0,
      wrapUpMs: 7,
      missedOfferPresence: 'away',
      maxWaitMs: null,
      channels: ['chat', 'voice'],
    };
    await ok('PUT', ws, '/settings', { wrapUpMs: 7, channels: ['chat', 'voice'] });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    const before = await commands(ws);
    for (const bad of [
      { wrapUpMs: -1 },
      { offerTimeoutMs: 3_600_001 },
      { missedOfferPresence: 'busy' },
      { maxWaitMs: 0 },
      { channels: [] },
      { priorityWeightMs: 0 },
      { agentSelection: 'random' },
      { unknown: 1 },
    ]) {
      const r = await call('PUT', `/v1/workspaces/${ws}/settings`, { wrapUpMs: 9, ...bad });
      expect(r.status, JSON.stringify(bad)).toBe(400);
      const paths = (r.body.errors as { path: string }[]).map((e) => e.path);
      expect(paths, JSON.stringify(r.body)).toEqual([Object.keys(bad)[0]]);
    }
    expect(await commands(ws)).toBe(before);
    const conflict = await problem(
      'PUT',
      ws,
      '/settings',
      { wrapUpMs: 9, channels: ['chat', 'voice', 'web'], priorityWeightMs: 10 },
      409,
      'settings-conflict',
    );
    expect((conflict.errors as { path: string }[]).map((e) => e.path)).toEqual(['priorityWeightMs']);
    const removed = await problem(
      'PUT',
      ws,
      '/settings',
      { wrapUpMs: 9, channels: ['voice'] },
      422,
      'channels-not-removable',
    );
    expect((removed.errors as { path: string }[]).map((e) => e.path)).toEqual(['channels']);
    expect(await ok('GET', ws, '/settings')).toEqual(set);
    expect(await ofType(ws, 'SettingsChanged')).toEqual([set]);
    // Still the refused channel is not declared.
    await problem('POST', ws, '/contacts', { skills: ['s'], channel: 'web' }, 422, 'channel-not-declared');
    await audited(ws);
  });

  it('a repeat with the same Idempotency-Key answers the first outcome and appends nothing, even after another change', async () => {
    const ws = WS.idem;
    const put = (payload: Json, key: string) =>
      api.running.api?.inject({
        method: 'PUT',
        url: `/v1/workspaces/${ws}/settings`,
        payload,
        headers: { 'idempotency-key': key },
      });
    const first = await put({ wrapUpMs: 10 }, 'k1');
    expect(first?.statusCode).toBe(200);
    await ok('PUT', ws, '/settings', { wrapUpMs: 20 });
    const before = await commands(ws);
    const again = await put({ wrapUpMs: 10 }, 'k1');
    expect(again?.statusCode).toBe(200);
    expect(again?.json()).toEqual(first?.json());
    expect(await commands(ws)).toBe(before);
    expect((await ok('GET', ws, '/settings')).wrapUpMs).toBe(20);
    // A refusal repeated is the same refusal.
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    const refused = await put({ priorityWeightMs: 5 }, 'k2');
    expect(refused?.statusCode).toBe(409);
    await ok('POST', ws, '/contacts/c1/abandon');
    const refusedAgain = await put({ priorityWeightMs: 5 }, 'k2');
    expect(refusedAgain?.statusCode).toBe(409);
    expect((await ok('GET', ws, '/settings')).priorityWeightMs).toBeUndefined();
    await audited(ws);
  });

  it('least-occupied: refused while an agent can take work, accepted once none can (wrap-up, busy, reserved, away)', async () => {
    const ws = WS.pooled;
    await ok('PUT', ws, '/settings', { wrapUpMs: 60_000, offerTimeoutMs: 60_000 });
    await agentWith(ws, 'wrap');
    await agentWith(ws, 'reserved', { skills: ['t'] });
    await agentWith(ws, 'room', { skills: ['u'], capacity: 2 });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await until(ws, '/contacts/c1', (c) => c.state === 'offered');
    await ok('POST', ws, '/contacts/c1/accept', { agentId: 'wrap' });
    await ok('POST', ws, '/contacts/c1/complete');
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['t'] });
    await until(ws, '/contacts/c2', (c) => c.state === 'offered');
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['u'] });
    await until(ws, '/contacts/c3', (c) => c.state === 'offered');
    // `room` holds an offer but has room for one more: it can take work.
    const body = { wrapUpMs: 60_000, offerTimeoutMs: 60_000, agentSelection: 'least-occupied' };
    const r = await problem('PUT', ws, '/settings', body, 409, 'settings-conflict');
    expect((r.errors as { path: string }[]).map((e) => e.path)).toEqual(['agentSelection']);
    await ok('POST', ws, '/contacts/c3/accept', { agentId: 'room' });
    await ok('POST', ws, '/contacts', { id: 'c4', skills: ['u'] });
    await until(ws, '/contacts/c4', (c) => c.state === 'offered');
    expect((await ok('GET', ws, '/agents/wrap')).state).toBe('wrapup');
    expect((await ok('GET', ws, '/agents/reserved')).state).toBe('reserved');
    await ok('PUT', ws, '/settings', body);
    await audited(ws);
  });

  it('priorityWeightMs set while a contact is offered (none queued): a rejected offer puts it back in the aged order', async () => {
    const ws = WS.aging;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 60_000 });
    await agentWith(ws, 'a1');
    await ok('POST', ws, '/contacts', { id: 'old', skills: ['s'], priority: 0 });
    await until(ws, '/contacts/old', (c) => c.state === 'offered');
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 60_000, priorityWeightMs: 60_000 });
    await ok('POST', ws, '/agents/a1/state', { state: 'away' });
    await ok('POST', ws, '/contacts', { id: 'new', skills: ['s'], priority: 1 });
    expect(await ok('GET', ws, '/contacts/new')).toMatchObject({ queuePosition: 0 });
    expect(await ok('GET', ws, '/contacts/old')).toMatchObject({ state: 'queued', queuePosition: 1 });
    await agentWith(ws, 'a2');
    await until(ws, '/contacts/new', (c) => c.state === 'offered' && c.agentId === 'a2');
    await audited(ws);
  });
});
