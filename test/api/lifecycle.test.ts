/**
 * The work lifecycle's routes (docs/API.md, "Offers, wrap-up and maximum wait"), in-process
 * against a real Redis: PUT/GET /settings, POST /contacts/{id}/accept and /reject, and the
 * lifecycle fields of POST /agents, PATCH /agents/{id} and POST /contacts. Malformed requests
 * answer 400 naming the field and append nothing; unknown, not-offered and offered-elsewhere
 * contacts answer 404/409 with documented types and change no document; and the happy paths:
 * an offer accepted, an offer rejected (back to the queue, never to that agent again), an offer
 * let expire, a wrap-up, a contact past its maximum wait.
 */
import { describe, expect, it } from 'vitest';
import { PROBLEM_TYPES } from '../../src/adapters/http/problem.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { DEFAULT_SETTINGS } from '../../src/domain/model.ts';
import { inProcessApi } from '../support/api.ts';
import { waitFor } from '../support/wait.ts';

/** One workspace per concern; the instance serves them all from the start. */
const WS = {
  malformed: 'api-life-malformed',
  settings: 'api-life-settings',
  stored: 'api-life-stored',
  refused: 'api-life-refused',
  offers: 'api-life-offers',
  expiry: 'api-life-expiry',
  wrapup: 'api-life-wrapup',
  maxwait: 'api-life-maxwait',
  transfer: 'api-life-transfer',
} as const;

const POSITION = /^\d+-\d+$/;
const DAY_MS = 86_400_000;

type Json = Record<string, unknown>;
type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
interface Reply {
  statusCode: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  json<T = Json>(): T;
}
interface Agent extends Json {
  id: string;
  state: string;
  presence: string;
  activeContacts: string[];
  availableSince: string | null;
  wrapUpMs?: number;
  wrapUpUntil?: string;
}
interface Contact extends Json {
  id: string;
  state: string;
  agentId?: string;
  offerExpiresAt?: string;
  acceptedAt?: string;
  excludedAgents?: string[];
  maxWaitMs?: number;
  expiresAt?: string;
  expiredAt?: string;
  position: string;
}
interface Envelope {
  position: string;
  type: string;
  data: Json;
}

const api = inProcessApi(Object.values(WS));
/** The instance serving every workspace of this file (test/support/api.ts). */
const instance = () => api.running;

async function call(method: Method, url: string, payload?: unknown): Promise<Reply> {
  const server = instance().api;
  if (!server) throw new Error('this instance runs no api role');
  return (await server.inject({
    method,
    url,
    ...(payload !== undefined ? { payload: payload as Json } : {}),
  })) as unknown as Reply;
}

const base = (ws: string) => `/v1/workspaces/${ws}`;

function expectProblem(res: Reply, status: number, type: string): Json {
  expect(res.statusCode, res.body).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
  const p = res.json();
  expect(p).toMatchObject({ status, type: `/problems/${type}` });
  expect(typeof p.title).toBe('string');
  expect(typeof p.detail).toBe('string');
  expect((PROBLEM_TYPES as Record<string, number>)[type]).toBe(status);
  return p;
}

function expectJson(res: Reply, status: number): Json {
  expect(res.statusCode, res.body).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/json/);
  return res.json();
}

const commandsLength = (ws: string) => instance().redis.xlen(workspaceKeys(ws).commands);
const eventsLength = (ws: string) => instance().redis.xlen(workspaceKeys(ws).events);

/** Reads until `ok` holds for what was read, and returns that. */
async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  let last: T | undefined;
  const r = await waitFor(
    () => `a read that satisfies the condition, last ${JSON.stringify(last)}`,
    async () => {
      last = await read();
      return ok(last) ? { value: last } : undefined;
    },
    { timeoutMs, everyMs: 20 },
  );
  return r.value;
}

