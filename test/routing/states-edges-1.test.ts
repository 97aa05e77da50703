/**
 * Every command in every state, against a real Redis with the projector and the dispatcher's clock
 * running: an agent put offline, available, away, reserved (an offer), busy or in wrap-up, and a
 * contact queued, offered, assigned, completed, abandoned or expired, then each command that
 * targets either side sent to it. Each cell checks the HTTP answer (status, problem type) against
 * docs/API.md, the documents afterwards, the facts it appended (in order), that a repeat of a
 * refused or no-op command appends no fact, and that the auditor (src/audit) finds no violation in
 * the log afterwards.
 */
import { describe, expect, it } from 'vitest';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi, type Json } from '../support/api.ts';

type AgentState = 'offline' | 'available' | 'away' | 'reserved' | 'busy' | 'wrapup';
type ContactState = 'queued' | 'offered' | 'assigned' | 'completed' | 'abandoned' | 'expired';

interface Cell {
  readonly name: string;
  /** The state the scenario is put in first. */
  readonly agent?: AgentState;
  readonly contact?: ContactState;
  readonly method: 'POST' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  readonly status: number;
  readonly problem?: string;
  /** The facts the command appends, in order. */
  readonly facts: readonly string[];
  /** Checks of the documents afterwards. */
  readonly agentAfter?: Partial<Json> | null;
  readonly contactAfter?: Partial<Json>;
}

const cells: Cell[] = [
  // The agent's commands, in each of the agent's states.
  ...(['offline', 'available', 'away'] as const).flatMap((s): Cell[] => [
    {
      name: `${s}: state ${s} again`,
      agent: s,
      method: 'POST',
      path: '/agents/a1/state',
      body: { state: s },
      status: 200,
      facts: [],
      agentAfter: { state: s },
    },
    {
      name: `${s}: DELETE`,
      agent: s,
      method: 'DELETE',
      path: '/agents/a1',
      status: 200,
      facts: ['AgentRemoved'],
      agentAfter: null,
    },
    {
      name: `${s}: PATCH skills`,
      agent: s,
      method: 'PATCH',
      path: '/agents/a1',
      body: { skills: ['t'] },
      status: 200,
      facts: ['AgentUpdated'],
      agentAfter: { state: s, skills: ['t'] },
    },
  ]),
  {
    name: 'reserved: away withdraws the offer',
    agent: 'reserved',
    contact: 'offered',
    method: 'POST',
    path: '/agents/a1/state',
    body: { state: 'away' },
    status: 200,
    facts: ['AssignmentRejected', 'AgentStateChanged'],
    agentAfter: { state: 'away', activeContacts: [] },
    contactAfter: { state: 'queued', excludedAgents: ['a1'] },
  },
  {
    name: 'reserved: offline withdraws the offer',
    agent: 'reserved',
    contact: 'offered',
    method: 'POST',
    path: '/agents/a1/state',
    body: { state: 'offline' },
    status: 200,
    facts: ['AssignmentRejected', 'AgentStateChanged'],
    agentAfter: { state: 'offline', activeContacts: [] },
    contactAfter: { state: 'queued', excludedAgents: ['a1'] },
  },
  {
    name: 'reserved: available again is no change',
    agent: 'reserved',
    contact: 'offered',
    method: 'POST',
    path: '/agents/a1/state',
    body: { state: 'available' },
    status: 200,
    facts: [],
    agentAfter: { state: 'reserved', activeContacts: ['c1'] },
    contactAfter: { state: 'offered', agentId: 'a1' },
  },
  {
    name: 'reserved: DELETE withdraws the offer',
    agent: 'reserved',
    contact: 'offered',
    method: 'DELETE',
    path: '/agents/a1',
    status: 200,
    facts: ['AssignmentRejected', 'AgentRemoved'],
    agentAfter: null,
    contactAfter: { state: 'queued', excludedAgents: ['a1'] },
  },
  {
    name: 'reserved: PATCH skills keeps the offer',
    agent: 'reserved',
    contact: 'offered',
    method: 'PATCH',
    path: '/agents/a1',
    body: { skills: ['t'] },
    status: 200,
    facts: ['AgentUpdated'],
    agentAfter: { state: 'reserved', skills: ['t'], activeContacts: ['c1'] },
    contactAfter: { state: 'offered', agentId: 'a1' },
  },
  {
    name: 'busy: DELETE is agent-busy',
    agent: 'busy',
    contact: 'assigned',
    method: 'DELETE',
    path: '/agents/a1',
    status: 409,
    problem: 'agent-busy',
    facts: ['CommandRejected'],
    agentAfter: { state: 'busy', activeContacts: ['c1'] },
    contactAfter: { state: 'assigned' },
  },
  {
    name: 'busy and offline: DELETE is agent-busy',
    agent: 'busy',
    contact: 'assigned',
    method: 'DELETE',
    path: '/agents/a1',
    status: 409,
    problem: 'agent-busy',
    facts: ['CommandRejected'],
    agentAfter: { state: 'offline', activeContacts: ['c1'] },
    contactAfter: { state: 'assigned' },
  },
  {
    name: 'busy: offline (log out while assigned) keeps the contact',
    agent: 'busy',
    contact: 'assigned',
    method: 'POST',
    path: '/agents/a1/state',
    body: { state: 'offline' },
    status: 200,
    facts: ['AgentStateChanged'],
    agentAfter: { state: 'offline', activeContacts: ['c1'] },
    contactAfter: { state: 'assigned', agentId: 'a1' },
  },
  {
    name: 'busy: available again is no change',
    agent: 'busy',
    contact: 'assigned',
    method: 'POST',
    path: '/agents/a1/state',
    body: { state: 'available' },
    status: 200,
    facts: [],
    agentAfter: { state: 'busy' },
  },
  {
    name: 'busy: PATCH skills',
    agent: 'busy',
    contact: 'assigned',
    method: 'PATCH',
    path: '/agents/a1',
    body: { skills: ['t'] },
    status: 200,
    facts: ['AgentUpdated'],
    agentAfter: { state: 'busy', skills: ['t'], activeContacts: ['c1'] },
  },
  {
    name: 'wrapup: available ends it early',
    agent: 'wrapup',
    contact: 'completed',
    method: 'POST',
    path: '/agents/a1/state',
    body: { state: 'available' },
    status: 200,
    facts: ['WrapUpEnded'],
    agentAfter: { state: 'available' },
  },
  {
    name: 'wrapup: away ends it, no WrapUpEnded',
    agent: 'wrapup',
    contact: 'completed',
    method: 'POST',
    path: '/agents/a1/state',
    body: { state: 'away' },
    status: 200,
    facts: ['AgentStateChanged'],
    agentAfter: { state: 'away' },
  },
  {
    name: 'wrapup: DELETE (no contacts held)',
    agent: 'wrapup',
    contact: 'completed',
    method: 'DELETE',
    path: '/agents/a1',
    status: 200,
    facts: ['AgentRemoved'],
    agentAfter: null,
  },
  {
    name: 'wrapup: PATCH skills keeps the wrap-up',
    agent: 'wrapup',
    contact: 'completed',
    method: 'PATCH',
    path: '/agents/a1',
    body: { skills: ['t'] },
    status: 200,
    facts: ['AgentUpdated'],
    agentAfter: { state: 'wrapup', skills: ['t'] },
  },
  {
    name: 'wrapup: complete of the completed contact',
    agent: 'wrapup',
    contact: 'completed',
    method: 'POST',
    path: '/contacts/c1/complete',
    status: 409,
    problem: 'contact-not-assigned',
    facts: ['CommandRejected'],
    agentAfter: { state: 'wrapup' },
    contactAfter: { state: 'completed' },
  },
  // The contact's commands, in each of the contact's states.
  ...contactCells(),
  {
    name: 'busy and offline: complete ends the contact, no wrap-up',
    agent: 'busy',
    contact: 'assigned',
    method: 'POST',
    path: '/contacts/c1/complete',
    status: 200,
    facts: ['ContactCompleted'],
    contactAfter: { state: 'completed' },
  },
];

