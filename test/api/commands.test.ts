/**
 * The command and query routes of API.md, in-process against a real Redis: every command's
 * success and rejection answers, Location, server-made ids, Idempotency-Key (repeat, concurrent
 * repeat, reuse, expiry), the 202 path when no projector answers in time, the agent state flow
 * through an assignment, LAA listing, stats, read-your-writes with `minPosition`, event paging,
 * and the operations routes.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendCommand, fingerprintOf, legacyFingerprintOf } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { type Running, startSwitchboard, VERSION } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

/** One workspace per test; the main instance serves these from the start (no discovery delay). */
const WS = {
  agents: 'api-cmd-agents',
  contacts: 'api-cmd-contacts',
  flow: 'api-cmd-flow',
  idem: 'api-cmd-idem',
  laa: 'api-cmd-laa',
  queries: 'api-cmd-queries',
  stats: 'api-cmd-stats',
  events: 'api-cmd-events',
  ops: 'api-cmd-ops',
} as const;
/** Served by no projector until the test that uses it starts one. */
const DEFERRED = 'api-cmd-deferred';
const RYW = 'api-cmd-ryw';
const CONCURRENT_REPEAT = 'api-cmd-concurrent-repeat';
/** Served by an instance whose Idempotency-Keys live one second. */
const SHORT_TTL = 'api-cmd-short-ttl';

const POSITION = /^\d+-\d+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const log = pino({ level: 'silent' });

type Json = Record<string, unknown>;
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
  skills: string[];
  activeContacts: string[];
  availableSince: string | null;
  position: string;
}
interface Contact extends Json {
  id: string;
  state: string;
  agentId?: string;
  position: string;
}
interface Envelope {
  position: string;
  type: string;
  workspace: string;
  at: string;
  data: Json;
  meta: Json;
}

let redis: TestRedis;
let running: Running;
const extra: Running[] = [];

function env(more: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...redis.env, AUTH: 'off', PORT: '0', LOG_LEVEL: 'silent', COMMAND_TIMEOUT_MS: '2000', ...more };
}

async function start(more: Record<string, string>): Promise<Running> {
  const r = await startSwitchboard(loadConfig(env(more)), log);
  extra.push(r);
  return r;
}

beforeAll(async () => {
  redis = await startTestRedis();
  running = await startSwitchboard(
    loadConfig(env({ WORKSPACES: Object.values(WS).join(','), DISCOVER_WORKSPACES: 'false' })),
    log,
  );
  await projectorReady(running.redis, Object.values(WS));
});

afterAll(async () => {
  for (const r of extra.reverse()) await r.stop();
  await running?.stop();
  await redis?.stop();
});

function api(r: Running = running) {
  if (!r.api) throw new Error('this instance runs no api role');
  return r.api;
}

async function call(
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  url: string,
  payload?: unknown,
  headers: Record<string, string> = {},
  r: Running = running,
): Promise<Reply> {
  return (await api(r).inject({
    method,
    url,
    headers,
    ...(payload !== undefined ? { payload: payload as Json } : {}),
  })) as unknown as Reply;
}

const base = (ws: string) => `/v1/workspaces/${ws}`;

/** Reads until `ok` holds for what was read, and returns that. */
function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  let last: T | undefined;
  return waitFor(
    () => `a read that satisfies the condition, last ${JSON.stringify(last)}`,
    async () => {
      last = await read();
      return ok(last) ? { value: last } : undefined;
    },
    { timeoutMs, everyMs: 20 },
  ).then((r) => r.value);
}

function expectProblem(res: Reply, status: number, type?: string): Json {
  expect(res.statusCode, res.body).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
  const p = res.json();
  expect(p.status).toBe(status);
  expect(typeof p.type).toBe('string');
  expect(typeof p.title).toBe('string');
  expect(typeof p.detail).toBe('string');
  if (type) expect(p.type).toBe(`/problems/${type}`);
  return p;
}

function expectJson(res: Reply, status: number): Json {
  expect(res.statusCode, res.body).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/json/);
  return res.json();
}