async function register(ws: string, id: string, skills: string[], more: Json = {}): Promise<Agent> {
  return expectJson(await call('POST', `${base(ws)}/agents`, { id, skills, ...more }), 201) as Agent;
}
async function setState(ws: string, id: string, state: string): Promise<Agent> {
  return expectJson(await call('POST', `${base(ws)}/agents/${id}/state`, { state }), 200) as Agent;
}
async function queue(ws: string, body: Json): Promise<Contact> {
  return expectJson(await call('POST', `${base(ws)}/contacts`, body), 201) as Contact;
}
async function getAgent(ws: string, id: string): Promise<Agent> {
  return expectJson(await call('GET', `${base(ws)}/agents/${id}`), 200) as Agent;
}
async function getContact(ws: string, id: string): Promise<Contact> {
  return expectJson(await call('GET', `${base(ws)}/contacts/${id}`), 200) as Contact;
}
async function putSettings(ws: string, body: Json): Promise<Json> {
  return expectJson(await call('PUT', `${base(ws)}/settings`, body), 200);
}
async function events(ws: string): Promise<Envelope[]> {
  return expectJson(await call('GET', `${base(ws)}/events?limit=1000`), 200).events as Envelope[];
}
const answer = (ws: string, contactId: string, verb: 'accept' | 'reject', agentId: string) =>
  call('POST', `${base(ws)}/contacts/${contactId}/${verb}`, { agentId });

interface BadCase {
  readonly name: string;
  readonly method: Method;
  readonly path: string;
  readonly body?: unknown;
  /** Every field the 400's `errors` must name. */
  readonly fields: readonly string[];
}

const M = WS.malformed;
const settingsCase = (name: string, body: unknown, fields: readonly string[]): BadCase => ({
  name: `PUT /settings ${name}`,
  method: 'PUT',
  path: '/settings',
  body,
  fields,
});
const answerCases = (verb: 'accept' | 'reject'): BadCase[] =>
  [
    { name: 'without agentId', body: {}, fields: ['agentId'] },
    { name: 'with an empty agentId', body: { agentId: '' }, fields: ['agentId'] },
    { name: 'with a bad agentId', body: { agentId: 'ann smith' }, fields: ['agentId'] },
    { name: 'with a 129-character agentId', body: { agentId: 'a'.repeat(129) }, fields: ['agentId'] },
    { name: 'with a number as agentId', body: { agentId: 7 }, fields: ['agentId'] },
    { name: 'with an unknown field', body: { agentId: 'ann', reason: 'busy' }, fields: ['reason'] },
    { name: 'with an array body', body: [{ agentId: 'ann' }], fields: ['(body)'] },
    { name: 'with a number body', body: 5, fields: ['(body)'] },
  ].map((c) => ({
    ...c,
    name: `POST /contacts/{id}/${verb} ${c.name}`,
    method: 'POST',
    path: `/contacts/c-1/${verb}`,
  }));

const transferCases: BadCase[] = [
  { name: 'without skills', body: {}, fields: ['skills'] },
  { name: 'with no skill', body: { skills: [] }, fields: ['skills'] },
  { name: 'with a bad skill', body: { skills: ['bil ling'] }, fields: ['skills'] },
  { name: 'with a priority of 10', body: { skills: ['x'], priority: 10 }, fields: ['priority'] },
  { name: 'with an unknown field', body: { skills: ['x'], to: 'ann' }, fields: ['to'] },
  { name: 'with an array body', body: [{ skills: ['x'] }], fields: ['(body)'] },
].map((c) => ({
  ...c,
  name: `POST /contacts/{id}/transfer ${c.name}`,
  method: 'POST',
  path: '/contacts/c-1/transfer',
}));