function contactCells(): Cell[] {
  const rows: [ContactState, string, unknown, number, string | undefined, string[], Partial<Json>?][] = [
    ['queued', 'abandon', undefined, 200, undefined, ['ContactAbandoned'], { state: 'abandoned' }],
    ['queued', 'complete', undefined, 409, 'contact-not-assigned', ['CommandRejected'], { state: 'queued' }],
    ['queued', 'transfer', { skills: ['s'] }, 409, 'contact-not-assigned', ['CommandRejected']],
    ['queued', 'accept', { agentId: 'a1' }, 409, 'contact-not-offered', ['CommandRejected']],
    ['queued', 'reject', { agentId: 'a1' }, 409, 'contact-not-offered', ['CommandRejected']],
    ['offered', 'abandon', undefined, 200, undefined, ['ContactAbandoned'], { state: 'abandoned' }],
    [
      'offered',
      'complete',
      undefined,
      409,
      'contact-not-assigned',
      ['CommandRejected'],
      { state: 'offered' },
    ],
    ['offered', 'transfer', { skills: ['s'] }, 409, 'contact-not-assigned', ['CommandRejected']],
    ['offered', 'accept', { agentId: 'a1' }, 200, undefined, ['AssignmentAccepted'], { state: 'assigned' }],
    [
      'offered',
      'accept',
      { agentId: 'a2' },
      409,
      'offer-not-yours',
      ['CommandRejected'],
      { state: 'offered' },
    ],
    ['offered', 'reject', { agentId: 'a1' }, 200, undefined, ['AssignmentRejected'], { state: 'queued' }],
    [
      'offered',
      'reject',
      { agentId: 'a2' },
      409,
      'offer-not-yours',
      ['CommandRejected'],
      { state: 'offered' },
    ],
    ['offered', 'accept', { agentId: 'nobody' }, 409, 'offer-not-yours', ['CommandRejected']],
    ['assigned', 'abandon', undefined, 409, 'contact-not-queued', ['CommandRejected'], { state: 'assigned' }],
    [
      'assigned',
      'complete',
      undefined,
      200,
      undefined,
      ['ContactCompleted', 'WrapUpStarted'],
      { state: 'completed' },
    ],
    [
      'assigned',
      'transfer',
      { skills: ['s'] },
      200,
      undefined,
      ['ContactTransferred', 'WrapUpStarted'],
      { state: 'queued' },
    ],
    ['assigned', 'accept', { agentId: 'a1' }, 409, 'contact-not-offered', ['CommandRejected']],
    ['assigned', 'reject', { agentId: 'a1' }, 409, 'contact-not-offered', ['CommandRejected']],
  ];
  for (const s of ['completed', 'abandoned', 'expired'] as const) {
    rows.push(
      [s, 'abandon', undefined, 409, 'contact-not-queued', ['CommandRejected'], { state: s }],
      [s, 'complete', undefined, 409, 'contact-not-assigned', ['CommandRejected'], { state: s }],
      [s, 'transfer', { skills: ['s'] }, 409, 'contact-not-assigned', ['CommandRejected'], { state: s }],
      [s, 'accept', { agentId: 'a1' }, 409, 'contact-not-offered', ['CommandRejected'], { state: s }],
      [s, 'reject', { agentId: 'a1' }, 409, 'contact-not-offered', ['CommandRejected'], { state: s }],
    );
  }
  return rows.map(([contact, verb, body, status, problem, facts, contactAfter]) => ({
    name: `contact ${contact}: ${verb}${body ? ` ${JSON.stringify(body)}` : ''}`,
    contact,
    method: 'POST' as const,
    path: `/contacts/c1/${verb}`,
    ...(body !== undefined ? { body } : {}),
    status,
    ...(problem ? { problem } : {}),
    facts,
    ...(contactAfter ? { contactAfter } : {}),
  }));
}

