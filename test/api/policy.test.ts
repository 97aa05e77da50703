/**
 * Routing policy through the API, from a user's point of view (docs/API.md, "Routing steps"), in
 * process against a real Redis with the dispatcher's clock running: a contact whose requirements
 * relax as it waits keeps its place; malformed steps answer 400 naming the field and append nothing.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { type IntervalFigures, IntervalStats } from '../../src/domain/intervals.ts';
import { inProcessApi, type Json } from '../support/api.ts';

const WS = {
  malformed: 'api-policy-malformed',
  steps: 'api-policy-steps',
  transfer: 'api-policy-transfer',
  wait: 'api-policy-wait',
  levels: 'api-policy-levels',
  stats: 'api-policy-stats',
  intervals: 'api-policy-intervals',
  preferred: 'api-policy-preferred',
} as const;
const api = inProcessApi(Object.values(WS));
const { call, ok, until } = api;

describe('malformed steps: 400 naming steps, nothing appended', () => {
  const cases: [string, unknown][] = [
    ['not a list', { afterMs: 10, skills: ['a'] }],
    ['empty', []],
    ['nine steps', Array.from({ length: 9 }, (_, i) => ({ afterMs: (i + 1) * 10, skills: ['a'] }))],
    ['afterMs 0', [{ afterMs: 0, skills: ['a'] }]],
    ['afterMs over 7 days', [{ afterMs: 604_800_001, skills: ['a'] }]],
    [
      'afterMs not rising',
      [
        { afterMs: 20, skills: ['a'] },
        { afterMs: 20, skills: ['b'] },
      ],
    ],
    ['a step without skills', [{ afterMs: 10 }]],
    ['a bad skill', [{ afterMs: 10, skills: ['a b'] }]],
    ['priority 10', [{ afterMs: 10, skills: ['a'], priority: 10 }]],
    ['an unknown field', [{ afterMs: 10, skills: ['a'], minLevel: 3 }]],
  ];
  for (const [name, steps] of cases)
    it(`POST /contacts with steps ${name}`, async () => {
      const before = await api.running.redis.xlen(workspaceKeys(WS.malformed).commands);
      const r = await call('POST', `/v1/workspaces/${WS.malformed}/contacts`, { skills: ['a'], steps });
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect((r.body.errors as { path: string }[]).map((e) => e.path)).toEqual(['steps']);
      expect(await api.running.redis.xlen(workspaceKeys(WS.malformed).commands)).toBe(before);
    });
});

describe('routing steps', () => {
  it('a Spanish billing contact relaxes to any billing agent after 300 ms and is served before a later contact of the same priority', async () => {
    const ws = WS.steps;
    await ok('POST', ws, '/agents', { id: 'eng', skills: ['Billing', 'English'] });
    await ok('POST', ws, '/agents/eng/state', { state: 'available' });
    // eng is busy with c0 when the others arrive.
    await ok('POST', ws, '/contacts', { id: 'c0', skills: ['Billing'] });
    await until(ws, '/contacts/c0', (c) => c.state === 'assigned');
    const spanish = await ok('POST', ws, '/contacts', {
      id: 'c1',
      skills: ['Billing', 'Spanish'],
      steps: [{ afterMs: 300, skills: ['Billing'] }],
    });
    expect(spanish).toMatchObject({
      skills: ['Billing', 'Spanish'],
      step: 0,
      steps: [{ afterMs: 300, skills: ['Billing'] }],
    });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['Billing'] });
    // The step comes; the contact needs Billing only and keeps its arrival.
    const relaxed = await until(ws, '/contacts/c1', (c) => c.step === 1, 3000);
    expect(relaxed).toMatchObject({ skills: ['Billing'], state: 'queued', queuedAt: spanish.queuedAt });
    // eng frees up: c1 arrived before c2, so it is served first.
    await ok('POST', ws, '/contacts/c0/complete');
    expect((await until(ws, '/contacts/c1', (c) => c.state === 'assigned')).agentId).toBe('eng');
    expect((await ok('GET', ws, '/contacts/c2')).state).toBe('queued');
    const { events } = await ok('GET', ws, '/events?limit=1000');
    const stepped = (events as { type: string; data: Json; at: string }[]).filter(
      (e) => e.type === 'ContactStepped',
    );
    expect(stepped.map((e) => e.data)).toEqual([
      { contactId: 'c1', step: 1, skills: ['Billing'], priority: 0, steppedAt: stepped[0]!.at },
    ]);
    const waited = Date.parse(stepped[0]!.at) - Date.parse(spanish.queuedAt as string);
    expect(waited).toBeGreaterThanOrEqual(300);
    expect(waited).toBeLessThan(1300);
  });

  it('a step can raise the priority; a contact taken before its step never changes', async () => {
    const ws = WS.transfer;
    await ok('POST', ws, '/contacts', {
      id: 'late',
      skills: ['Claims'],
      steps: [
        { afterMs: 100, skills: ['Claims'], priority: 5 },
        { afterMs: 200, skills: ['General'] },
      ],
    });
    const done = await until(ws, '/contacts/late', (c) => c.step === 2, 3000);
    expect(done).toMatchObject({ skills: ['General'], priority: 5 });
    await ok('POST', ws, '/agents', { id: 'gen', skills: ['General'] });
    // Its step is due 1.5 s after it arrives: time enough, even on a loaded machine, for the
    // requests below and its assignment to come first.
    const STEP_MS = 1500;
    await ok('POST', ws, '/contacts', {
      id: 'quick',
      skills: ['General'],
      steps: [{ afterMs: STEP_MS, skills: ['Other'] }],
    });
    await ok('POST', ws, '/agents/gen/state', { state: 'available' });
    expect((await until(ws, '/contacts/late', (c) => c.state === 'assigned')).agentId).toBe('gen');
    await ok('PATCH', ws, '/agents/gen', { capacity: 2 });
    const quick = await until(ws, '/contacts/quick', (c) => c.state === 'assigned');
    expect(quick.agentId).toBe('gen');
    // Its step comes while it is assigned: nothing changes.
    const due = Date.parse(quick.queuedAt as string) + STEP_MS;
    await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now()) + 250));
    expect(await ok('GET', ws, '/contacts/quick')).toMatchObject({
      skills: ['General'],
      step: 0,
      state: 'assigned',
    });
  });
});

describe('queue position and estimated wait', () => {
  it('a queued contact says how many are ahead of it in its queue and, once its queue has served some, how long it may wait', async () => {
    const ws = WS.wait;
    for (const id of ['w1', 'w2', 'w3', 'w4']) await ok('POST', ws, '/contacts', { id, skills: ['Sales'] });
    await ok('POST', ws, '/contacts', { id: 'vip', skills: ['Sales'], priority: 5 });
    await ok('POST', ws, '/contacts', { id: 'other', skills: ['Claims'] });
    const place = async (id: string) => {
      const c = await ok('GET', ws, `/contacts/${id}`);
      return [c.queuePosition, c.estimatedWaitMs];
    };
    // Routing order: the priority 5 contact first, then arrival; another queue counts on its own.
    expect(await place('vip')).toEqual([0, null]);
    expect(await place('w1')).toEqual([1, null]);
    expect(await place('w4')).toEqual([4, null]);
    expect(await place('other')).toEqual([0, null]);

    // An agent serves two (vip, then w1); from then on the queue has a service rate.
    await ok('POST', ws, '/agents', { id: 'seller', skills: ['Sales'] });
    await ok('POST', ws, '/agents/seller/state', { state: 'available' });
    await until(ws, '/contacts/vip', (c) => c.state === 'assigned');
    await ok('POST', ws, '/contacts/vip/complete');
    await until(ws, '/contacts/w1', (c) => c.state === 'assigned');
    const [p2, e2] = await place('w2');
    const [p4, e4] = await place('w4');
    expect([p2, p4]).toEqual([0, 2]);
    // Two decisions within a second or so: about one per 500 ms or more, and each further place
    // in the queue adds the same.
    expect(e2).toBeGreaterThan(0);
    expect(e2).toBeLessThanOrEqual(1000);
    expect(Math.abs((e4 as number) - 3 * (e2 as number))).toBeLessThanOrEqual(3);
    // Not queued any more: no place.
    const taken = await ok('GET', ws, '/contacts/w1');
    expect(taken.queuePosition).toBeUndefined();
    expect(taken.estimatedWaitMs).toBeUndefined();
  });
});

describe('proficiency', () => {
  it('a contact needing Billing at level 3 goes to the level-4 agent, not to the level-2 agent available longer', async () => {
    const ws = WS.levels;
    const junior = await ok('POST', ws, '/agents', {
      id: 'junior',
      skills: ['English', { name: 'Billing', level: 2 }],
    });
    // Documents show skills as written: a plain name is level 1.
    expect(junior.skills).toEqual([{ name: 'Billing', level: 2 }, 'English']);
    await ok('POST', ws, '/agents', { id: 'senior', skills: [{ name: 'Billing', level: 4 }, 'English'] });
    await ok('POST', ws, '/agents/junior/state', { state: 'available' });
    await ok('POST', ws, '/agents/senior/state', { state: 'available' });
    const hard = await ok('POST', ws, '/contacts', {
      id: 'hard',
      skills: ['English', { name: 'Billing', minLevel: 3 }],
    });
    expect(hard.skills).toEqual([{ name: 'Billing', minLevel: 3 }, 'English']);
    expect((await until(ws, '/contacts/hard', (c) => c.state === 'assigned')).agentId).toBe('senior');
    // A plain requirement (any level): the longest available of those holding it.
    await ok('POST', ws, '/contacts', { id: 'easy', skills: ['Billing'] });
    expect((await until(ws, '/contacts/easy', (c) => c.state === 'assigned')).agentId).toBe('junior');
    // Nobody at level 5: it waits.
    await ok('POST', ws, '/contacts', { id: 'expert', skills: [{ name: 'Billing', minLevel: 5 }] });
    await ok('PATCH', ws, '/agents/senior', { capacity: 2 });
    await new Promise((r) => setTimeout(r, 150));
    expect((await ok('GET', ws, '/contacts/expert')).state).toBe('queued');
    // Raised to level 5, senior takes it.
    await ok('PATCH', ws, '/agents/senior', { skills: [{ name: 'Billing', level: 5 }, 'English'] });
    expect((await until(ws, '/contacts/expert', (c) => c.state === 'assigned')).agentId).toBe('senior');
    const { events } = await ok('GET', ws, '/events?limit=1000&type=AssignmentMade');
    expect((events as { data: Json }[]).map((e) => e.data.skills)).toEqual([
      [{ name: 'Billing', minLevel: 3 }, 'English'],
      ['Billing'],
      [{ name: 'Billing', minLevel: 5 }],
    ]);
  });

  it('malformed levels: 400 naming skills, nothing appended', async () => {
    const cases: [string, string, unknown][] = [
      ['/agents', 'level 0', { id: 'x', skills: [{ name: 'a', level: 0 }] }],
      ['/agents', 'level 6', { id: 'x', skills: [{ name: 'a', level: 6 }] }],
      ['/agents', 'minLevel on an agent', { id: 'x', skills: [{ name: 'a', minLevel: 2 }] }],
      ['/agents', 'a level as text', { id: 'x', skills: [{ name: 'a', level: '2' }] }],
      ['/agents', 'a bad name', { id: 'x', skills: [{ name: 'a b', level: 2 }] }],
      ['/agents', 'a raw level suffix', { id: 'x', skills: ['a#2'] }],
      ['/contacts', 'level on a contact', { skills: [{ name: 'a', level: 2 }] }],
      ['/contacts', 'minLevel 1.5', { skills: [{ name: 'a', minLevel: 1.5 }] }],
      ['/contacts', 'an extra field', { skills: [{ name: 'a', minLevel: 2, weight: 1 }] }],
    ];
    for (const [path, name, body] of cases) {
      const before = await api.running.redis.xlen(workspaceKeys(WS.malformed).commands);
      const r = await call('POST', `/v1/workspaces/${WS.malformed}${path}`, body);
      expect(r.status, `${path} ${name}: ${JSON.stringify(r.body)}`).toBe(400);
      expect((r.body.errors as { path: string }[]).map((e) => e.path)).toEqual(['skills']);
      expect(await api.running.redis.xlen(workspaceKeys(WS.malformed).commands)).toBe(before);
    }
  });
});

describe('statistics', () => {
  it('the last minutes of decisions per queue and in all: count, mean wait, service level at a threshold; occupancy', async () => {
    const ws = WS.stats;
    await ok('POST', ws, '/agents', { id: 's1', skills: ['Sales'], capacity: 2 });
    await ok('POST', ws, '/agents/s1/state', { state: 'available' });
    // Two served at once; the third waits for a completion 300 ms later.
    for (const id of ['a', 'b', 'c']) await ok('POST', ws, '/contacts', { id, skills: ['Sales'] });
    await until(ws, '/contacts/b', (c) => c.state === 'assigned');
    await new Promise((r) => setTimeout(r, 300));
    await ok('POST', ws, '/contacts/a/complete');
    await until(ws, '/contacts/c', (c) => c.state === 'assigned');
    // A queue of another channel's skills, still waiting.
    await ok('POST', ws, '/contacts', { id: 'd', skills: ['Claims'] });
    const stats = await until(ws, '/stats?serviceLevelMs=150', (s) => s.queued === 1);
    const waits = await Promise.all(
      ['a', 'b', 'c'].map(async (id) => (await ok('GET', ws, `/contacts/${id}`)).waitedMs as number),
    );
    expect(waits[2]).toBeGreaterThanOrEqual(300);
    const within = waits.filter((w) => w <= 150).length;
    expect(stats.window).toEqual({
      ms: 300_000,
      serviceLevelMs: 150,
      assignments: 3,
      meanWaitMs: Math.round((waits[0]! + waits[1]! + waits[2]!) / 3),
      serviceLevel: Math.round((within / 3) * 1000) / 1000,
      abandons: 0,
      expirations: 0,
    });
    const nobody = { available: 0, away: 0, busy: 0, offline: 0, reserved: 0, wrapup: 0 };
    expect(stats.queues).toEqual([
      {
        channel: 'voice',
        skills: 'Claims',
        queued: 1,
        longestWaitMs: expect.any(Number),
        agents: nobody,
        // Nobody may take it: no capacity to measure.
        occupancy: null,
        assignments: 0,
        meanWaitMs: null,
        serviceLevel: null,
        abandons: 0,
        expirations: 0,
      },
      {
        channel: 'voice',
        skills: 'Sales',
        queued: 0,
        longestWaitMs: 0,
        // s1 holds Sales and is full.
        agents: { ...nobody, busy: 1 },
        occupancy: 1,
        ...(({ ms: _m, serviceLevelMs: _s, ...w }) => w)(stats.window as Json),
      },
    ]);
    // s1 holds b and c of its 2.
    expect(stats.occupancy).toBe(1);
    // The default threshold is 20 s.
    expect(((await ok('GET', ws, '/stats')).window as Json).serviceLevelMs).toBe(20_000);
    const bad = await call('GET', `/v1/workspaces/${ws}/stats?serviceLevelMs=0`);
    expect(bad.status).toBe(400);
    expect((bad.body.errors as { path: string }[]).map((e) => e.path)).toEqual(['serviceLevelMs']);
  });
});

describe('historical intervals', () => {
  it('GET /stats/intervals: the log in 15-minute intervals, the same as any reading of the log gives', async () => {
    const ws = WS.intervals;
    await ok('POST', ws, '/agents', { id: 'h1', skills: ['Sales'] });
    await ok('POST', ws, '/agents/h1/state', { state: 'available' });
    for (const id of ['x1', 'x2']) await ok('POST', ws, '/contacts', { id, skills: ['Sales'] });
    await ok('POST', ws, '/contacts', { id: 'x3', skills: ['Claims'], channel: 'voice' });
    await until(ws, '/contacts/x1', (c) => c.state === 'assigned');
    await ok('POST', ws, '/contacts/x1/complete');
    await until(ws, '/contacts/x2', (c) => c.state === 'assigned');
    await ok('POST', ws, '/contacts/x3/abandon');
    const now = Date.now();
    const from = new Date(now - 3600_000).toISOString();
    const to = new Date(now + 60_000).toISOString();
    const got = await ok('GET', ws, `/stats/intervals?from=${from}&to=${to}&serviceLevelMs=60000`);
    const intervals = got.intervals as (IntervalFigures & {
      from: string;
      queues: Record<string, IntervalFigures>;
    })[];
    expect(intervals.length).toBeGreaterThanOrEqual(5);
    const total = (k: keyof IntervalFigures) => intervals.reduce((n, i) => n + ((i[k] as number) ?? 0), 0);
    expect([total('queued'), total('assigned'), total('completed'), total('abandoned')]).toEqual([
      3, 2, 1, 1,
    ]);
    const busy = intervals.filter((i) => i.queued > 0);
    expect(busy.every((i) => i.serviceLevel === null || i.serviceLevel === 1)).toBe(true);
    const sales = intervals.flatMap((i) => Object.entries(i.queues)).filter(([q]) => q === 'voice ["Sales"]');
    expect(sales.reduce((n, [, f]) => n + f.assigned, 0)).toBe(2);

    // The same figures from another reading of the whole log (the events route, page by page).
    const stats = new IntervalStats(60_000);
    let after = '0-0';
    for (;;) {
      const page = await ok('GET', ws, `/events?limit=1000&after=${after}`);
      for (const e of page.events as { position: string; type: string; data: Record<string, unknown> }[])
        stats.add({ ms: Number(e.position.split('-')[0]), type: e.type, data: e.data });
      if (page.next === null) break;
      after = page.next as string;
    }
    expect(stats.result(Date.parse(from), Date.parse(to))).toEqual(intervals);

    const bad = await call('GET', `/v1/workspaces/${ws}/stats/intervals?from=${to}&to=${from}`);
    expect(bad.status).toBe(400);
    expect((bad.body.errors as { path: string }[]).map((e) => e.path)).toEqual(['to']);
    const missing = await call('GET', `/v1/workspaces/${ws}/stats/intervals?from=yesterday`);
    expect((missing.body.errors as { path: string }[]).map((e) => e.path).sort()).toEqual(['from', 'to']);
  });
});

describe('preferred agents', () => {
  it('a returning customer waits for the agent who served them, for preferredForMs, then goes to anyone eligible', async () => {
    const ws = WS.preferred;
    for (const id of ['long', 'mine']) await ok('POST', ws, '/agents', { id, skills: ['Support'] });
    // "long" has been available the longest; the customer prefers "mine", who is away.
    await ok('POST', ws, '/agents/long/state', { state: 'available' });
    const c = await ok('POST', ws, '/contacts', {
      id: 'back',
      skills: ['Support'],
      preferredAgents: ['mine'],
      // Long enough for what follows to happen within it, even on a loaded machine.
      preferredForMs: 2000,
    });
    expect(c).toMatchObject({ preferredAgents: ['mine'], state: 'queued' });
    await new Promise((r) => setTimeout(r, 100));
    expect((await ok('GET', ws, '/contacts/back')).state).toBe('queued'); // "long" may not take it yet
    // A later contact with no preference is not held back: "long" takes it.
    await ok('POST', ws, '/contacts', { id: 'next', skills: ['Support'] });
    expect((await until(ws, '/contacts/next', (x) => x.state === 'assigned')).agentId).toBe('long');
    await ok('POST', ws, '/contacts/next/complete');
    // The preference ends: anyone eligible, so "long".
    const ended = await until(ws, '/contacts/back', (x) => x.state === 'assigned', 10_000);
    expect(ended.agentId).toBe('long');
    expect(ended.preferredAgents).toBeUndefined();
    const { events } = await ok('GET', ws, '/events?limit=1000&type=PreferenceEnded,AssignmentMade');
    expect((events as { type: string; data: Json }[]).map((e) => `${e.type}:${e.data.contactId}`)).toEqual([
      'AssignmentMade:next',
      'PreferenceEnded:back',
      'AssignmentMade:back',
    ]);

    // While the preference lasts, the preferred agent takes it at once when available.
    await ok('POST', ws, '/agents/mine/state', { state: 'available' });
    await ok('POST', ws, '/contacts', { id: 'vip', skills: ['Support'], preferredAgents: ['mine', 'ghost'] });
    const vip = await until(ws, '/contacts/vip', (x) => x.state === 'assigned');
    expect(vip.agentId).toBe('mine');
    expect(Date.parse(vip.preferredUntil as string) - Date.parse(vip.queuedAt as string)).toBe(30_000);
  });

  it('malformed preferences: 400 naming the field, nothing appended', async () => {
    const cases: [unknown, string][] = [
      [{ skills: ['a'], preferredAgents: [] }, 'preferredAgents'],
      [{ skills: ['a'], preferredAgents: ['x', 'x'] }, 'preferredAgents'],
      [{ skills: ['a'], preferredAgents: Array.from({ length: 11 }, (_, i) => `a${i}`) }, 'preferredAgents'],
      [{ skills: ['a'], preferredAgents: ['a b'] }, 'preferredAgents'],
      [{ skills: ['a'], preferredAgents: ['x'], preferredForMs: 0 }, 'preferredForMs'],
      [{ skills: ['a'], preferredForMs: 1000 }, 'preferredForMs'],
    ];
    for (const [body, field] of cases) {
      const before = await api.running.redis.xlen(workspaceKeys(WS.malformed).commands);
      const r = await call('POST', `/v1/workspaces/${WS.malformed}/contacts`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect((r.body.errors as { path: string }[]).map((e) => e.path)).toEqual([field]);
      expect(await api.running.redis.xlen(workspaceKeys(WS.malformed).commands)).toBe(before);
    }
  });
});