const BAD: readonly BadCase[] = [
  ...transferCases,
  settingsCase('with a negative offerTimeoutMs', { offerTimeoutMs: -1 }, ['offerTimeoutMs']),
  settingsCase('with a fractional offerTimeoutMs', { offerTimeoutMs: 1.5 }, ['offerTimeoutMs']),
  settingsCase('with offerTimeoutMs as a string', { offerTimeoutMs: '1000' }, ['offerTimeoutMs']),
  settingsCase('with offerTimeoutMs over an hour', { offerTimeoutMs: 3_600_001 }, ['offerTimeoutMs']),
  settingsCase('with offerTimeoutMs null', { offerTimeoutMs: null }, ['offerTimeoutMs']),
  settingsCase('with a negative wrapUpMs', { wrapUpMs: -1 }, ['wrapUpMs']),
  settingsCase('with wrapUpMs over a day', { wrapUpMs: DAY_MS + 1 }, ['wrapUpMs']),
  settingsCase('with a missedOfferPresence of busy', { missedOfferPresence: 'busy' }, [
    'missedOfferPresence',
  ]),
  settingsCase('with a numeric missedOfferPresence', { missedOfferPresence: 1 }, ['missedOfferPresence']),
  settingsCase('with a maxWaitMs of 0', { maxWaitMs: 0 }, ['maxWaitMs']),
  settingsCase('with a fractional maxWaitMs', { maxWaitMs: 1500.5 }, ['maxWaitMs']),
  settingsCase('with maxWaitMs over a week', { maxWaitMs: 7 * DAY_MS + 1 }, ['maxWaitMs']),
  settingsCase('with maxWaitMs as a string', { maxWaitMs: '60000' }, ['maxWaitMs']),
  settingsCase('with an unknown field', { offerTimeout: 1000 }, ['offerTimeout']),
  settingsCase(
    'with every field bad at once',
    { offerTimeoutMs: -1, wrapUpMs: 'x', missedOfferPresence: 'gone', maxWaitMs: 0, extra: true },
    ['offerTimeoutMs', 'wrapUpMs', 'missedOfferPresence', 'maxWaitMs', 'extra'],
  ),
  settingsCase('with an array body', [], ['(body)']),
  settingsCase('with a number body', 5, ['(body)']),
  ...answerCases('accept'),
  ...answerCases('reject'),
  {
    name: 'POST /contacts/{id}/accept with a bad contact id',
    method: 'POST',
    path: '/contacts/bad!id/accept',
    body: { agentId: 'ann' },
    fields: ['id'],
  },
  {
    name: 'POST /contacts/{id}/reject with a bad contact id',
    method: 'POST',
    path: `/contacts/${'c'.repeat(129)}/reject`,
    body: { agentId: 'ann' },
    fields: ['id'],
  },
  {
    name: 'POST /agents with a negative wrapUpMs',
    method: 'POST',
    path: '/agents',
    body: { id: 'ann', skills: ['x'], wrapUpMs: -1 },
    fields: ['wrapUpMs'],
  },
  {
    name: 'POST /agents with wrapUpMs over a day',
    method: 'POST',
    path: '/agents',
    body: { id: 'ann', skills: ['x'], wrapUpMs: DAY_MS + 1 },
    fields: ['wrapUpMs'],
  },
  {
    name: 'POST /agents with a fractional wrapUpMs',
    method: 'POST',
    path: '/agents',
    body: { id: 'ann', skills: ['x'], wrapUpMs: 0.5 },
    fields: ['wrapUpMs'],
  },
  {
    name: 'PATCH /agents/{id} with wrapUpMs as a string',
    method: 'PATCH',
    path: '/agents/ann',
    body: { wrapUpMs: '1000' },
    fields: ['wrapUpMs'],
  },
  // PATCH takes wrapUpMs null (the agent's own is removed: test/api/agent-wrapup-clear.test.ts); POST does not.
  {
    name: 'POST /agents with wrapUpMs null',
    method: 'POST',
    path: '/agents',
    body: { id: 'ann', skills: ['x'], wrapUpMs: null },
    fields: ['wrapUpMs'],
  },
  {
    name: 'POST /contacts with a negative maxWaitMs',
    method: 'POST',
    path: '/contacts',
    body: { skills: ['x'], maxWaitMs: -1000 },
    fields: ['maxWaitMs'],
  },
  {
    name: 'POST /contacts with maxWaitMs over a week',
    method: 'POST',
    path: '/contacts',
    body: { skills: ['x'], maxWaitMs: 7 * DAY_MS + 1 },
    fields: ['maxWaitMs'],
  },
  {
    name: 'POST /contacts with maxWaitMs null',
    method: 'POST',
    path: '/contacts',
    body: { skills: ['x'], maxWaitMs: null },
    fields: ['maxWaitMs'],
  },
];