const unknownCells: [string, string, unknown, string][] = [
  ['POST', '/contacts/nope/abandon', undefined, 'contact-not-found'],
  ['POST', '/contacts/nope/complete', undefined, 'contact-not-found'],
  ['POST', '/contacts/nope/transfer', { skills: ['s'] }, 'contact-not-found'],
  ['POST', '/contacts/nope/accept', { agentId: 'a1' }, 'contact-not-found'],
  ['POST', '/contacts/nope/reject', { agentId: 'a1' }, 'contact-not-found'],
  ['POST', '/agents/nope/state', { state: 'available' }, 'agent-not-found'],
  ['PATCH', '/agents/nope', { skills: ['s'] }, 'agent-not-found'],
  ['DELETE', '/agents/nope', undefined, 'agent-not-found'],
];

const wsOf = (i: number) => `states-${i}`;
const api = inProcessApi([...cells.map((_, i) => wsOf(i)), 'states-unknown']);
const { call, ok, until } = api;
const at = (ws: string, p: string) => `/v1/workspaces/${ws}${p}`;

async function allEvents(ws: string): Promise<{ type: string; data: Json }[]> {
  return (await ok('GET', ws, '/events?limit=1000')).events as { type: string; data: Json }[];
}

/** Puts `ws` in the cell's states: a1 (skill s, capacity 1) and c1 (skills s). */
async function arrange(ws: string, cell: Cell): Promise<void> {
  await ok('PUT', ws, '/settings', { offerTimeoutMs: 600_000, wrapUpMs: 600_000 });
  await ok('POST', ws, '/agents', { id: 'a1', skills: ['s'] });
  await ok('POST', ws, '/agents', { id: 'a2', skills: ['x'] });
  const agent =
    cell.agent ?? (['offered', 'assigned', 'completed'].includes(cell.contact ?? '') ? 'busy' : 'offline');
  if (agent === 'available' || agent === 'away') await ok('POST', ws, '/agents/a1/state', { state: agent });
  const contact = cell.contact;
  if (!contact) return;
  if (contact === 'expired') {
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'], maxWaitMs: 200 });
    await until(ws, '/contacts/c1', (c) => c.state === 'expired');
    return;
  }
  await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
  if (contact === 'abandoned') await ok('POST', ws, '/contacts/c1/abandon');
  if (contact === 'queued' || contact === 'abandoned') return;
  await ok('POST', ws, '/agents/a1/state', { state: 'available' });
  await until(ws, '/contacts/c1', (c) => c.state === 'offered');
  if (contact === 'offered') return;
  await ok('POST', ws, '/contacts/c1/accept', { agentId: 'a1' });
  if (contact === 'assigned') {
    if (cell.name.startsWith('busy and offline'))
      await ok('POST', ws, '/agents/a1/state', { state: 'offline' });
    return;
  }
  await ok('POST', ws, '/contacts/c1/complete');
  await until(ws, '/agents/a1', (a) => a.state === 'wrapup');
}