async function xlen(ws: string): Promise<number> {
  return running.redis.xlen(workspaceKeys(ws).commands);
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

async function listIds(ws: string, query: string): Promise<string[]> {
  const body = expectJson(await call('GET', `${base(ws)}/agents?${query}`), 200) as { agents: Agent[] };
  return body.agents.map((a) => a.id);
}

describe('agent commands', () => {
  const ws = WS.agents;

  it('POST /agents registers an offline agent: 201, Location, {position, ...document}', async () => {
    const res = await call('POST', `${base(ws)}/agents`, {
      id: 'ann',
      name: 'Ann',
      skills: ['spanish', 'billing', 'billing'],
      capacity: 2,
    });
    const a = expectJson(res, 201) as Agent;
    expect(res.headers.location).toBe(`${base(ws)}/agents/ann`);
    expect(a).toMatchObject({
      id: 'ann',
      name: 'Ann',
      skills: ['billing', 'spanish'],
      capacity: 2,
      presence: 'offline',
      state: 'offline',
      activeContacts: [],
      availableSince: null,
    });
    expect(a.position).toMatch(POSITION);
    expect(Number.isNaN(Date.parse(String(a.registeredAt)))).toBe(false);
    // The document the query returns is the one the command answered.
    expect(await getAgent(ws, 'ann')).toEqual(a);
    // capacity defaults to 1
    expect((await register(ws, 'bob', ['billing'])).capacity).toBe(1);
  });

  it('POST /agents with a registered id answers 409 problem+json', async () => {
    await register(ws, 'dup', ['x']);
    const p = expectProblem(await call('POST', `${base(ws)}/agents`, { id: 'dup', skills: ['y'] }), 409);
    expect(p.type).toBe('/problems/agent-exists');
    expect((await getAgent(ws, 'dup')).skills).toEqual(['x']);
  });

  it('PATCH /agents/{id} changes an agent and its availability sets follow at once', async () => {
    await register(ws, 'pat', ['x']);
    await setState(ws, 'pat', 'available');
    expect(await listIds(ws, 'state=available&skill=x')).toContain('pat');

    const res = await call('PATCH', `${base(ws)}/agents/pat`, { name: 'Pat', skills: ['y'], capacity: 3 });
    const a = expectJson(res, 200) as Agent;
    expect(a).toMatchObject({ id: 'pat', name: 'Pat', skills: ['y'], capacity: 3, state: 'available' });
    expect(a.position).toMatch(POSITION);
    expect(await listIds(ws, 'state=available&skill=x')).not.toContain('pat');
    expect(await listIds(ws, 'state=available&skill=y')).toContain('pat');
    expect(await getAgent(ws, 'pat')).toEqual(a);
  });

  it('PATCH /agents/{id} of an unknown agent answers 404', async () => {
    expectProblem(await call('PATCH', `${base(ws)}/agents/nobody`, { name: 'N' }), 404, 'agent-not-found');
  });

  it('POST /agents/{id}/state moves an agent between available, away and offline', async () => {
    await register(ws, 'sam', ['x']);
    const av = await setState(ws, 'sam', 'available');
    expect(av).toMatchObject({ presence: 'available', state: 'available' });
    expect(av.availableSince).not.toBeNull();
    const away = await setState(ws, 'sam', 'away');
    expect(away).toMatchObject({ presence: 'away', state: 'away', availableSince: null });
    expect(await listIds(ws, 'state=available&skill=x')).not.toContain('sam');
    const off = await setState(ws, 'sam', 'offline');
    expect(off).toMatchObject({ presence: 'offline', state: 'offline' });
    // The same state again changes nothing and still answers 200.
    const again = await setState(ws, 'sam', 'offline');
    expect(again.state).toBe('offline');
    expect(again.position).toBe(off.position);
  });

  it('POST /agents/{id}/state of an unknown agent answers 404', async () => {
    expectProblem(
      await call('POST', `${base(ws)}/agents/ghost/state`, { state: 'available' }),
      404,
      'agent-not-found',
    );
  });

  it('DELETE /agents/{id} removes an agent; unknown answers 404; one holding a contact answers 409', async () => {
    await register(ws, 'del', ['x']);
    const res = await call('DELETE', `${base(ws)}/agents/del`);
    const body = expectJson(res, 200);
    expect(body).toMatchObject({ id: 'del', removed: true });
    expect(body.position).toMatch(POSITION);
    expectProblem(await call('GET', `${base(ws)}/agents/del`), 404, 'agent-not-found');
    expectProblem(await call('DELETE', `${base(ws)}/agents/del`), 404, 'agent-not-found');

    await register(ws, 'holder', ['held-skill']);
    await setState(ws, 'holder', 'available');
    await queue(ws, { id: 'held-1', skills: ['held-skill'] });
    await eventually(
      () => getAgent(ws, 'holder'),
      (a) => a.activeContacts.includes('held-1'),
    );
    expectProblem(await call('DELETE', `${base(ws)}/agents/holder`), 409, 'agent-busy');
    expect((await getAgent(ws, 'holder')).state).toBe('busy');
  });
});

describe('contact commands', () => {
  const ws = WS.contacts;

  it('POST /contacts with an id queues it: 201, Location, {position, ...document}', async () => {
    const res = await call('POST', `${base(ws)}/contacts`, {
      id: 'c-1',
      skills: ['sales'],
      priority: 7,
      attributes: { customer: 'ACME', tier: 3, nested: { ok: true } },
    });
    const c = expectJson(res, 201) as Contact;
    expect(res.headers.location).toBe(`${base(ws)}/contacts/c-1`);
    expect(c).toMatchObject({
      id: 'c-1',
      skills: ['sales'],
      priority: 7,
      state: 'queued',
      attributes: { customer: 'ACME', tier: 3, nested: { ok: true } },
    });
    expect(c.position).toMatch(POSITION);
    // Read back while queued, it also says where it stands (nobody served that queue yet).
    expect(await getContact(ws, 'c-1')).toEqual({ ...c, queuePosition: 0, estimatedWaitMs: null });
  });

  it('POST /contacts without an id gets a server-made id', async () => {
    const res = await call('POST', `${base(ws)}/contacts`, { skills: ['sales'] });
    const c = expectJson(res, 201) as Contact;
    expect(c.id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
    expect(c.priority).toBe(0);
    expect(res.headers.location).toBe(`${base(ws)}/contacts/${c.id}`);
    expect((await getContact(ws, c.id)).state).toBe('queued');
    const other = expectJson(await call('POST', `${base(ws)}/contacts`, { skills: ['sales'] }), 201);
    expect(other.id).not.toBe(c.id);
  });

  it('POST /contacts with a used id answers 409', async () => {
    await queue(ws, { id: 'c-dup', skills: ['sales'] });
    expectProblem(
      await call('POST', `${base(ws)}/contacts`, { id: 'c-dup', skills: ['other'] }),
      409,
      'contact-exists',
    );
    expect((await getContact(ws, 'c-dup')).skills).toEqual(['sales']);
  });

  it('POST /contacts/{id}/abandon: 200 abandoned, then 409; unknown 404', async () => {
    await queue(ws, { id: 'c-ab', skills: ['nobody-has-this'] });
    const body = expectJson(await call('POST', `${base(ws)}/contacts/c-ab/abandon`), 200);
    expect(body).toMatchObject({ id: 'c-ab', state: 'abandoned' });
    expect(body.position).toMatch(POSITION);
    expect(typeof body.abandonedAt).toBe('string');
    expectProblem(await call('POST', `${base(ws)}/contacts/c-ab/abandon`), 409, 'contact-not-queued');
    expectProblem(await call('POST', `${base(ws)}/contacts/c-none/abandon`), 404, 'contact-not-found');
    // An abandoned contact is never assigned afterwards.
    await register(ws, 'late', ['nobody-has-this']);
    await setState(ws, 'late', 'available');
    await sleep(200);
    expect((await getContact(ws, 'c-ab')).state).toBe('abandoned');
    expect((await getAgent(ws, 'late')).activeContacts).toEqual([]);
  });

  it('POST /contacts/{id}/complete of a queued contact answers 409; unknown 404', async () => {
    await queue(ws, { id: 'c-q', skills: ['still-nobody'] });
    expectProblem(await call('POST', `${base(ws)}/contacts/c-q/complete`), 409, 'contact-not-assigned');
    expectProblem(await call('POST', `${base(ws)}/contacts/c-zz/complete`), 404, 'contact-not-found');
  });

  it('a rejected command carries its commandId and appends CommandRejected', async () => {
    const p = expectProblem(await call('POST', `${base(ws)}/contacts/c-missing/complete`), 404);
    expect(p.commandId).toMatch(UUID);
    const events = expectJson(await call('GET', `${base(ws)}/events?type=CommandRejected&limit=1000`), 200)
      .events as Envelope[];
    expect(events.some((e) => e.data.commandId === p.commandId && e.data.status === 404)).toBe(true);
  });
});

describe('agent state flow', () => {
  const ws = WS.flow;

  it('available → assignment → busy → complete → available', async () => {
    await register(ws, 'ann', ['billing', 'en'], { name: 'Ann' });
    const av = await setState(ws, 'ann', 'available');
    expect(av.state).toBe('available');

    const queued = await queue(ws, { id: 'call-1', skills: ['billing'], priority: 2 });
    expect(queued.state).toBe('queued');

    const assigned = await eventually(
      () => getContact(ws, 'call-1'),
      (c) => c.state === 'assigned',
    );
    expect(assigned.agentId).toBe('ann');
    expect(typeof assigned.assignedAt).toBe('string');
    expect(typeof assigned.waitedMs).toBe('number');
    const busy = await getAgent(ws, 'ann');
    expect(busy).toMatchObject({ state: 'busy', presence: 'available', activeContacts: ['call-1'] });
    expect(busy.availableSince).toBeNull();
    expect(await listIds(ws, 'state=available&skill=billing')).toEqual([]);

    const done = expectJson(await call('POST', `${base(ws)}/contacts/call-1/complete`), 200);
    expect(done).toMatchObject({ id: 'call-1', state: 'completed', agentId: 'ann' });
    expect(typeof done.completedAt).toBe('string');
    expect(done.position).toMatch(POSITION);

    const again = await getAgent(ws, 'ann');
    expect(again).toMatchObject({ state: 'available', activeContacts: [] });
    expect(again.availableSince).not.toBeNull();
    expect(await listIds(ws, 'state=available&skill=billing')).toEqual(['ann']);

    // The next contact goes to her again.
    await queue(ws, { id: 'call-2', skills: ['en'] });
    await eventually(
      () => getContact(ws, 'call-2'),
      (c) => c.state === 'assigned' && c.agentId === 'ann',
    );

    const events = expectJson(await call('GET', `${base(ws)}/events?limit=1000`), 200).events as Envelope[];
    const made = events.filter((e) => e.type === 'AssignmentMade');
    expect(made.map((e) => e.data.contactId)).toEqual(['call-1', 'call-2']);
    expect(Object.keys(made[0]!.data).sort()).toEqual(
      ['agentId', 'assignedAt', 'channel', 'contactId', 'priority', 'queuedAt', 'skills', 'waitedMs'].sort(),
    );
    expect(made[0]!.data).toMatchObject({
      contactId: 'call-1',
      agentId: 'ann',
      skills: ['billing'],
      priority: 2,
    });
    expect(events.map((e) => e.type)).toEqual([
      'AgentRegistered',
      'AgentStateChanged',
      'ContactQueued',
      'AssignmentMade',
      'ContactCompleted',
      'ContactQueued',
      'AssignmentMade',
    ]);
  });
});

describe('Idempotency-Key', () => {
  const ws = WS.idem;

  it('a repeat returns the same status and body and appends nothing', async () => {
    const h = { 'idempotency-key': 'reg-ann-1' };
    const first = await call('POST', `${base(ws)}/agents`, { id: 'ann', skills: ['x'] }, h);
    expect(first.statusCode).toBe(201);
    const len = await xlen(ws);
    const again = await call('POST', `${base(ws)}/agents`, { id: 'ann', skills: ['x'] }, h);
    expect(again.statusCode).toBe(201);
    expect(again.json()).toEqual(first.json());
    expect(again.headers.location).toBe(first.headers.location);
    expect(await xlen(ws)).toBe(len);
    const events = expectJson(await call('GET', `${base(ws)}/events?type=AgentRegistered`), 200)
      .events as Envelope[];
    expect(events).toHaveLength(1);
  });

  it('a repeat of a rejected command returns the same problem and appends nothing', async () => {
    await register(ws, 'taken', ['x']);
    const h = { 'idempotency-key': 'reg-taken-twice' };
    const first = await call('POST', `${base(ws)}/agents`, { id: 'taken', skills: ['x'] }, h);
    const p = expectProblem(first, 409);
    const len = await xlen(ws);
    const again = await call('POST', `${base(ws)}/agents`, { id: 'taken', skills: ['x'] }, h);
    expect(expectProblem(again, 409)).toEqual(p);
    expect(await xlen(ws)).toBe(len);
  });

  it('a repeat of POST /contacts without id returns the same server-made id', async () => {
    const h = { 'idempotency-key': 'contact-no-id' };
    const first = expectJson(await call('POST', `${base(ws)}/contacts`, { skills: ['x'] }, h), 201);
    const len = await xlen(ws);
    const again = expectJson(await call('POST', `${base(ws)}/contacts`, { skills: ['x'] }, h), 201);
    expect(again).toEqual(first);
    expect(await xlen(ws)).toBe(len);
  });

  it('a repeat of a body-less command returns the same answer', async () => {
    await queue(ws, { id: 'to-abandon', skills: ['none-here'] });
    const h = { 'idempotency-key': 'abandon-1' };
    const first = expectJson(
      await call('POST', `${base(ws)}/contacts/to-abandon/abandon`, undefined, h),
      200,
    );
    const len = await xlen(ws);
    const again = expectJson(
      await call('POST', `${base(ws)}/contacts/to-abandon/abandon`, undefined, h),
      200,
    );
    expect(again).toEqual(first);
    expect(await xlen(ws)).toBe(len);
  });

  it('a key reused for a different request answers 422 and appends nothing', async () => {
    const h = { 'idempotency-key': 'reused-key' };
    expectJson(await call('POST', `${base(ws)}/agents`, { id: 'kim', skills: ['x'] }, h), 201);
    const len = await xlen(ws);
    const p = expectProblem(await call('POST', `${base(ws)}/agents`, { id: 'kim', skills: ['y'] }, h), 422);
    expect(p.type).toBe('/problems/idempotency-key-reused');
    expectProblem(await call('POST', `${base(ws)}/agents`, { id: 'kim2', skills: ['x'] }, h), 422);
    expectProblem(await call('DELETE', `${base(ws)}/agents/kim`, undefined, h), 422);
    expectProblem(await call('PATCH', `${base(ws)}/agents/kim`, { name: 'Kim' }, h), 422);
    expect(await xlen(ws)).toBe(len);
    expect((await getAgent(ws, 'kim')).skills).toEqual(['x']);
  });
});

describe("Idempotency-Key and the body's member order", () => {
  const ws = WS.idem;

  it('a repeat whose body has its members in another order is the same request', async () => {
    const h = { 'idempotency-key': 'member-order' };
    const body = { id: 'ordered', skills: ['x'], priority: 5, attributes: { a: 1, b: { c: 2, d: [3, 4] } } };
    const first = expectJson(await call('POST', `${base(ws)}/contacts`, body, h), 201);
    const len = await xlen(ws);
    const reordered = {
      attributes: { b: { d: [3, 4], c: 2 }, a: 1 },
      priority: 5,
      skills: ['x'],
      id: 'ordered',
    };
    const again = await call('POST', `${base(ws)}/contacts`, reordered, h);
    expect(expectJson(again, 201)).toEqual(first);
    expect(again.headers['idempotent-replayed']).toBe('true');
    // Arrays keep their order, and a different value is a different request.
    const swapped = { ...reordered, attributes: { a: 1, b: { c: 2, d: [4, 3] } } };
    expectProblem(await call('POST', `${base(ws)}/contacts`, swapped, h), 422);
    expectProblem(await call('POST', `${base(ws)}/contacts`, { ...body, priority: 4 }, h), 422);
    expect(await xlen(ws)).toBe(len);
  });

  it('a key recorded with the fingerprint of earlier versions still matches its retry', async () => {
    // What an instance of an earlier version recorded (members in the body's order), then the
    // retry comes to this one: the same request, not 422.
    const body = { skills: ['x'], id: 'legacy-fp', priority: 3 };
    const parts = ['POST', '/v1/workspaces/:ws/contacts', { ws }, body] as const;
    expect(fingerprintOf(...parts)).not.toBe(legacyFingerprintOf(...parts));
    const first = await appendCommand(running.redis, {
      workspace: ws,
      command: { type: 'QueueContact', contactId: 'legacy-fp', skills: ['x'], priority: 3 },
      idempotencyKey: 'legacy-fp-key',
      fingerprint: legacyFingerprintOf(...parts),
    });
    const len = await xlen(ws);
    const again = await call('POST', `${base(ws)}/contacts`, body, { 'idempotency-key': 'legacy-fp-key' });
    expect(expectJson(again, 201)).toMatchObject({ id: 'legacy-fp', position: first.position });
    expect(await xlen(ws)).toBe(len);
    expectProblem(
      await call(
        'POST',
        `${base(ws)}/contacts`,
        { ...body, priority: 4 },
        { 'idempotency-key': 'legacy-fp-key' },
      ),
      422,
    );
  });
});

describe('Idempotency-Key past its lifetime', () => {
  const ws = SHORT_TTL;

  it('is new at once, whatever records wait to be purged', async () => {
    // IDEMPOTENCY_TTL_S is at least 60 in the environment; the suite asks for one second.
    const short = await startSwitchboard(
      {
        // No dispatcher: a second one would take a share of the main instance's dispatch leases.
        ...loadConfig(env({ ROLES: 'api,projector', WORKSPACES: ws, DISCOVER_WORKSPACES: 'false' })),
        idempotencyTtlS: 1,
      },
      log,
    );
    extra.push(short);
    await projectorReady(short.redis, [ws]);
    // More expired records than one append purges (16), the reused key last among them.
    for (let i = 1; i <= 20; i++) {
      const res = await call(
        'POST',
        `${base(ws)}/agents`,
        { id: `a${i}`, skills: ['x'] },
        { 'idempotency-key': `k${i}` },
        short,
      );
      expectJson(res, 201);
    }
    const h = { 'idempotency-key': 'k20' };
    const refused = await call('POST', `${base(ws)}/agents`, { id: 'b20', skills: ['x'] }, h, short);
    const p = expectProblem(refused, 422);
    expect(p.type).toBe('/problems/idempotency-key-reused');
    // A refusal, not the first outcome replayed.
    expect(refused.headers['idempotent-replayed']).toBeUndefined();
    await sleep(1200);
    const len = await xlen(ws);
    // A different request under the expired key: a new command, not 422. Sent through the main
    // instance (its keys live a day): a record's lifetime is the one its append gave it, so the
    // key is remembered again when the repeat below comes, however slow the machine (through the
    // short instance, two requests later it could be past its one second again).
    const reused = await call('POST', `${base(ws)}/agents`, { id: 'b20', skills: ['x'] }, h);
    expect(expectJson(reused, 201)).toMatchObject({ id: 'b20' });
    expect(reused.headers['idempotent-replayed']).toBeUndefined();
    expect(await xlen(ws)).toBe(len + 1);
    // The same request as the first use of an expired key: applied again (409: a19 is registered).
    const again = await call(
      'POST',
      `${base(ws)}/agents`,
      { id: 'a19', skills: ['x'] },
      { 'idempotency-key': 'k19' },
      short,
    );
    expectProblem(again, 409);
    expect(again.headers['idempotent-replayed']).toBeUndefined();
    expect(await xlen(ws)).toBe(len + 2);
    // The key is remembered again from its new use, through either instance.
    const repeat = await call('POST', `${base(ws)}/agents`, { id: 'b20', skills: ['x'] }, h, short);
    expect(expectJson(repeat, 201)).toEqual(reused.json());
    expect(repeat.headers['idempotent-replayed']).toBe('true');
    expect(await xlen(ws)).toBe(len + 2);
  });
});

describe('longest available agent', () => {
  const ws = WS.laa;

  it('GET /agents?state=available&skill=x lists in LAA order, and routing follows it', async () => {
    for (const id of ['a1', 'a2', 'a3']) await register(ws, id, ['x']);
    await register(ws, 'a4', ['x', 'y']);
    await register(ws, 'a5', ['y']);
    await register(ws, 'a6', ['x']);
    for (const id of ['a3', 'a1', 'a4', 'a2', 'a5']) {
      await setState(ws, id, 'available');
      await sleep(3);
    }
    await setState(ws, 'a6', 'away');

    expect(await listIds(ws, 'state=available&skill=x')).toEqual(['a3', 'a1', 'a4', 'a2']);
    expect(await listIds(ws, 'state=available&skill=y')).toEqual(['a4', 'a5']);
    expect(await listIds(ws, 'state=away')).toEqual(['a6']);
    expect(await listIds(ws, 'skill=y')).toEqual(['a4', 'a5']);
    expect(await listIds(ws, '')).toEqual(['a1', 'a2', 'a3', 'a4', 'a5', 'a6']);
    expect(await listIds(ws, 'state=available&skill=x&limit=2')).toEqual(['a3', 'a1']);
    const listed = expectJson(await call('GET', `${base(ws)}/agents?state=available&skill=x`), 200)
      .agents as Agent[];
    const since = listed.map((a) => Date.parse(String(a.availableSince)));
    expect([...since].sort((p, q) => p - q)).toEqual(since);
    for (const a of listed) expect(a.position).toMatch(POSITION);

    // A contact needing x goes to the longest available (a3); one needing x and y to a4.
    await queue(ws, { id: 'cx', skills: ['x'] });
    await queue(ws, { id: 'cxy', skills: ['y', 'x'] });
    await eventually(
      () => getContact(ws, 'cxy'),
      (c) => c.state === 'assigned',
    );
    expect((await getContact(ws, 'cx')).agentId).toBe('a3');
    expect((await getContact(ws, 'cxy')).agentId).toBe('a4');
    expect(await listIds(ws, 'state=available&skill=x')).toEqual(['a1', 'a2']);
    expect(await listIds(ws, 'state=busy')).toEqual(['a3', 'a4']);
  });
});

describe('queries', () => {
  it('GET /agents/{id} and /contacts/{id}: documents with position, or 404 problem+json', async () => {
    const ws = WS.queries;
    const a = await register(ws, 'q-agent', ['x'], { name: 'Q' });
    const c = await queue(ws, { id: 'q-contact', skills: ['z'], priority: 9 });
    expect(await getAgent(ws, 'q-agent')).toEqual(a);
    expect(await getContact(ws, 'q-contact')).toEqual({ ...c, queuePosition: 0, estimatedWaitMs: null });
    const pa = expectProblem(await call('GET', `${base(ws)}/agents/nope`), 404, 'agent-not-found');
    expect(pa.detail).toContain('nope');
    expectProblem(await call('GET', `${base(ws)}/contacts/nope`), 404, 'contact-not-found');
    // The same id in another workspace is another agent.
    expectProblem(await call('GET', `${base(WS.stats)}/agents/q-agent`), 404);
    // minPosition already reached answers at once.
    expect(await getAgent(ws, `q-agent?minPosition=${a.position}`)).toEqual(a);
  });

  it('GET /stats: queue depth per skill set, longest wait, agents per state, assignments', async () => {
    const ws = WS.stats;
    await register(ws, 's-busy', ['x']);
    await register(ws, 's-off', ['x']);
    await register(ws, 's-away', ['q']);
    await setState(ws, 's-away', 'away');
    await queue(ws, { id: 'old', skills: ['z'] });
    await sleep(30);
    await queue(ws, { id: 'two-skills', skills: ['z', 'w'] });
    await queue(ws, { id: 'gone', skills: ['z'] });
    expectJson(await call('POST', `${base(ws)}/contacts/gone/abandon`), 200);
    await setState(ws, 's-busy', 'available');
    await queue(ws, { id: 'served', skills: ['x'] });
    const stats = await eventually(
      async () => expectJson(await call('GET', `${base(ws)}/stats`), 200),
      (s) => s.assignments === 1,
    );
    expect(stats).toMatchObject({
      queued: 2,
      queueBySkills: { z: 1, 'w,z': 1 },
      oldestContactId: 'old',
      agentsByState: { offline: 1, available: 0, away: 1, busy: 1, wrapup: 0, reserved: 0 },
      assignments: 1,
      completed: 0,
      abandoned: 1,
      expired: 0,
      transferred: 0,
      contactsQueuedSoFar: 4,
    });
    expect(stats.longestWaitMs).toBeGreaterThanOrEqual(30);
    expect(stats.position).toMatch(POSITION);
  });

  it('GET /events pages the whole history in order with next', async () => {
    const ws = WS.events;
    for (let i = 0; i < 5; i++) await register(ws, `e${i}`, ['x']);
    for (let i = 0; i < 3; i++) await setState(ws, `e${i}`, 'available');
    for (let i = 0; i < 4; i++) await queue(ws, { id: `ec${i}`, skills: ['x'] });
    expectProblem(await call('POST', `${base(ws)}/contacts/nope/abandon`), 404);
    await eventually(
      async () => expectJson(await call('GET', `${base(ws)}/stats`), 200),
      (s) => s.assignments === 3,
    );
    const stream = (await running.redis.xrange(workspaceKeys(ws).events, '-', '+')).map((e) => e[0]);
    expect(stream.length).toBeGreaterThanOrEqual(16);

    const pageAll = async (query: string, limit: number): Promise<Envelope[]> => {
      const out: Envelope[] = [];
      let after: string | null = null;
      let pages = 0;
      do {
        const q: string = `limit=${limit}${query}${after ? `&after=${after}` : ''}`;
        const page = expectJson(await call('GET', `${base(ws)}/events?${q}`), 200) as {
          events: Envelope[];
          next: string | null;
        };
        expect(page.events.length).toBeLessThanOrEqual(limit);
        if (page.next !== null) {
          expect(page.events).toHaveLength(limit);
          expect(page.next).toBe(page.events[page.events.length - 1]!.position);
        }
        out.push(...page.events);
        after = page.next;
        pages++;
      } while (after !== null && pages < 100);
      return out;
    };

    const all = await pageAll('', 3);
    expect(all.map((e) => e.position)).toEqual(stream);
    for (const e of all) {
      expect(e.workspace).toBe(ws);
      expect(Number.isNaN(Date.parse(e.at))).toBe(false);
      expect(typeof e.data).toBe('object');
      expect(typeof e.meta).toBe('object');
      if (e.type !== 'AssignmentMade') expect(e.meta.commandId).toMatch(UUID);
      else expect(e.meta.causationId).toMatch(UUID);
    }
    // Without limit: the first 100 (here: all of them); limit=1 pages one by one.
    const one = expectJson(await call('GET', `${base(ws)}/events`), 200);
    expect((one.events as Envelope[]).map((e) => e.position)).toEqual(stream);
    expect(one.next).toBeNull();
    expect((await pageAll('', 1)).map((e) => e.position)).toEqual(stream);

    // after: everything strictly after that position.
    const mid = stream[6]!;
    // A filter naming every type present pages the same history.
    const every = await pageAll(
      '&type=AgentRegistered,AgentStateChanged,ContactQueued,AssignmentMade,CommandRejected',
      4,
    );
    expect(every.map((e) => e.position)).toEqual(stream);
    const tail = expectJson(await call('GET', `${base(ws)}/events?after=${mid}&limit=1000`), 200);
    expect((tail.events as Envelope[]).map((e) => e.position)).toEqual(stream.slice(7));

    // type filters, paged.
    const wanted = new Set(['AgentRegistered', 'AssignmentMade']);
    const filtered = await pageAll('&type=AgentRegistered,AssignmentMade', 2);
    expect(filtered.map((e) => e.position)).toEqual(
      all.filter((e) => wanted.has(e.type)).map((e) => e.position),
    );
    expect(filtered.filter((e) => e.type === 'AssignmentMade')).toHaveLength(3);
    const rejected = await pageAll('&type=CommandRejected', 5);
    expect(rejected).toHaveLength(1);
    // Past the end: empty and no next.
    const end = expectJson(await call('GET', `${base(ws)}/events?after=${stream[stream.length - 1]}`), 200);
    expect(end).toEqual({ events: [], next: null });
  });
});

describe('202 and read-your-writes with a projector that starts later', () => {
  it('a command answers 202 {position, commandId} when no projector answers in time, and applies later', async () => {
    const ws = DEFERRED;
    const apiOnly = await start({ ROLES: 'api', COMMAND_TIMEOUT_MS: '50', QUERY_TIMEOUT_MS: '8000' });
    const h = { 'idempotency-key': 'deferred-1' };
    const res = await call('POST', `${base(ws)}/agents`, { id: 'late', skills: ['x'] }, h, apiOnly);
    const body = expectJson(res, 202);
    expect(Object.keys(body).sort()).toEqual(['commandId', 'id', 'position']);
    expect(body.position).toMatch(POSITION);
    expect(body.commandId).toMatch(UUID);
    // The agent it makes, and where it will be (as a 201 says).
    expect(body.id).toBe('late');
    expect(res.headers.location).toBe(`${base(ws)}/agents/late`);
    expect(await xlen(ws)).toBe(1);
    // Durable but not applied yet.
    await sleep(100);
    expectProblem(await call('GET', `${base(ws)}/agents/late`, undefined, {}, apiOnly), 404);
    // A repeat while still unapplied: also 202, same position, nothing appended.
    const again = expectJson(
      await call('POST', `${base(ws)}/agents`, { id: 'late', skills: ['x'] }, h, apiOnly),
      202,
    );
    expect(again).toEqual(body);
    expect(await xlen(ws)).toBe(1);

    await start({ ROLES: 'projector,dispatcher', WORKSPACES: ws, DISCOVER_WORKSPACES: 'false' });
    const a = expectJson(
      await call('GET', `${base(ws)}/agents/late?minPosition=${body.position}`, undefined, {}, apiOnly),
      200,
    );
    expect(a).toMatchObject({ id: 'late', state: 'offline', position: body.position });
    // Once applied, the repeat answers the outcome.
    const applied = expectJson(
      await call('POST', `${base(ws)}/agents`, { id: 'late', skills: ['x'] }, h, apiOnly),
      201,
    );
    expect(applied).toEqual(a);
    expect(await xlen(ws)).toBe(1);
  });

  it('a concurrent repeat of an Idempotency-Key: both requests get the outcome as soon as it is known', async () => {
    const ws = CONCURRENT_REPEAT;
    const apiOnly = await start({ ROLES: 'api', COMMAND_TIMEOUT_MS: '6000' });
    const h = { 'idempotency-key': 'concurrent-1' };
    const post = () => call('POST', `${base(ws)}/agents`, { id: 'twice', skills: ['x'] }, h, apiOnly);
    const answered: number[] = [];
    const both = [post(), post()].map((p) =>
      p.then((res) => {
        answered.push(Date.now());
        return res;
      }),
    );
    // Both wait: nothing applies the command until the projector starts.
    await eventually(
      () => xlen(ws),
      (n) => n === 1,
    );
    await sleep(300);
    expect(answered).toEqual([]);
    const t0 = Date.now();
    await start({ ROLES: 'projector', WORKSPACES: ws, DISCOVER_WORKSPACES: 'false' });
    const [first, second] = await Promise.all(both);
    const a = expectJson(first!, 201);
    expect(a).toMatchObject({ id: 'twice', state: 'offline' });
    expect(expectJson(second!, 201)).toEqual(a);
    expect([first!.headers['idempotent-replayed'], second!.headers['idempotent-replayed']].sort()).toEqual([
      'true',
      undefined,
    ]);
    // Well before the 6 s timeout: the first request is not left waiting for it.
    for (const at of answered) expect(at - t0).toBeLessThan(3000);
    expect(await xlen(ws)).toBe(1);
  });

  it('?minPosition waits until the projections have applied that position', async () => {
    const ws = RYW;
    const apiOnly = await start({ ROLES: 'api', COMMAND_TIMEOUT_MS: '20', QUERY_TIMEOUT_MS: '8000' });
    const first = expectJson(
      await call('POST', `${base(ws)}/agents`, { id: 'r1', skills: ['x'] }, {}, apiOnly),
      202,
    );
    const second = expectJson(
      await call('POST', `${base(ws)}/contacts`, { id: 'rc', skills: ['y'] }, {}, apiOnly),
      202,
    );
    expectProblem(await call('GET', `${base(ws)}/agents/r1`, undefined, {}, apiOnly), 404);

    let settled = false;
    const agentRead = call(
      'GET',
      `${base(ws)}/agents/r1?minPosition=${first.position}`,
      undefined,
      {},
      apiOnly,
    );
    const contactRead = call(
      'GET',
      `${base(ws)}/contacts/rc?minPosition=${second.position}`,
      undefined,
      {},
      apiOnly,
    );
    const statsRead = call('GET', `${base(ws)}/stats?minPosition=${second.position}`, undefined, {}, apiOnly);
    void agentRead.then(() => {
      settled = true;
    });
    await sleep(300);
    expect(settled).toBe(false);

    const t0 = Date.now();
    await start({ ROLES: 'projector', WORKSPACES: ws, DISCOVER_WORKSPACES: 'false' });
    const a = expectJson(await agentRead, 200);
    expect(a).toMatchObject({ id: 'r1', position: first.position });
    const c = expectJson(await contactRead, 200);
    expect(c).toMatchObject({ id: 'rc', state: 'queued', position: second.position });
    const s = expectJson(await statsRead, 200);
    expect(s.contactsQueuedSoFar).toBe(1);
    expect(s.position).toBe(second.position);
    expect(Date.now() - t0).toBeLessThan(8000);
  });
});

describe('operations', () => {
  it('GET /health answers 200', async () => {
    const res = await eventually(
      () => call('GET', '/health'),
      (r) => r.statusCode === 200,
    );
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('GET /status reports running, the version, roles and Redis', async () => {
    const s = expectJson(await call('GET', '/status'), 200);
    expect(s).toMatchObject({ version: VERSION, state: 'running' });
    expect(s.reason).toBeUndefined();
    expect(s.roles).toEqual(expect.arrayContaining(['api', 'projector', 'dispatcher']));
    expect((s.redis as Json).reachable).toBe(true);
    expect(typeof s.uptimeS).toBe('number');
    expect(s.workspaces).toEqual(expect.arrayContaining([WS.flow]));
  });

  it('GET /metrics is Prometheus text with switchboard_commands_total', async () => {
    await register(WS.ops, 'm1', ['x']);
    const res = await call('GET', '/metrics');
    expect(res.statusCode).toBe(200);
    expect(String(res.headers['content-type'])).toMatch(/^text\/plain/);
    expect(res.body).toContain('# TYPE switchboard_commands_total counter');
    expect(res.body).toMatch(
      new RegExp(
        `switchboard_commands_total\\{workspace="${WS.ops}",type="RegisterAgent",status="201"\\} \\d+`,
      ),
    );
    expect(res.body).toContain('switchboard_http_request_duration_seconds');
  });
});