describe('malformed lifecycle requests', () => {
  it(`${BAD.length} malformed requests answer 400 naming each bad field and append nothing`, async () => {
    const before = await commandsLength(M);
    const failures: string[] = [];
    for (const c of BAD) {
      const res = await call(c.method, `${base(M)}${c.path}`, c.body);
      const where = `${c.name}: ${res.statusCode} ${res.body.slice(0, 300)}`;
      if (res.statusCode !== 400) {
        failures.push(`expected 400: ${where}`);
        continue;
      }
      const p = res.json<{ type: string; errors?: { path: string }[] }>();
      if (p.type !== '/problems/invalid-request') failures.push(`type ${p.type}: ${where}`);
      if (!/^application\/problem\+json/.test(String(res.headers['content-type'])))
        failures.push(`not problem+json: ${where}`);
      for (const field of c.fields)
        if (!p.errors?.some((e) => e.path === field)) failures.push(`errors do not name ${field}: ${where}`);
    }
    expect(failures).toEqual([]);
    expect(await commandsLength(M)).toBe(before);
  });

  it('a bad maxWaitMs in the settings is one error naming the field: a number in range, or null', async () => {
    const p = expectProblem(
      await call('PUT', `${base(M)}/settings`, { maxWaitMs: 0 }),
      400,
      'invalid-request',
    );
    expect(p.errors).toEqual([
      {
        path: 'maxWaitMs',
        message: expect.stringMatching(/^an integer number of milliseconds from \d+ to 604800000, or null$/),
      },
    ]);
  });

  it('a bad workspace on the new routes is a 400 naming ws', async () => {
    for (const [method, path, body] of [
      ['PUT', '/settings', {}],
      ['GET', '/settings', undefined],
      ['POST', '/contacts/c-1/accept', { agentId: 'ann' }],
      ['POST', '/contacts/c-1/reject', { agentId: 'ann' }],
    ] as const) {
      const p = expectProblem(
        await call(method, `/v1/workspaces/bad!ws${path}`, body),
        400,
        'invalid-request',
      );
      expect(p.errors, `${method} ${path}`).toEqual(
        expect.arrayContaining([expect.objectContaining({ path: 'ws' })]),
      );
    }
  });

  it('GET /settings with a bad minPosition or an unknown parameter is a 400 naming it', async () => {
    const bad = expectProblem(await call('GET', `${base(M)}/settings?minPosition=x`), 400, 'invalid-request');
    expect(bad.errors).toEqual([expect.objectContaining({ path: 'minPosition' })]);
    const unknown = expectProblem(await call('GET', `${base(M)}/settings?at=1-0`), 400, 'invalid-request');
    expect(unknown.errors).toEqual([expect.objectContaining({ path: 'at' })]);
  });
});

describe('GET /settings', () => {
  it('answers the defaults for a workspace that never set any', async () => {
    expect(expectJson(await call('GET', `${base(WS.stored)}/settings`), 200)).toEqual(DEFAULT_SETTINGS);
  });

  it('reads the settings the projector keeps in the meta hash, a missing field at its default', async () => {
    const meta = workspaceKeys(WS.stored).meta;
    await instance().redis.hset(
      meta,
      'settings',
      JSON.stringify({ offerTimeoutMs: 15_000, maxWaitMs: 60_000 }),
    );
    try {
      expect(expectJson(await call('GET', `${base(WS.stored)}/settings`), 200)).toEqual({
        offerTimeoutMs: 15_000,
        wrapUpMs: 0,
        missedOfferPresence: 'away',
        maxWaitMs: 60_000,
        channels: ['voice'],
      });
    } finally {
      await instance().redis.hdel(meta, 'settings');
    }
  });
});

// ---- These need the projector's lifecycle Lua and the dispatcher's clock. ----