describe('every command in every state', () => {
  it.each(cells.map((c, i) => [c.name, c, i] as const))('%s', async (_name, cell, i) => {
    const ws = wsOf(i);
    await arrange(ws, cell);
    const before = (await allEvents(ws)).length;
    const keyed = async () => {
      const res = await api.running.api?.inject({
        method: cell.method,
        url: at(ws, cell.path),
        headers: { 'idempotency-key': `k-${i}` },
        ...(cell.body !== undefined ? { payload: cell.body as Json } : {}),
      });
      if (!res) throw new Error('no api');
      return {
        status: res.statusCode,
        type: String(res.headers['content-type']),
        body: res.json() as Json,
        res,
      };
    };
    const r = await keyed();
    expect(r.status, JSON.stringify(r.body)).toBe(cell.status);
    expect(r.res.headers['idempotent-replayed']).toBeUndefined();
    if (cell.problem) {
      expect(r.type).toMatch(/^application\/problem\+json/);
      expect(r.body.type).toBe(`/problems/${cell.problem}`);
      expect(r.body.commandId, 'a refusal names its command').toEqual(expect.any(String));
    }
    const position = r.body.position as string | undefined;
    const q = position ? `?minPosition=${position}` : '';
    const evs = (await allEvents(ws)).slice(before);
    expect(
      evs.map((e) => e.type).filter((t) => t !== 'AssignmentMade'),
      'the facts appended',
    ).toEqual(cell.facts);
    if (cell.agentAfter === null) {
      const g = await call('GET', at(ws, `/agents/a1${q}`));
      expect(g.status).toBe(404);
    } else if (cell.agentAfter) {
      const a = await ok('GET', ws, `/agents/a1${q}`);
      expect(a).toMatchObject(cell.agentAfter);
      // The availability listing (routing's pools) holds it exactly when its state says available.
      const skill = (a.skills as string[])[0];
      const listed = (await ok('GET', ws, `/agents?state=available&skill=${skill}`)).agents as Json[];
      expect(listed.map((x) => x.id)).toEqual(a.state === 'available' ? ['a1'] : []);
      const byState = (await ok('GET', ws, `/agents?state=${a.state}`)).agents as Json[];
      expect(byState.map((x) => x.id)).toContain('a1');
    }
    if (cell.contactAfter) {
      const c = await ok('GET', ws, `/contacts/c1${q}`);
      expect(c).toMatchObject(cell.contactAfter);
    }
    // The same key again: the first outcome, nothing appended.
    const n = (await allEvents(ws)).length;
    const replayed = await keyed();
    expect(replayed.status).toBe(r.status);
    expect(replayed.body).toEqual(r.body);
    expect(replayed.res.headers['idempotent-replayed']).toBe('true');
    expect((await allEvents(ws)).length).toBe(n);
    // The same command again: a refusal is refused alike; a no-op appends no fact.
    const again = await call(cell.method, at(ws, cell.path), cell.body);
    if (cell.status >= 400) {
      expect(again.status).toBe(cell.status);
      expect(again.body.type).toBe(`/problems/${cell.problem}`);
    }
    if (cell.facts.length === 0) {
      expect(again.status).toBe(200);
      expect((await allEvents(ws)).length).toBe(before);
    }
    // A command that was applied, sent again with no key: the answer its new state gives.
    if (cell.status < 300 && cell.facts.length > 0) {
      const verb =
        cell.method === 'DELETE' ? 'delete' : cell.method === 'PATCH' ? 'patch' : cell.path.split('/').at(-1);
      const expected: Record<string, [number, string?]> = {
        delete: [404, 'agent-not-found'],
        patch: [200],
        state: [200],
        abandon: [409, 'contact-not-queued'],
        complete: [409, 'contact-not-assigned'],
        transfer: [409, 'contact-not-assigned'],
        accept: [409, 'contact-not-offered'],
        reject: [409, 'contact-not-offered'],
      };
      const [status, problem] = expected[verb ?? ''] ?? [0];
      expect(again.status, `${verb} again: ${JSON.stringify(again.body)}`).toBe(status);
      if (problem) expect(again.body.type).toBe(`/problems/${problem}`);
      if (verb === 'state') {
        const n2 = (await allEvents(ws)).length;
        expect(n2, 'a state set again appends nothing').toBe(n);
      }
    }
    const audit = await auditWorkspace(api.running.redis, ws, { idle: true });
    expect(audit.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
    expect(audit.state).toBe('compared');
  });

  it.each(unknownCells)('%s %s of an unknown document: %s', async (method, path, body, problem) => {
    const ws = 'states-unknown';
    await call('POST', at(ws, '/agents'), { id: 'a1', skills: ['s'] });
    const r = await call(method as 'POST', at(ws, path), body);
    expect(r.status, JSON.stringify(r.body)).toBe(404);
    expect(r.body.type).toBe(`/problems/${problem}`);
  });
});

const moreWs = [
  'states-abandon-offered',
  'states-expire-offered',
  'states-offer-expires',
  'states-away-complete',
  'states-offline-transfer',
  'states-capacity',
  'states-wrapup-null',
  'states-channels',
  'states-accept-twice',
  'states-reject-reoffer',
  'states-withdrawn-accept',
  'states-removed-wrapup',
  'states-offline-wrapup',
  'states-since',
  'states-withdraw-from',
  'states-two-channels',
];
const more = inProcessApi(moreWs);

const evsOf = async (ws: string) =>
  (await more.ok('GET', ws, '/events?limit=1000')).events as { type: string; data: Json; position: string }[];
const tail = async (ws: string, from: number) => (await evsOf(ws)).slice(from);
const audited = async (ws: string) => {
  const audit = await auditWorkspace(more.running.redis, ws, { idle: true });
  expect(audit.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
  expect(audit.state).toBe('compared');
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** a1 (skill s) available with c1 offered to it. */
async function offeredTo(ws: string, settings: Json, contact: Json = {}): Promise<void> {
  await more.ok('PUT', ws, '/settings', settings);
  await more.ok('POST', ws, '/agents', { id: 'a1', skills: ['s'] });
  await more.ok('POST', ws, '/agents/a1/state', { state: 'available' });
  await more.ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'], ...contact });
  await more.until(ws, '/contacts/c1', (c) => c.state === 'offered');
}

describe('transitions across both sides', () => {
  it('abandon while offered names the agent and frees it', async () => {
    const ws = 'states-abandon-offered';
    await offeredTo(ws, { offerTimeoutMs: 600_000 });
    const n = (await evsOf(ws)).length;
    const r = await more.ok('POST', ws, '/contacts/c1/abandon');
    expect(r).toMatchObject({ state: 'abandoned' });
    const evs = await tail(ws, n);
    expect(evs.map((e) => e.type)).toEqual(['ContactAbandoned']);
    expect(evs[0]?.data).toMatchObject({ contactId: 'c1', agentId: 'a1' });
    const a = await more.ok('GET', ws, `/agents/a1?minPosition=${r.position}`);
    expect(a).toMatchObject({ state: 'available', activeContacts: [] });
    await audited(ws);
  });

  it('maximum wait while offered: ContactExpired names the agent, the agent is free', async () => {
    const ws = 'states-expire-offered';
    await offeredTo(ws, { offerTimeoutMs: 600_000 }, { maxWaitMs: 1500 });
    await more.until(ws, '/contacts/c1', (c) => c.state === 'expired');
    const evs = (await evsOf(ws)).filter((e) => e.type === 'ContactExpired');
    expect(evs.map((e) => e.data)).toEqual([expect.objectContaining({ contactId: 'c1', agentId: 'a1' })]);
    const a = await more.ok('GET', ws, '/agents/a1');
    expect(a).toMatchObject({ state: 'available', activeContacts: [] });
    await more.problem('POST', ws, '/contacts/c1/accept', { agentId: 'a1' }, 409, 'contact-not-offered');
    await audited(ws);
  });

  it('an offer that expires: AssignmentExpired, then the agent away', async () => {
    const ws = 'states-offer-expires';
    await offeredTo(ws, { offerTimeoutMs: 300 });
    const n = (await evsOf(ws)).length;
    await more.until(ws, '/agents/a1', (a) => a.state === 'away');
    const evs = await tail(ws, n);
    expect(evs.map((e) => e.type)).toEqual(['AssignmentExpired', 'AgentStateChanged']);
    expect(evs[1]?.data).toMatchObject({ agentId: 'a1', from: 'available', to: 'away' });
    const c = await more.ok('GET', ws, '/contacts/c1');
    expect(c).toMatchObject({ state: 'queued', excludedAgents: ['a1'] });
    expect(c.agentId).toBeUndefined();
    await more.problem('POST', ws, '/contacts/c1/accept', { agentId: 'a1' }, 409, 'contact-not-offered');
    await more.problem('POST', ws, '/contacts/c1/reject', { agentId: 'a1' }, 409, 'contact-not-offered');
    // Back available: excluded, so no second offer to a1.
    await more.ok('POST', ws, '/agents/a1/state', { state: 'available' });
    await sleep(400);
    expect((await evsOf(ws)).filter((e) => e.type === 'AssignmentMade')).toHaveLength(1);
    await audited(ws);
  });

  it('complete by an agent away: no wrap-up', async () => {
    const ws = 'states-away-complete';
    await offeredTo(ws, { offerTimeoutMs: 600_000, wrapUpMs: 600_000 });
    await more.ok('POST', ws, '/contacts/c1/accept', { agentId: 'a1' });
    await more.ok('POST', ws, '/agents/a1/state', { state: 'away' });
    const n = (await evsOf(ws)).length;
    const r = await more.ok('POST', ws, '/contacts/c1/complete');
    expect((await tail(ws, n)).map((e) => e.type)).toEqual(['ContactCompleted']);
    const a = await more.ok('GET', ws, `/agents/a1?minPosition=${r.position}`);
    expect(a).toMatchObject({ state: 'away', activeContacts: [] });
    expect(a.wrapUpUntil).toBeUndefined();
    await audited(ws);
  });

  it('transfer by an agent offline: no wrap-up, the contact queued again', async () => {
    const ws = 'states-offline-transfer';
    await offeredTo(ws, { offerTimeoutMs: 600_000, wrapUpMs: 600_000 });
    await more.ok('POST', ws, '/contacts/c1/accept', { agentId: 'a1' });
    await more.ok('POST', ws, '/agents/a1/state', { state: 'offline' });
    const n = (await evsOf(ws)).length;
    const r = await more.ok('POST', ws, '/contacts/c1/transfer', { skills: ['s'] });
    expect(r).toMatchObject({ state: 'queued' });
    expect((await tail(ws, n)).map((e) => e.type)).toEqual(['ContactTransferred']);
    const a = await more.ok('GET', ws, `/agents/a1?minPosition=${r.position}`);
    expect(a).toMatchObject({ state: 'offline', activeContacts: [] });
    await audited(ws);
  });

  it('PATCH capacity while holding contacts: busy, available, busy', async () => {
    const ws = 'states-capacity';
    await offeredTo(ws, { offerTimeoutMs: 600_000 });
    await more.ok('POST', ws, '/contacts/c1/accept', { agentId: 'a1' });
    await more.ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'] });
    expect((await more.ok('GET', ws, '/agents/a1')).state).toBe('busy');
    const r = await more.ok('PATCH', ws, '/agents/a1', { capacity: 2 });
    expect(r).toMatchObject({ capacity: 2, activeContacts: ['c1'] });
    await more.until(ws, '/contacts/c2', (c) => c.state === 'offered' && c.agentId === 'a1');
    const a = await more.ok('GET', ws, '/agents/a1');
    expect(a).toMatchObject({ state: 'reserved', activeContacts: ['c1', 'c2'] });
    const down = await more.ok('PATCH', ws, '/agents/a1', { capacity: 1 });
    expect(down).toMatchObject({ capacity: 1, activeContacts: ['c1', 'c2'] });
    await more.ok('POST', ws, '/contacts/c2/accept', { agentId: 'a1' });
    expect((await more.ok('GET', ws, '/agents/a1')).state).toBe('busy');
    await more.ok('POST', ws, '/contacts/c2/complete');
    // One held of capacity 1: still busy, and no third contact is offered.
    await more.ok('POST', ws, '/contacts', { id: 'c3', skills: ['s'] });
    await sleep(300);
    expect((await more.ok('GET', ws, '/agents/a1')).state).toBe('busy');
    expect((await more.ok('GET', ws, '/contacts/c3')).state).toBe('queued');
    await audited(ws);
  });

  it('PATCH wrapUpMs null during a wrap-up keeps its end', async () => {
    const ws = 'states-wrapup-null';
    await more.ok('PUT', ws, '/settings', { wrapUpMs: 600_000 });
    await more.ok('POST', ws, '/agents', { id: 'a1', skills: ['s'], wrapUpMs: 500_000 });
    await more.ok('POST', ws, '/agents/a1/state', { state: 'available' });
    await more.ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await more.until(ws, '/contacts/c1', (c) => c.state === 'assigned');
    await more.ok('POST', ws, '/contacts/c1/complete');
    const w = await more.until(ws, '/agents/a1', (a) => a.state === 'wrapup');
    const r = await more.ok('PATCH', ws, '/agents/a1', { wrapUpMs: null });
    expect(r.wrapUpMs).toBeUndefined();
    expect(r).toMatchObject({ state: 'wrapup', wrapUpUntil: w.wrapUpUntil });
    await audited(ws);
  });

  it('capacity per channel: an offer on chat, abandoned, gives chat back only', async () => {
    const ws = 'states-channels';
    await more.ok('PUT', ws, '/settings', { offerTimeoutMs: 600_000, channels: ['chat', 'voice'] });
    await more.ok('POST', ws, '/agents', { id: 'a1', skills: ['s'], capacity: { voice: 1, chat: 2 } });
    await more.ok('POST', ws, '/agents/a1/state', { state: 'available' });
    const before = await more.ok('GET', ws, '/agents/a1');
    await more.ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'], channel: 'voice' });
    await more.until(ws, '/contacts/c1', (c) => c.state === 'offered');
    const held = await more.ok('GET', ws, '/agents/a1');
    expect(held).toMatchObject({ state: 'reserved', activeContacts: ['c1'] });
    expect(Object.keys(held.availableSinceByChannel as Json)).toEqual(['chat']);
    await more.ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'], channel: 'chat' });
    await more.until(ws, '/contacts/c2', (c) => c.state === 'offered');
    const r = await more.ok('POST', ws, '/contacts/c1/abandon');
    const a = await more.ok('GET', ws, `/agents/a1?minPosition=${r.position}`);
    expect(a).toMatchObject({ state: 'reserved', activeContacts: ['c2'] });
    expect(Object.keys(a.availableSinceByChannel as Json).sort()).toEqual(['chat', 'voice']);
    // chat kept its place; voice came back anew.
    expect((a.availableSinceByChannel as Json).chat).toBe((before.availableSinceByChannel as Json).chat);
    await more.ok('POST', ws, '/contacts/c2/reject', { agentId: 'a1' });
    const free = await more.ok('GET', ws, '/agents/a1');
    expect(free).toMatchObject({ state: 'available', activeContacts: [] });
    await audited(ws);
  });

  it('accept twice: the same key answers the same 200, another is contact-not-offered', async () => {
    const ws = 'states-accept-twice';
    await offeredTo(ws, { offerTimeoutMs: 600_000 });
    const url = '/v1/workspaces/states-accept-twice/contacts/c1/accept';
    const send = (key: string) =>
      more.running.api?.inject({
        method: 'POST',
        url,
        headers: { 'idempotency-key': key },
        payload: { agentId: 'a1' },
      });
    const first = await send('k1');
    const again = await send('k1');
    expect(first?.statusCode).toBe(200);
    expect(again?.statusCode).toBe(200);
    expect(again?.headers['idempotent-replayed']).toBe('true');
    expect(again?.json()).toEqual(first?.json());
    const other = await send('k2');
    expect(other?.statusCode).toBe(409);
    expect(other?.json().type).toBe('/problems/contact-not-offered');
    expect((await evsOf(ws)).filter((e) => e.type === 'AssignmentAccepted')).toHaveLength(1);
    await audited(ws);
  });

  it('a rejected offer goes to the next agent, never back to the one who rejected', async () => {
    const ws = 'states-reject-reoffer';
    await offeredTo(ws, { offerTimeoutMs: 600_000 });
    await more.ok('POST', ws, '/contacts/c1/reject', { agentId: 'a1' });
    await sleep(300);
    expect((await more.ok('GET', ws, '/contacts/c1')).state).toBe('queued');
    expect((await more.ok('GET', ws, '/agents/a1')).state).toBe('available');
    await more.ok('POST', ws, '/agents', { id: 'a3', skills: ['s'] });
    await more.ok('POST', ws, '/agents/a3/state', { state: 'available' });
    const c = await more.until(ws, '/contacts/c1', (x) => x.state === 'offered');
    expect(c).toMatchObject({ agentId: 'a3', excludedAgents: ['a1'] });
    const made = (await evsOf(ws)).filter((e) => e.type === 'AssignmentMade').map((e) => e.data.agentId);
    expect(made).toEqual(['a1', 'a3']);
    await more.problem('POST', ws, '/contacts/c1/reject', { agentId: 'a1' }, 409, 'offer-not-yours');
    await audited(ws);
  });

  it('accept after the offer was withdrawn (agent away, back) is contact-not-offered', async () => {
    const ws = 'states-withdrawn-accept';
    await offeredTo(ws, { offerTimeoutMs: 600_000 });
    await more.ok('POST', ws, '/agents/a1/state', { state: 'away' });
    await more.ok('POST', ws, '/agents/a1/state', { state: 'available' });
    const p = await more.problem(
      'POST',
      ws,
      '/contacts/c1/accept',
      { agentId: 'a1' },
      409,
      'contact-not-offered',
    );
    expect(p.commandId).toEqual(expect.any(String));
    const rej = (await evsOf(ws)).filter((e) => e.type === 'AssignmentRejected');
    expect(rej.map((e) => e.data.reason)).toEqual(['presence']);
    await audited(ws);
  });

  it('an agent removed during its wrap-up and registered again starts clean', async () => {
    const ws = 'states-removed-wrapup';
    await more.ok('PUT', ws, '/settings', { wrapUpMs: 1000 });
    await more.ok('POST', ws, '/agents', { id: 'a1', skills: ['s'] });
    await more.ok('POST', ws, '/agents/a1/state', { state: 'available' });
    await more.ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await more.until(ws, '/contacts/c1', (c) => c.state === 'assigned');
    await more.ok('POST', ws, '/contacts/c1/complete');
    await more.until(ws, '/agents/a1', (a) => a.state === 'wrapup');
    await more.ok('DELETE', ws, '/agents/a1');
    const a = await more.ok('POST', ws, '/agents', { id: 'a1', skills: ['s'] });
    expect(a).toMatchObject({ state: 'offline', activeContacts: [] });
    expect(a.wrapUpUntil).toBeUndefined();
    await more.ok('POST', ws, '/agents/a1/state', { state: 'available' });
    await more.ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'] });
    await more.until(ws, '/contacts/c2', (c) => c.state === 'assigned');
    await more.ok('POST', ws, '/contacts/c2/complete');
    await more.until(ws, '/agents/a1', (x) => x.state === 'wrapup');
    await more.until(ws, '/agents/a1', (x) => x.state === 'available', 5000);
    const ended = (await evsOf(ws)).filter((e) => e.type === 'WrapUpEnded');
    expect(ended).toHaveLength(1);
    await audited(ws);
  });

  it('offline during a wrap-up: its timer ends nothing later', async () => {
    const ws = 'states-offline-wrapup';
    await more.ok('PUT', ws, '/settings', { wrapUpMs: 400 });
    await more.ok('POST', ws, '/agents', { id: 'a1', skills: ['s'] });
    await more.ok('POST', ws, '/agents/a1/state', { state: 'available' });
    await more.ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await more.until(ws, '/contacts/c1', (c) => c.state === 'assigned');
    await more.ok('POST', ws, '/contacts/c1/complete');
    await more.ok('POST', ws, '/agents/a1/state', { state: 'offline' });
    const n = (await evsOf(ws)).length;
    await sleep(900);
    expect(await tail(ws, n)).toEqual([]);
    const a = await more.ok('POST', ws, '/agents/a1/state', { state: 'available' });
    expect(a).toMatchObject({ state: 'available' });
    expect(a.wrapUpUntil).toBeUndefined();
    await audited(ws);
  });

  it('available-since: kept through a PATCH, new after away, a wrap-up or an offer that ends', async () => {
    const ws = 'states-since';
    await more.ok('PUT', ws, '/settings', { offerTimeoutMs: 600_000, wrapUpMs: 600_000 });
    await more.ok('POST', ws, '/agents', { id: 'a1', skills: ['s'] });
    const on = await more.ok('POST', ws, '/agents/a1/state', { state: 'available' });
    const since0 = on.availableSince as string;
    expect(since0).toEqual(expect.any(String));
    await sleep(5);
    const p = await more.ok('PATCH', ws, '/agents/a1', { skills: ['s', 't'], capacity: 2 });
    expect(p.availableSince).toBe(since0);
    // Lowered to what it holds (nothing: still able) and raised: kept.
    expect((await more.ok('PATCH', ws, '/agents/a1', { capacity: 1 })).availableSince).toBe(since0);
    await more.ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await more.until(ws, '/contacts/c1', (c) => c.state === 'offered');
    expect((await more.ok('GET', ws, '/agents/a1')).availableSince).toBeNull();
    await sleep(5);
    const r = await more.ok('POST', ws, '/contacts/c1/reject', { agentId: 'a1' });
    const back = await more.ok('GET', ws, `/agents/a1?minPosition=${r.position}`);
    expect(back.state).toBe('available');
    expect(Date.parse(back.availableSince as string)).toBeGreaterThan(Date.parse(since0));
    await more.ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'] });
    await more.until(ws, '/contacts/c2', (c) => c.state === 'offered');
    await more.ok('POST', ws, '/contacts/c2/accept', { agentId: 'a1' });
    await more.ok('POST', ws, '/contacts/c2/complete');
    const w = await more.ok('GET', ws, '/agents/a1');
    expect(w).toMatchObject({ state: 'wrapup', availableSince: null });
    await sleep(5);
    const done = await more.ok('POST', ws, '/agents/a1/state', { state: 'available' });
    expect(Date.parse(done.availableSince as string)).toBeGreaterThan(
      Date.parse(back.availableSince as string),
    );
    await sleep(5);
    await more.ok('POST', ws, '/agents/a1/state', { state: 'away' });
    const again = await more.ok('POST', ws, '/agents/a1/state', { state: 'available' });
    expect(Date.parse(again.availableSince as string)).toBeGreaterThan(
      Date.parse(done.availableSince as string),
    );
    await audited(ws);
  });

  it('an offer withdrawn by presence: AssignmentRejected, then AgentStateChanged from the state without it', async () => {
    const ws = 'states-withdraw-from';
    await offeredTo(ws, { offerTimeoutMs: 600_000 });
    const n = (await evsOf(ws)).length;
    const r = await more.ok('POST', ws, '/agents/a1/state', { state: 'offline' });
    expect(r).toMatchObject({
      state: 'offline',
      presence: 'offline',
      activeContacts: [],
      availableSince: null,
    });
    const evs = await tail(ws, n);
    expect(evs.map((e) => e.type)).toEqual(['AssignmentRejected', 'AgentStateChanged']);
    expect(evs[0]?.data).toMatchObject({ contactId: 'c1', agentId: 'a1', reason: 'presence' });
    // `from`: the state the agent was in, the offer with it (the model's presence change).
    expect(evs[1]?.data).toMatchObject({
      agentId: 'a1',
      from: 'reserved',
      to: 'offline',
      presence: 'offline',
      availableSince: null,
    });
    await audited(ws);
  });

  it('capacity per channel: away withdraws an offer on each channel, then one AgentStateChanged', async () => {
    const ws = 'states-two-channels';
    await more.ok('PUT', ws, '/settings', {
      offerTimeoutMs: 600_000,
      wrapUpMs: 600_000,
      channels: ['chat', 'voice'],
    });
    await more.ok('POST', ws, '/agents', { id: 'a1', skills: ['s'], capacity: { voice: 1, chat: 1 } });
    await more.ok('POST', ws, '/agents/a1/state', { state: 'available' });
    await more.ok('POST', ws, '/contacts', { id: 'v1', skills: ['s'], channel: 'voice' });
    await more.ok('POST', ws, '/contacts', { id: 'h1', skills: ['s'], channel: 'chat' });
    await more.until(ws, '/contacts/h1', (c) => c.state === 'offered');
    await more.until(ws, '/contacts/v1', (c) => c.state === 'offered');
    const held = await more.ok('GET', ws, '/agents/a1');
    expect(held).toMatchObject({ state: 'reserved', availableSince: null });
    expect(held.availableSinceByChannel ?? {}).toEqual({});
    await more.ok('POST', ws, '/contacts/v1/accept', { agentId: 'a1' });
    // A completion on voice while chat is offered: the wrap-up holds both channels.
    await more.ok('POST', ws, '/contacts/v1/complete');
    const w = await more.ok('GET', ws, '/agents/a1');
    expect(w).toMatchObject({ state: 'wrapup', activeContacts: ['h1'] });
    const n = (await evsOf(ws)).length;
    const r = await more.ok('POST', ws, '/agents/a1/state', { state: 'away' });
    expect(r).toMatchObject({ state: 'away', activeContacts: [] });
    expect(r.wrapUpUntil).toBeUndefined();
    const evs = await tail(ws, n);
    expect(evs.map((e) => e.type)).toEqual(['AssignmentRejected', 'AgentStateChanged']);
    expect(evs[1]?.data).toMatchObject({ from: 'wrapup', to: 'away' });
    const back = await more.ok('POST', ws, '/agents/a1/state', { state: 'available' });
    expect(Object.keys(back.availableSinceByChannel as Json).sort()).toEqual(['chat', 'voice']);
    // h1 turned down by a1 (withdrawn): it stays queued; a new voice contact is offered.
    await more.ok('POST', ws, '/contacts', { id: 'v2', skills: ['s'], channel: 'voice' });
    await more.until(ws, '/contacts/v2', (c) => c.state === 'offered' && c.agentId === 'a1');
    expect((await more.ok('GET', ws, '/contacts/h1')).state).toBe('queued');
    await audited(ws);
  });
});
