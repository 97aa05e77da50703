/**
 * The routing commands against docs/API.md, edge by edge, in process against a real Redis with the
 * dispatcher's clock running: transfers (`ContactTransferred`), routing steps (`ContactStepped`),
 * preferred agents (`PreferenceEnded`), maximum wait (`ContactExpired`) and abandon
 * (`ContactAbandoned`): bad input is a 400 naming the field and appends nothing, state conflicts
 * are documented 409s, the facts carry the documented fields, and order within a priority holds.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi, type Json } from '../support/api.ts';

const WS = {
  input: 'rce-input',
  conflicts: 'rce-conflicts',
  transfer: 'rce-transfer',
  step: 'rce-step',
  prefer: 'rce-prefer',
  expire: 'rce-expire',
  offered: 'rce-offered',
  aging: 'rce-aging',
  excluded: 'rce-excluded',
} as const;
const api = inProcessApi(Object.values(WS));
const { call, ok, until, problem } = api;

const commands = (ws: string) => api.running.redis.xlen(workspaceKeys(ws).commands);
const events = async (ws: string, types: string) =>
  (await ok('GET', ws, `/events?limit=1000&type=${types}`)).events as {
    type: string;
    data: Json;
    at: string;
    position: string;
  }[];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('bad input: a 400 naming the field, nothing appended', () => {
  const cases: [string, string, unknown, string[]][] = [
    ['/contacts/c1/transfer', 'no body', undefined, ['(body)']],
    ['/contacts/c1/transfer', 'an array body', [{ skills: ['a'] }], ['(body)']],
    ['/contacts/c1/transfer', 'no skills', {}, ['skills']],
    ['/contacts/c1/transfer', 'empty skills', { skills: [] }, ['skills']],
    ['/contacts/c1/transfer', 'a bad skill', { skills: ['a b'] }, ['skills']],
    ['/contacts/c1/transfer', 'an agent level', { skills: [{ name: 'a', level: 2 }] }, ['skills']],
    ['/contacts/c1/transfer', 'priority 10', { skills: ['a'], priority: 10 }, ['priority']],
    ['/contacts/c1/transfer', 'priority -1', { skills: ['a'], priority: -1 }, ['priority']],
    ['/contacts/c1/transfer', 'priority 1.5', { skills: ['a'], priority: 1.5 }, ['priority']],
    ['/contacts/c1/transfer', 'priority null', { skills: ['a'], priority: null }, ['priority']],
    ['/contacts/c1/transfer', 'a channel', { skills: ['a'], channel: 'chat' }, ['channel']],
    ['/contacts/c1/transfer', 'steps', { skills: ['a'], steps: [{ afterMs: 10, skills: ['b'] }] }, ['steps']],
    [
      '/contacts/c1/transfer',
      'preferredAgents',
      { skills: ['a'], preferredAgents: ['x'] },
      ['preferredAgents'],
    ],
    ['/contacts/c1/transfer', 'maxWaitMs', { skills: ['a'], maxWaitMs: 1000 }, ['maxWaitMs']],
    ['/contacts/c1/transfer', 'a query', { skills: ['a'] }, ['priority']],
    ['/contacts/c1/abandon', 'a field', { reason: 'hung up' }, ['(body)']],
    ['/contacts', 'maxWaitMs 0', { skills: ['a'], maxWaitMs: 0 }, ['maxWaitMs']],
    ['/contacts', 'maxWaitMs null', { skills: ['a'], maxWaitMs: null }, ['maxWaitMs']],
    ['/contacts', 'maxWaitMs over 7 days', { skills: ['a'], maxWaitMs: 604_800_001 }, ['maxWaitMs']],
    ['/contacts', 'maxWaitMs as text', { skills: ['a'], maxWaitMs: '1000' }, ['maxWaitMs']],
    [
      '/contacts',
      'preferredForMs over 7 days',
      { skills: ['a'], preferredAgents: ['x'], preferredForMs: 604_800_001 },
      ['preferredForMs'],
    ],
    [
      '/contacts',
      'preferredForMs 1.5',
      { skills: ['a'], preferredAgents: ['x'], preferredForMs: 1.5 },
      ['preferredForMs'],
    ],
    [
      '/contacts',
      'preferredForMs null',
      { skills: ['a'], preferredAgents: ['x'], preferredForMs: null },
      ['preferredForMs'],
    ],
    ['/contacts', 'preferredAgents null', { skills: ['a'], preferredAgents: null }, ['preferredAgents']],
    [
      '/contacts',
      'a dot-segment preferred agent',
      { skills: ['a'], preferredAgents: ['..'] },
      ['preferredAgents'],
    ],
    [
      '/contacts',
      'preferredAgents as a string',
      { skills: ['a'], preferredAgents: 'x' },
      ['preferredAgents'],
    ],
    ['/contacts', 'steps null', { skills: ['a'], steps: null }, ['steps']],
    [
      '/contacts',
      'a step with priority null',
      { skills: ['a'], steps: [{ afterMs: 5, skills: ['b'], priority: null }] },
      ['steps'],
    ],
    ['/contacts/..%2Fx/abandon', 'a bad id', undefined, ['id']],
    ['/contacts/a%20b/transfer', 'a bad id', { skills: ['a'] }, ['id']],
  ];
  for (const [path, name, body, fields] of cases)
    it(`POST ${path} with ${name}`, async () => {
      const before = await commands(WS.input);
      const url = `/v1/workspaces/${WS.input}${path}${name === 'a query' ? '?priority=3' : ''}`;
      const r = await call('POST', url, body);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.type).toMatch(/^application\/problem\+json/);
      expect(r.body.type).toBe('/problems/invalid-request');
      expect((r.body.errors as { path: string }[]).map((e) => e.path)).toEqual(fields);
      expect(await commands(WS.input)).toBe(before);
    });
});

describe('state conflicts: documented problems, nothing changed', () => {
  it('transfer needs an assigned contact; abandon a queued or offered one', async () => {
    const ws = WS.conflicts;
    await problem('POST', ws, '/contacts/ghost/transfer', { skills: ['a'] }, 404, 'contact-not-found');
    await problem('POST', ws, '/contacts/ghost/abandon', undefined, 404, 'contact-not-found');
    await ok('POST', ws, '/contacts', { id: 'q', skills: ['Nobody'] });
    const queued = await problem(
      'POST',
      ws,
      '/contacts/q/transfer',
      { skills: ['a'] },
      409,
      'contact-not-assigned',
    );
    expect(queued.detail).toContain('queued');
    await ok('POST', ws, '/agents', { id: 'a1', skills: ['Sales'] });
    await ok('POST', ws, '/agents/a1/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 's', skills: ['Sales'] });
    await until(ws, '/contacts/s', (c) => c.state === 'assigned');
    await problem('POST', ws, '/contacts/s/abandon', undefined, 409, 'contact-not-queued');
    await ok('POST', ws, '/contacts/s/complete');
    await problem('POST', ws, '/contacts/s/transfer', { skills: ['a'] }, 409, 'contact-not-assigned');
    await problem('POST', ws, '/contacts/s/abandon', undefined, 409, 'contact-not-queued');
    await ok('POST', ws, '/contacts/q/abandon');
    await problem('POST', ws, '/contacts/q/abandon', undefined, 409, 'contact-not-queued');
    await problem('POST', ws, '/contacts/q/transfer', { skills: ['a'] }, 409, 'contact-not-assigned');
    expect(await ok('GET', ws, '/contacts/q')).toMatchObject({ state: 'abandoned', skills: ['Nobody'] });
  });

  it('PATCH /contacts/{id} is no route: a 404 problem', async () => {
    const before = await commands(WS.conflicts);
    for (const [method, path] of [
      ['PATCH', '/contacts/q'],
      ['PUT', '/contacts/q'],
      ['DELETE', '/contacts/q'],
      ['GET', '/contacts/q/transfer'],
      ['POST', '/contacts/q/step'],
      ['POST', '/contacts/q/expire'],
    ] as const) {
      const r = await call(
        method,
        `/v1/workspaces/${WS.conflicts}${path}`,
        method === 'GET' || method === 'DELETE' ? undefined : { priority: 3 },
      );
      expect(r.status, `${method} ${path} ${JSON.stringify(r.body)}`).toBe(404);
      expect(r.type).toMatch(/^application\/problem\+json/);
      expect(r.body.type).toBe('/problems/no-route');
    }
    expect(await commands(WS.conflicts)).toBe(before);
  });
});

describe('transfer', () => {
  it('back in the queue at its place among its priority, with the documented document and fact', async () => {
    const ws = WS.transfer;
    await ok('POST', ws, '/agents', { id: 'first', skills: ['Sales'] });
    await ok('POST', ws, '/agents/first/state', { state: 'available' });
    const t = await ok('POST', ws, '/contacts', {
      id: 't',
      skills: ['Sales'],
      maxWaitMs: 60_000,
      steps: [{ afterMs: 60_000, skills: ['Any'] }],
      preferredAgents: ['first'],
      preferredForMs: 60_000,
    });
    const taken = await until(ws, '/contacts/t', (c) => c.state === 'assigned');
    // Assigned, it keeps the time it would have expired at (the transfer below takes it away).
    expect(Date.parse(taken.expiresAt as string) - Date.parse(t.queuedAt as string)).toBe(60_000);
    // Two later contacts wait for Billing, one of a higher priority.
    await ok('POST', ws, '/contacts', { id: 'b1', skills: ['Billing'] });
    await ok('POST', ws, '/contacts', { id: 'b2', skills: ['Billing'] });
    await ok('POST', ws, '/contacts', { id: 'vip', skills: ['Billing'], priority: 5 });
    const moved = await ok('POST', ws, '/contacts/t/transfer', { skills: ['Billing'] });
    expect(moved).toMatchObject({
      id: 't',
      state: 'queued',
      skills: ['Billing'],
      priority: 0,
      channel: 'voice',
      queuedAt: t.queuedAt,
      maxWaitMs: 60_000,
    });
    for (const gone of [
      'agentId',
      'assignedAt',
      'waitedMs',
      'acceptedAt',
      'expiresAt',
      'steps',
      'step',
      'preferredAgents',
      'preferredUntil',
    ])
      expect(moved[gone], gone).toBeUndefined();
    // The vip first (priority), then t (it arrived before b1 and b2).
    const read = await ok('GET', ws, '/contacts/t');
    expect(read.queuePosition).toBe(1);
    expect((await ok('GET', ws, '/contacts/b1')).queuePosition).toBe(2);
    expect(await ok('GET', ws, '/stats')).toMatchObject({ transferred: 1, queued: 4 });
    const [fact] = await events(ws, 'ContactTransferred');
    expect(fact!.data).toEqual({
      contactId: 't',
      fromAgentId: 'first',
      skills: ['Billing'],
      priority: 0,
      transferredAt: fact!.at,
    });
    // A billing agent takes them in that order.
    await ok('POST', ws, '/agents', { id: 'biller', skills: ['Billing'], capacity: 4 });
    await ok('POST', ws, '/agents/biller/state', { state: 'available' });
    await until(ws, '/contacts/b2', (c) => c.state === 'assigned');
    const made = await events(ws, 'AssignmentMade');
    expect(made.map((e) => e.data.contactId)).toEqual(['t', 'vip', 't', 'b1', 'b2']);
    // In the intervals: the transfer under the queue it leaves, one first decision for t.
    const from = new Date(Date.now() - 3600_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const got = await ok('GET', ws, `/stats/intervals?from=${from}&to=${to}&source=log`);
    const queues = (got.intervals as { queues: Record<string, Json> }[]).flatMap((i) =>
      Object.entries(i.queues),
    );
    const sum = (q: string, k: string) =>
      queues.filter(([n]) => n === q).reduce((n, [, f]) => n + ((f[k] as number) ?? 0), 0);
    expect([sum('voice ["Sales"]', 'transferred'), sum('voice ["Billing"]', 'transferred')]).toEqual([1, 0]);
    expect([sum('voice ["Sales"]', 'assigned'), sum('voice ["Billing"]', 'assigned')]).toEqual([1, 3]);
  });

  it('a transfer with a priority: before the contacts of a lower priority, after the earlier ones of its own', async () => {
    const ws = WS.transfer;
    await ok('POST', ws, '/agents', { id: 'second', skills: ['Claims'] });
    await ok('POST', ws, '/agents/second/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'u', skills: ['Claims'] });
    await until(ws, '/contacts/u', (c) => c.state === 'assigned');
    await ok('POST', ws, '/contacts', { id: 'p3early', skills: ['Gold'], priority: 3 });
    await ok('POST', ws, '/contacts', { id: 'p0', skills: ['Gold'] });
    const moved = await ok('POST', ws, '/contacts/u/transfer', { skills: ['Gold'], priority: 3 });
    expect(moved.priority).toBe(3);
    // u arrived before p3early: FIFO within priority 3 by arrival puts it first.
    expect((await ok('GET', ws, '/contacts/u')).queuePosition).toBe(0);
    expect((await ok('GET', ws, '/contacts/p3early')).queuePosition).toBe(1);
    expect((await ok('GET', ws, '/contacts/p0')).queuePosition).toBe(2);
    const facts = await events(ws, 'ContactTransferred');
    expect(facts.at(-1)!.data).toMatchObject({ contactId: 'u', priority: 3, skills: ['Gold'] });
  });
});

describe('routing steps', () => {
  it('a stepped contact stands among its new queue by arrival; the fact as documented', async () => {
    const ws = WS.step;
    await ok('POST', ws, '/contacts', { id: 'early', skills: ['Billing'] });
    const s = await ok('POST', ws, '/contacts', {
      id: 's',
      skills: ['Billing', 'Spanish'],
      steps: [{ afterMs: 200, skills: ['Billing'], priority: 0 }],
    });
    await ok('POST', ws, '/contacts', { id: 'late', skills: ['Billing'] });
    const stepped = await until(ws, '/contacts/s', (c) => c.step === 1, 3000);
    expect(stepped).toMatchObject({
      skills: ['Billing'],
      queuedAt: s.queuedAt,
      state: 'queued',
      queuePosition: 1,
    });
    expect((await ok('GET', ws, '/contacts/late')).queuePosition).toBe(2);
    const [fact] = await events(ws, 'ContactStepped');
    expect(fact!.data).toEqual({
      contactId: 's',
      step: 1,
      skills: ['Billing'],
      priority: 0,
      steppedAt: fact!.at,
    });
    // Abandoned now, it counts in the queue it waited in last: its stepped requirements.
    await ok('POST', ws, '/contacts/s/abandon');
    const stats = await ok('GET', ws, '/stats');
    expect(stats).toMatchObject({ queued: 2, abandoned: 1 });
    expect((stats.queues as Json[]).map((q) => [q.skills, q.queued, q.abandons])).toEqual([
      ['Billing', 2, 1],
    ]);
  });
});

describe("routing steps: the dispatcher's order", () => {
  it('a step raising the priority: served before the earlier lower ones, and before the later ones of its new priority', async () => {
    const ws = WS.step;
    await ok('POST', ws, '/contacts', { id: 't0', skills: ['Tax'] });
    await ok('POST', ws, '/contacts', { id: 'o0', skills: ['Tax2'] });
    const ts = await ok('POST', ws, '/contacts', {
      id: 'ts',
      skills: ['TaxX'],
      steps: [{ afterMs: 200, skills: ['Tax'], priority: 2 }],
    });
    await ok('POST', ws, '/contacts', { id: 't2', skills: ['Tax'], priority: 2 });
    await ok('POST', ws, '/contacts', { id: 'o2', skills: ['Tax2'], priority: 2 });
    await until(ws, '/contacts/ts', (c) => c.step === 1, 3000);
    expect((await ok('GET', ws, '/contacts/ts')).queuePosition).toBe(0);
    expect((await ok('GET', ws, '/contacts/t2')).queuePosition).toBe(1);
    expect((await ok('GET', ws, '/contacts/t0')).queuePosition).toBe(2);
    // One agent for both queues takes them one at a time: priority, then arrival, across queues.
    await ok('POST', ws, '/agents', { id: 'tx', skills: ['Tax', 'Tax2'] });
    await ok('POST', ws, '/agents/tx/state', { state: 'available' });
    const order: string[] = [];
    for (let i = 0; i < 5; i++) {
      const made = await until(
        ws,
        `/events?limit=1000&type=AssignmentMade`,
        (p) => (p.events as Json[]).length > i,
      );
      const id = (made.events as { data: Json }[])[i]!.data.contactId as string;
      order.push(id);
      await ok('POST', ws, `/contacts/${id}/complete`);
    }
    expect(order).toEqual(['ts', 't2', 'o2', 't0', 'o0']);
    expect(ts.queuedAt).toBe((await ok('GET', ws, '/contacts/ts')).queuedAt);
  });
});

describe('preferred agents', () => {
  it('PreferenceEnded as documented; the document shows the preference only while it lasts', async () => {
    const ws = WS.prefer;
    const p = await ok('POST', ws, '/contacts', {
      id: 'p',
      skills: ['Support'],
      preferredAgents: ['mine'],
      preferredForMs: 200,
    });
    expect(p).toMatchObject({ preferredAgents: ['mine'] });
    expect(Date.parse(p.preferredUntil as string) - Date.parse(p.queuedAt as string)).toBe(200);
    const ended = await until(ws, '/contacts/p', (c) => c.preferredAgents === undefined, 3000);
    expect(ended.preferredUntil).toBeUndefined();
    expect(ended.state).toBe('queued');
    const [fact] = await events(ws, 'PreferenceEnded');
    expect(fact!.data).toEqual({ contactId: 'p', endedAt: fact!.at });
    expect(Date.parse(fact!.at)).toBeGreaterThanOrEqual(Date.parse(p.preferredUntil as string));

    // Abandoned while its preference lasts: no preference is running any more.
    await ok('POST', ws, '/contacts', { id: 'gone', skills: ['Support'], preferredAgents: ['mine'] });
    const gone = await ok('POST', ws, '/contacts/gone/abandon');
    expect(gone.state).toBe('abandoned');
    const read = await ok('GET', ws, '/contacts/gone');
    expect([read.preferredAgents, read.preferredUntil]).toEqual([['mine'], gone.preferredUntil]);
    // Expired, or taken by its preferred agent, while its preference lasts: the same.
    const ex = await ok('POST', ws, '/contacts', {
      id: 'ex',
      skills: ['Support'],
      preferredAgents: ['mine'],
      maxWaitMs: 100,
    });
    const expired = await until(ws, '/contacts/ex', (c) => c.state === 'expired', 3000);
    expect([expired.preferredAgents, expired.preferredUntil]).toEqual([['mine'], ex.preferredUntil]);
    await ok('POST', ws, '/agents', { id: 'mine', skills: ['Support'] });
    await ok('POST', ws, '/agents/mine/state', { state: 'available' });
    const taken = await until(ws, '/contacts/p', (c) => c.state === 'assigned');
    expect(taken.preferredAgents).toBeUndefined();
    const tk = await ok('POST', ws, '/contacts', {
      id: 'tk',
      skills: ['Support'],
      preferredAgents: ['mine'],
    });
    await ok('POST', ws, '/contacts/p/complete');
    const mine = await until(ws, '/contacts/tk', (c) => c.state === 'assigned');
    expect([mine.agentId, mine.preferredAgents, mine.preferredUntil]).toEqual([
      'mine',
      ['mine'],
      tk.preferredUntil,
    ]);
  });
});

describe('maximum wait and abandon', () => {
  it('ContactExpired and ContactAbandoned of a queued contact as documented; the documents after', async () => {
    const ws = WS.expire;
    const x = await ok('POST', ws, '/contacts', { id: 'x', skills: ['Nobody'], maxWaitMs: 150 });
    expect(Date.parse(x.expiresAt as string) - Date.parse(x.queuedAt as string)).toBe(150);
    const expired = await until(ws, '/contacts/x', (c) => c.state === 'expired', 3000);
    expect(expired.queuePosition).toBeUndefined();
    expect(expired.estimatedWaitMs).toBeUndefined();
    const [fact] = await events(ws, 'ContactExpired');
    expect(fact!.data).toEqual({ contactId: 'x', expiredAt: fact!.at, waitedMs: expired.waitedMs });
    expect(expired.expiredAt).toBe(fact!.at);
    expect(expired.waitedMs).toBeGreaterThanOrEqual(150);
    await problem('POST', ws, '/contacts/x/abandon', undefined, 409, 'contact-not-queued');

    await ok('POST', ws, '/contacts', { id: 'y', skills: ['Nobody'], maxWaitMs: 200 });
    const y = await ok('POST', ws, '/contacts/y/abandon');
    expect(y).toMatchObject({ state: 'abandoned' });
    const [ab] = await events(ws, 'ContactAbandoned');
    expect(ab!.data).toEqual({ contactId: 'y', abandonedAt: ab!.at, waitedMs: y.waitedMs });
    // Left before its maximum wait: it keeps expiresAt, the time it would have left at.
    expect(Date.parse(y.expiresAt as string) - Date.parse(y.queuedAt as string)).toBe(200);
    // Its maximum wait does not fire after it left.
    await sleep(400);
    expect((await ok('GET', ws, '/contacts/y')).state).toBe('abandoned');
    expect((await events(ws, 'ContactExpired')).length).toBe(1);
  });

  it('an offered contact that expires or is abandoned names the agent, who is free again', async () => {
    const ws = WS.offered;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 60_000 });
    await ok('POST', ws, '/agents', { id: 'o1', skills: ['Sales'] });
    await ok('POST', ws, '/agents/o1/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'e', skills: ['Sales'], maxWaitMs: 300 });
    await until(ws, '/contacts/e', (c) => c.state === 'offered');
    const e = await until(ws, '/contacts/e', (c) => c.state === 'expired', 3000);
    expect(e.agentId).toBeUndefined();
    expect(e.offerExpiresAt).toBeUndefined();
    const [fact] = await events(ws, 'ContactExpired');
    expect(fact!.data).toEqual({ contactId: 'e', expiredAt: fact!.at, waitedMs: e.waitedMs, agentId: 'o1' });
    expect((await ok('GET', ws, '/agents/o1')).state).toBe('available');
    await ok('POST', ws, '/contacts', { id: 'a', skills: ['Sales'] });
    await until(ws, '/contacts/a', (c) => c.state === 'offered');
    const a = await ok('POST', ws, '/contacts/a/abandon');
    const [ab] = await events(ws, 'ContactAbandoned');
    expect(ab!.data).toEqual({ contactId: 'a', abandonedAt: ab!.at, waitedMs: a.waitedMs, agentId: 'o1' });
    expect((await ok('GET', ws, `/agents/o1?minPosition=${a.position}`)).state).toBe('available');
    await problem('POST', ws, '/contacts/a/accept', { agentId: 'o1' }, 409, 'contact-not-offered');
  });
});

describe('more edges', () => {
  it('a transfer writes its skills as routing steps do: sorted, once, levels as written', async () => {
    const ws = WS.transfer;
    await ok('POST', ws, '/agents', { id: 'lv', skills: ['Lv'] });
    await ok('POST', ws, '/agents/lv/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'lvc', skills: ['Lv'], priority: 7 });
    await until(ws, '/contacts/lvc', (c) => c.state === 'assigned');
    const moved = await ok('POST', ws, '/contacts/lvc/transfer', {
      skills: ['zeta', { name: 'alpha', minLevel: 3 }, 'zeta', { name: 'alpha', minLevel: 1 }, 'beta'],
    });
    const facts = await events(ws, 'ContactTransferred');
    expect(facts.at(-1)!.data.skills).toEqual(moved.skills);
    // No priority given: it keeps its own.
    expect([moved.priority, facts.at(-1)!.data.priority]).toEqual([7, 7]);
    expect(moved.skills).toEqual([{ name: 'alpha', minLevel: 3 }, 'beta', 'zeta']);
  });

  it('a step of an offered contact keeps its offer; rejected, it waits under its new requirements; offered: no transfer', async () => {
    const ws = WS.offered;
    await ok('POST', ws, '/agents', { id: 'o2', skills: ['Loans'] });
    await ok('POST', ws, '/agents/o2/state', { state: 'available' });
    const c = await ok('POST', ws, '/contacts', {
      id: 'st',
      skills: ['Loans'],
      steps: [{ afterMs: 300, skills: ['Mortgage'], priority: 4 }],
    });
    await until(ws, '/contacts/st', (x) => x.state === 'offered');
    await problem('POST', ws, '/contacts/st/transfer', { skills: ['a'] }, 409, 'contact-not-assigned');
    const stepped = await until(ws, '/contacts/st', (x) => x.step === 1, 3000);
    expect(stepped).toMatchObject({ state: 'offered', agentId: 'o2', skills: ['Mortgage'], priority: 4 });
    const back = await ok('POST', ws, '/contacts/st/reject', { agentId: 'o2' });
    expect(back).toMatchObject({
      state: 'queued',
      skills: ['Mortgage'],
      priority: 4,
      queuedAt: c.queuedAt,
      excludedAgents: ['o2'],
    });
    expect((await ok('GET', ws, '/contacts/st')).queuePosition).toBe(0);
  });
});

describe('a transfer and the agents who turned the contact down', () => {
  it('the agent who transfers it may be offered it again; one who rejected an offer of it, never', async () => {
    const ws = WS.excluded;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 60_000 });
    for (const id of ['x1', 'x2']) await ok('POST', ws, '/agents', { id, skills: ['Loans', 'Cards'] });
    await ok('POST', ws, '/agents/x1/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'tx', skills: ['Loans'] });
    await until(ws, '/contacts/tx', (x) => x.state === 'offered' && x.agentId === 'x1');
    await ok('POST', ws, '/contacts/tx/reject', { agentId: 'x1' });
    await ok('POST', ws, '/agents/x1/state', { state: 'available' });
    await ok('POST', ws, '/agents/x2/state', { state: 'available' });
    await until(ws, '/contacts/tx', (x) => x.state === 'offered' && x.agentId === 'x2');
    await ok('POST', ws, '/contacts/tx/accept', { agentId: 'x2' });
    const moved = await ok('POST', ws, '/contacts/tx/transfer', { skills: ['Cards'] });
    // Queued again for Cards, x1 still passed over.
    expect(moved).toMatchObject({ state: 'queued', skills: ['Cards'], excludedAgents: ['x1'] });
    // x1 has been available the longer (x2 is free again at its transfer, there being no wrap-up),
    // yet it goes to x2, who transferred it: x1 rejected an offer of it once.
    expect(await until(ws, '/contacts/tx', (x) => x.state === 'offered', 3000)).toMatchObject({
      agentId: 'x2',
    });
  });
});

describe('priority aging', () => {
  it('a transferred contact keeps its arrival in the aged order', async () => {
    const ws = WS.aging;
    await ok('PUT', ws, '/settings', { priorityWeightMs: 60_000 });
    await ok('POST', ws, '/agents', { id: 'ag', skills: ['Desk'] });
    await ok('POST', ws, '/agents/ag/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'old', skills: ['Desk'] });
    await until(ws, '/contacts/old', (c) => c.state === 'assigned');
    await ok('POST', ws, '/contacts', { id: 'p1', skills: ['Help'], priority: 1 });
    await ok('POST', ws, '/contacts', { id: 'p0', skills: ['Help'] });
    await ok('POST', ws, '/contacts/old/transfer', { skills: ['Help'], priority: 1 });
    expect((await ok('GET', ws, '/contacts/old')).queuePosition).toBe(0);
    expect((await ok('GET', ws, '/contacts/p1')).queuePosition).toBe(1);
    expect((await ok('GET', ws, '/contacts/p0')).queuePosition).toBe(2);
    const state = await ok('GET', ws, '/state?at=' + (await events(ws, 'ContactTransferred'))[0]!.position);
    expect((state.queue as Json[]).map((q) => q.contactId)).toEqual(['old', 'p1', 'p0']);
  });
});

describe('a preference ending during an offer', () => {
  it('PreferenceEnded comes, the offer stays, the fields go', async () => {
    const ws = WS.offered;
    await ok('POST', ws, '/agents', { id: 'o3', skills: ['Care'] });
    await ok('POST', ws, '/agents/o3/state', { state: 'available' });
    await ok('POST', ws, '/contacts', {
      id: 'pf',
      skills: ['Care'],
      preferredAgents: ['o3'],
      preferredForMs: 200,
    });
    await until(ws, '/contacts/pf', (c) => c.state === 'offered');
    const ended = await until(ws, '/contacts/pf', (c) => c.preferredAgents === undefined, 3000);
    expect(ended).toMatchObject({ state: 'offered', agentId: 'o3' });
    expect(ended.preferredUntil).toBeUndefined();
    expect((await events(ws, 'PreferenceEnded')).map((e) => e.data.contactId)).toEqual(['pf']);
    await ok('POST', ws, '/contacts/pf/accept', { agentId: 'o3' });
  });
});

describe('idempotency keys on these commands', () => {
  const send = async (path: string, key: string, payload?: string) => {
    const res = await api.running.api!.inject({
      method: 'POST',
      url: `/v1/workspaces/${WS.conflicts}${path}`,
      headers: {
        'idempotency-key': key,
        ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(payload !== undefined ? { payload } : {}),
    });
    return { status: res.statusCode, replayed: res.headers['idempotent-replayed'], body: res.json() as Json };
  };
  it('abandon with no body, null or {} is one request; a transfer body compared as JSON', async () => {
    await ok('POST', WS.conflicts, '/contacts', { id: 'ik', skills: ['Nobody'] });
    const first = await send('/contacts/ik/abandon', 'ik-abandon');
    expect(first.status).toBe(200);
    const before = await commands(WS.conflicts);
    for (const body of [undefined, 'null', '{}']) {
      const again = await send('/contacts/ik/abandon', 'ik-abandon', body);
      expect([again.status, again.replayed, again.body.position], String(body)).toEqual([
        200,
        'true',
        first.body.position,
      ]);
    }
    await ok('POST', WS.conflicts, '/agents', { id: 'ik-agent', skills: ['Ik'] });
    await ok('POST', WS.conflicts, '/agents/ik-agent/state', { state: 'available' });
    await ok('POST', WS.conflicts, '/contacts', { id: 'ik2', skills: ['Ik'] });
    await until(WS.conflicts, '/contacts/ik2', (c) => c.state === 'assigned');
    const moved = await send('/contacts/ik2/transfer', 'ik-transfer', '{"skills":["Other"],"priority":2}');
    expect(moved.status).toBe(200);
    const again = await send(
      '/contacts/ik2/transfer',
      'ik-transfer',
      '{ "priority": 2, "skills": ["Other"] }',
    );
    expect([again.status, again.replayed, again.body.position]).toEqual([200, 'true', moved.body.position]);
    const other = await send('/contacts/ik2/transfer', 'ik-transfer', '{"skills":["Other"],"priority":3}');
    expect([other.status, other.body.type]).toEqual([422, '/problems/idempotency-key-reused']);
    expect(await commands(WS.conflicts)).toBe(before + 4);
  });
});

describe('the log agrees', () => {
  it('GET /state?at= the last event shows each contact as GET /contacts/{id} does', async () => {
    await sleep(300);
    for (const ws of Object.values(WS)) {
      let after = '0-0';
      let last: string | undefined;
      for (;;) {
        const page = await ok('GET', ws, `/events?limit=1000&after=${after}`);
        const evs = page.events as { position: string }[];
        if (evs.length) last = evs.at(-1)!.position;
        if (page.next === null) break;
        after = page.next as string;
      }
      if (!last) continue;
      const state = await ok('GET', ws, `/state?at=${last}`);
      for (const c of state.contacts as Json[]) {
        const { queuePosition: _q, estimatedWaitMs: _e, ...read } = await ok('GET', ws, `/contacts/${c.id}`);
        expect(c, `${ws} ${c.id}`).toEqual(read);
      }
      // The count of queued contacts not every agent of their queue may take (routing.lua).
      const blocked = (state.contacts as Json[]).filter(
        (c) => c.state === 'queued' && (c.excludedAgents !== undefined || c.preferredAgents !== undefined),
      ).length;
      const counted = await api.running.redis.hget(workspaceKeys(ws).meta, 'excluded');
      expect(Number(counted ?? 0), `${ws} excluded`).toBe(blocked);
      for (const a of state.agents as Json[])
        expect(a, `${ws} ${a.id}`).toEqual(await ok('GET', ws, `/agents/${a.id}`));
    }
  });
});

describe('docs/API.md says what the server does', () => {
  const doc = readFileSync(new URL('../../docs/API.md', import.meta.url), 'utf8');
  const section = (from: string, to: string) =>
    doc.slice(doc.indexOf(from), doc.indexOf(to, doc.indexOf(from)));
  it('the preference fields of a contact taken, abandoned or expired during its preference stay (tested above)', () => {
    const preferred = section('### Preferred agents', '### Routing steps');
    expect(preferred).toMatch(
      /assigned, abandoned or expired[^.]*keeps `preferredAgents` and `preferredUntil`/,
    );
    expect(section('- Contact: `{', '- `position` on a document')).not.toContain(
      'while it waits for its preferred agents',
    );
  });
  it('a body sent to a command that takes none is named `(body)` (tested above)', () => {
    expect(section('| `/problems/invalid-request`', '\n')).toContain('`(body)`');
  });
});