describe('PUT /settings', () => {
  const ws = WS.settings;

  it('answers 200 with the settings and position, GET reads them back, and a field left out takes its default', async () => {
    const full = {
      offerTimeoutMs: 20_000,
      wrapUpMs: 5_000,
      missedOfferPresence: 'offline',
      maxWaitMs: 600_000,
      channels: ['voice'],
    };
    const put = await putSettings(ws, full);
    expect(put).toMatchObject(full);
    expect(put.position).toMatch(POSITION);
    const got = expectJson(await call('GET', `${base(ws)}/settings?minPosition=${put.position}`), 200);
    expect(got).toEqual(full);

    // PUT replaces the whole: what is left out goes back to its default.
    const partial = await putSettings(ws, { wrapUpMs: 1_000 });
    expect(partial).toMatchObject({ ...DEFAULT_SETTINGS, wrapUpMs: 1_000 });
    expect(expectJson(await call('GET', `${base(ws)}/settings`), 200)).toEqual({
      ...DEFAULT_SETTINGS,
      wrapUpMs: 1_000,
    });

    const cleared = await putSettings(ws, {});
    expect(cleared).toMatchObject(DEFAULT_SETTINGS);
    expect(expectJson(await call('GET', `${base(ws)}/settings`), 200)).toEqual(DEFAULT_SETTINGS);

    const changed = (await events(ws)).filter((e) => e.type === 'SettingsChanged').map((e) => e.data);
    expect(changed).toEqual([full, { ...DEFAULT_SETTINGS, wrapUpMs: 1_000 }, DEFAULT_SETTINGS]);
  });

  it('maxWaitMs null is no limit', async () => {
    const put = await putSettings(ws, { maxWaitMs: null, offerTimeoutMs: 1000 });
    expect(put).toMatchObject({ ...DEFAULT_SETTINGS, offerTimeoutMs: 1000, maxWaitMs: null });
    await putSettings(ws, {});
  });
});

describe('answers the projector refuses', () => {
  const ws = WS.refused;

  it('404 for an unknown contact, 409 for one not offered, 409 for one offered to another agent; none changes a document', async () => {
    await putSettings(ws, { offerTimeoutMs: 60_000 });
    await register(ws, 'ann', ['x']);
    await register(ws, 'bob', ['y']);
    await setState(ws, 'ann', 'available');
    await queue(ws, { id: 'waits', skills: ['z'] }); // nobody holds z: it stays queued
    await queue(ws, { id: 'rings', skills: ['x'] });
    const offered = await eventually(
      () => getContact(ws, 'rings'),
      (c) => c.state === 'offered',
    );
    expect(offered.agentId).toBe('ann');

    const documents = async () => ({
      waits: await getContact(ws, 'waits'),
      rings: await getContact(ws, 'rings'),
      ann: await getAgent(ws, 'ann'),
      bob: await getAgent(ws, 'bob'),
    });
    const before = await documents();
    const eventsBefore = await eventsLength(ws);
    for (const verb of ['accept', 'reject'] as const) {
      const unknown = expectProblem(await answer(ws, 'nobody', verb, 'ann'), 404, 'contact-not-found');
      expect(unknown.detail).toContain('nobody');
      expectProblem(await answer(ws, 'waits', verb, 'ann'), 409, 'contact-not-offered');
      const other = expectProblem(await answer(ws, 'rings', verb, 'bob'), 409, 'offer-not-yours');
      expect(other.detail).toContain('bob');
      // An agent no one registered is not the one offered either.
      expectProblem(await answer(ws, 'rings', verb, 'zed'), 409, 'offer-not-yours');
    }
    expect(await documents()).toEqual(before);
    // Each refusal is on the log as CommandRejected, and nothing else.
    const after = (await events(ws)).slice(eventsBefore);
    expect(after.map((e) => e.type)).toEqual(Array(8).fill('CommandRejected'));

    // Accepted once, the contact is no longer offered: a second answer is a 409.
    expectJson(await answer(ws, 'rings', 'accept', 'ann'), 200);
    expectProblem(await answer(ws, 'rings', 'accept', 'ann'), 409, 'contact-not-offered');
    expectProblem(await answer(ws, 'rings', 'reject', 'ann'), 409, 'contact-not-offered');
  });
});

describe('offers through the API', () => {
  const ws = WS.offers;

  it('offered → accepted by its agent (not another) → assigned; a rejected offer goes back to the queue, never to that agent again', async () => {
    await putSettings(ws, { offerTimeoutMs: 60_000 });
    await register(ws, 'ann', ['billing']);
    await register(ws, 'bob', ['billing']);
    await setState(ws, 'ann', 'available');

    await queue(ws, { id: 'call-1', skills: ['billing'] });
    const offered = await eventually(
      () => getContact(ws, 'call-1'),
      (c) => c.state === 'offered',
    );
    expect(offered.agentId).toBe('ann');
    expect(Date.parse(offered.offerExpiresAt ?? '')).toBeGreaterThan(Date.now() + 50_000);
    expect(await getAgent(ws, 'ann')).toMatchObject({ state: 'reserved', activeContacts: ['call-1'] });

    expectProblem(await answer(ws, 'call-1', 'accept', 'bob'), 409, 'offer-not-yours');
    const accepted = expectJson(await answer(ws, 'call-1', 'accept', 'ann'), 200) as Contact;
    expect(accepted).toMatchObject({ id: 'call-1', state: 'assigned', agentId: 'ann' });
    expect(typeof accepted.acceptedAt).toBe('string');
    expect(accepted.position).toMatch(POSITION);
    expect(await getContact(ws, 'call-1')).toMatchObject({ state: 'assigned', agentId: 'ann' });
    expect(await getAgent(ws, 'ann')).toMatchObject({ state: 'busy', activeContacts: ['call-1'] });

    expectJson(await call('POST', `${base(ws)}/contacts/call-1/complete`), 200);
    expect((await getAgent(ws, 'ann')).state).toBe('available');

    // Ann rejects the next one: it is queued again at its place, and never offered to her again.
    await queue(ws, { id: 'call-2', skills: ['billing'] });
    await eventually(
      () => getContact(ws, 'call-2'),
      (c) => c.state === 'offered' && c.agentId === 'ann',
    );
    const rejected = expectJson(await answer(ws, 'call-2', 'reject', 'ann'), 200) as Contact;
    expect(rejected).toMatchObject({ id: 'call-2', state: 'queued', excludedAgents: ['ann'] });
    expect(rejected.agentId).toBeUndefined();
    expect(await getAgent(ws, 'ann')).toMatchObject({ state: 'available', activeContacts: [] });
    await new Promise((r) => setTimeout(r, 300));
    expect((await getContact(ws, 'call-2')).state).toBe('queued');

    // Bob comes: the contact is offered to him.
    await setState(ws, 'bob', 'available');
    const second = await eventually(
      () => getContact(ws, 'call-2'),
      (c) => c.state === 'offered',
    );
    expect(second).toMatchObject({ agentId: 'bob', excludedAgents: ['ann'] });

    const log = await events(ws);
    const made = log.filter((e) => e.type === 'AssignmentMade');
    expect(made.map((e) => [e.data.contactId, e.data.agentId])).toEqual([
      ['call-1', 'ann'],
      ['call-2', 'ann'],
      ['call-2', 'bob'],
    ]);
    for (const e of made)
      expect(e.data.offer).toMatchObject({ id: expect.any(Number), expiresAt: expect.any(String) });
    expect(log.filter((e) => e.type === 'AssignmentAccepted').map((e) => e.data)).toEqual([
      { contactId: 'call-1', agentId: 'ann', acceptedAt: accepted.acceptedAt },
    ]);
    expect(log.filter((e) => e.type === 'AssignmentRejected').map((e) => e.data)).toEqual([
      expect.objectContaining({ contactId: 'call-2', agentId: 'ann', reason: 'rejected' }),
    ]);
  });

  it('an agent going away withdraws its offer; abandon works on an offered contact', async () => {
    await register(ws, 'cid', ['sales']);
    await register(ws, 'dan', ['sales']);
    await setState(ws, 'cid', 'available');
    await queue(ws, { id: 'call-3', skills: ['sales'] });
    await eventually(
      () => getContact(ws, 'call-3'),
      (c) => c.state === 'offered' && c.agentId === 'cid',
    );
    await setState(ws, 'cid', 'away');
    expect(await getContact(ws, 'call-3')).toMatchObject({ state: 'queued', excludedAgents: ['cid'] });
    const withdrawn = (await events(ws)).filter((e) => e.type === 'AssignmentRejected').at(-1);
    expect(withdrawn?.data).toMatchObject({ contactId: 'call-3', agentId: 'cid', reason: 'presence' });

    await setState(ws, 'dan', 'available');
    await eventually(
      () => getContact(ws, 'call-3'),
      (c) => c.state === 'offered' && c.agentId === 'dan',
    );
    const gone = expectJson(await call('POST', `${base(ws)}/contacts/call-3/abandon`), 200) as Contact;
    expect(gone.state).toBe('abandoned');
    expect(await getAgent(ws, 'dan')).toMatchObject({ state: 'available', activeContacts: [] });
    // The offer withdrawn: the event names the agent it was offered to (its agent= feed hears it).
    const left = (await events(ws)).filter((e) => e.type === 'ContactAbandoned').at(-1);
    expect(left?.data).toMatchObject({ contactId: 'call-3', agentId: 'dan' });
    expectProblem(await answer(ws, 'call-3', 'accept', 'dan'), 409, 'contact-not-offered');
  });
});

describe('timers through the API', () => {
  it('an offer not answered in time expires: the agent goes to missedOfferPresence, the contact back to the queue', async () => {
    const ws = WS.expiry;
    await putSettings(ws, { offerTimeoutMs: 300 });
    await register(ws, 'eve', ['x']);
    await setState(ws, 'eve', 'available');
    await queue(ws, { id: 'late', skills: ['x'] });
    // Back in the queue with eve excluded (the offer itself lasts 300 ms: a poll may miss it on a
    // loaded machine; the log below shows it was made).
    const back = await eventually(
      () => getContact(ws, 'late'),
      (c) => c.state === 'queued' && (c.excludedAgents as unknown[] | undefined)?.length === 1,
      10_000,
    );
    expect(back.excludedAgents).toEqual(['eve']);
    expect(await getAgent(ws, 'eve')).toMatchObject({ presence: 'away', state: 'away', activeContacts: [] });
    expectProblem(await answer(ws, 'late', 'accept', 'eve'), 409, 'contact-not-offered');
    const log = await events(ws);
    // The offer to eve, then its expiry.
    expect(
      log.filter((e) => e.type === 'AssignmentMade' || e.type === 'AssignmentExpired').map((e) => e.type),
    ).toEqual(['AssignmentMade', 'AssignmentExpired']);
    const offered = log.find((e) => e.type === 'AssignmentMade')!;
    expect(offered.data).toMatchObject({ contactId: 'late', agentId: 'eve', offer: { id: 1 } });
    const expired = log.filter((e) => e.type === 'AssignmentExpired');
    expect(expired.map((e) => e.data)).toEqual([
      expect.objectContaining({ contactId: 'late', agentId: 'eve' }),
    ]);
  });

  it('complete starts the agent wrap-up (its own time before the workspace one); it ends by itself, or early on available', async () => {
    const ws = WS.wrapup;
    await putSettings(ws, { wrapUpMs: 60_000 });
    // Long enough to be read right after the completion, even on a loaded machine.
    await register(ws, 'fay', ['x'], { wrapUpMs: 1500 });
    await register(ws, 'gus', ['y']);
    expect((await getAgent(ws, 'fay')).wrapUpMs).toBe(1500);
    await setState(ws, 'fay', 'available');
    await setState(ws, 'gus', 'available');

    await queue(ws, { id: 'w-1', skills: ['x'] });
    await eventually(
      () => getContact(ws, 'w-1'),
      (c) => c.state === 'assigned',
    );
    expectJson(await call('POST', `${base(ws)}/contacts/w-1/complete`), 200);
    const wrapping = await getAgent(ws, 'fay');
    expect(wrapping.state).toBe('wrapup');
    expect(typeof wrapping.wrapUpUntil).toBe('string');
    const ended = await eventually(
      () => getAgent(ws, 'fay'),
      (a) => a.state === 'available',
    );
    expect(ended.wrapUpUntil).toBeUndefined();

    // Gus wraps up for the workspace's minute, and ends it early.
    await queue(ws, { id: 'w-2', skills: ['y'] });
    await eventually(
      () => getContact(ws, 'w-2'),
      (c) => c.state === 'assigned',
    );
    expectJson(await call('POST', `${base(ws)}/contacts/w-2/complete`), 200);
    expect((await getAgent(ws, 'gus')).state).toBe('wrapup');
    const early = await setState(ws, 'gus', 'available');
    expect(early.state).toBe('available');

    const log = await events(ws);
    expect(log.filter((e) => e.type === 'WrapUpStarted').map((e) => e.data.agentId)).toEqual(['fay', 'gus']);
    expect(log.filter((e) => e.type === 'WrapUpEnded').map((e) => [e.data.agentId, e.data.early])).toEqual([
      ['fay', false],
      ['gus', true],
    ]);

    // PATCH passes wrapUpMs too.
    const patched = expectJson(await call('PATCH', `${base(ws)}/agents/gus`, { wrapUpMs: 0 }), 200) as Agent;
    expect(patched.wrapUpMs).toBe(0);
  });

  it('a contact waiting past its maxWaitMs leaves as ContactExpired', async () => {
    const ws = WS.maxwait;
    const queued = await queue(ws, { id: 'patient', skills: ['nobody-has-it'], maxWaitMs: 1000 });
    expect(queued.maxWaitMs).toBe(1000);
    expect(typeof queued.expiresAt).toBe('string');
    const expired = await eventually(
      () => getContact(ws, 'patient'),
      (c) => c.state === 'expired',
    );
    expect(typeof expired.expiredAt).toBe('string');
    const fact = (await events(ws)).find((e) => e.type === 'ContactExpired');
    expect(fact?.data).toMatchObject({ contactId: 'patient' });
    // Never offered: no agent to name.
    expect(fact?.data.agentId).toBeUndefined();
    expect(fact?.data.waitedMs).toBeGreaterThanOrEqual(1000);
    expectProblem(await call('POST', `${base(ws)}/contacts/patient/abandon`), 409, 'contact-not-queued');
  });
});

describe('transfer through the API', () => {
  it('an assigned contact goes back to the queue with new skills, ahead of later arrivals; its agent wraps up; 409 unless assigned', async () => {
    const ws = WS.transfer;
    await putSettings(ws, { wrapUpMs: 60_000 });
    await register(ws, 'tom', ['support']);
    await setState(ws, 'tom', 'available');
    await queue(ws, { id: 't-1', skills: ['support'], priority: 1 });
    await eventually(
      () => getContact(ws, 't-1'),
      (c) => c.state === 'assigned',
    );
    // A later arrival that needs billing, and nobody who has it yet.
    await queue(ws, { id: 't-2', skills: ['billing'], priority: 1 });
    expectProblem(
      await call('POST', `${base(ws)}/contacts/t-2/transfer`, { skills: ['x'] }),
      409,
      'contact-not-assigned',
    );
    expectProblem(
      await call('POST', `${base(ws)}/contacts/nobody/transfer`, { skills: ['x'] }),
      404,
      'contact-not-found',
    );

    const moved = expectJson(
      await call('POST', `${base(ws)}/contacts/t-1/transfer`, { skills: ['billing'] }),
      200,
    ) as Contact;
    expect(moved).toMatchObject({ state: 'queued', skills: ['billing'], priority: 1 });
    expect(moved.agentId).toBeUndefined();
    expect((await getAgent(ws, 'tom')).state).toBe('wrapup');
    const fact = (await events(ws)).find((e) => e.type === 'ContactTransferred');
    expect(fact?.data).toMatchObject({
      contactId: 't-1',
      fromAgentId: 'tom',
      skills: ['billing'],
      priority: 1,
    });
    expect((await events(ws)).find((e) => e.type === 'WrapUpStarted')?.data.agentId).toBe('tom');

    // Its arrival is kept: it is served before t-2, which arrived later.
    await register(ws, 'bea', ['billing']);
    await setState(ws, 'bea', 'available');
    const served = await eventually(
      () => getContact(ws, 't-1'),
      (c) => c.state === 'assigned',
    );
    expect(served.agentId).toBe('bea');
    expect((await getContact(ws, 't-2')).state).toBe('queued');
  });
});
