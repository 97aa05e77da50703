/**
 * Every route × every role, as the roles table of docs/SECURITY.md says: allowed (any answer but
 * 401/403), or 401/403 problem+json with nothing appended to the command or event stream. A key
 * of one workspace can do nothing in another; no key, a malformed, unknown or revoked one is a 401
 * with WWW-Authenticate: Bearer. The open routes stay open. Every route the API serves under
 * /v1/workspaces is in the access table and the OpenAPI document.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTE_ACCESS } from '../../src/adapters/http/auth.ts';
import { openapi } from '../../src/adapters/http/openapi.ts';
import { API_KEY_ROLES, type ApiKeyRole, revokeApiKey } from '../../src/adapters/redis/api-keys.ts';
import type { Running } from '../../src/app/composition-root.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';
import { bearer, keyOf, startSecured, streamLengths } from './harness.ts';

const WS = 'sec-roles';
const OTHER = 'sec-roles-other';
let redis: TestRedis;
let sb: Running;
let app: FastifyInstance;
const keys = {} as Record<ApiKeyRole, string>;
let otherAdmin: string;
let revoked: string;

interface Sample {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** Path after /v1/workspaces/{ws}; `{own}`/`{other}`: the agent key's agent, another agent. */
  readonly path: string;
  readonly body?: unknown;
  /** Roles allowed; `agent` means its own agent (the `{other}` variant is refused). */
  readonly allowed: readonly ApiKeyRole[];
  /** The route as fastify names it. */
  readonly route: string;
}

const ALL: readonly ApiKeyRole[] = API_KEY_ROLES;
const READERS: readonly ApiKeyRole[] = ['admin', 'integration', 'supervisor', 'auditor'];

// The roles table of docs/SECURITY.md, written out again: the test holds the code to it.
const SAMPLES: readonly Sample[] = [
  {
    method: 'POST',
    path: '/agents',
    body: { id: 'new-one', skills: ['s9'] },
    allowed: ['admin'],
    route: 'POST /agents',
  },
  {
    method: 'PATCH',
    path: '/agents/{own}',
    body: { name: 'Ann' },
    allowed: ['admin'],
    route: 'PATCH /agents/:id',
  },
  { method: 'DELETE', path: '/agents/nobody', allowed: ['admin'], route: 'DELETE /agents/:id' },
  {
    method: 'POST',
    path: '/agents/{own}/state',
    body: { state: 'available' },
    allowed: ['admin', 'supervisor', 'agent'],
    route: 'POST /agents/:id/state',
  },
  {
    method: 'POST',
    path: '/contacts',
    body: { skills: ['s9'] },
    allowed: ['admin', 'integration'],
    route: 'POST /contacts',
  },
  {
    method: 'POST',
    path: '/contacts/nope/abandon',
    allowed: ['admin', 'integration'],
    route: 'POST /contacts/:id/abandon',
  },
  {
    method: 'POST',
    path: '/contacts/nope/transfer',
    body: { skills: ['s9'] },
    allowed: ['admin', 'integration'],
    route: 'POST /contacts/:id/transfer',
  },
  {
    method: 'POST',
    path: '/contacts/{ownContact}/complete',
    allowed: ['admin', 'agent'],
    route: 'POST /contacts/:id/complete',
  },
  {
    method: 'POST',
    path: '/contacts/{ownContact}/accept',
    body: { agentId: '{own}' },
    allowed: ['admin', 'agent'],
    route: 'POST /contacts/:id/accept',
  },
  {
    method: 'POST',
    path: '/contacts/{ownContact}/reject',
    body: { agentId: '{own}' },
    allowed: ['admin', 'agent'],
    route: 'POST /contacts/:id/reject',
  },
  { method: 'PUT', path: '/settings', body: {}, allowed: ['admin'], route: 'PUT /settings' },
  { method: 'GET', path: '/agents', allowed: READERS, route: 'GET /agents' },
  { method: 'GET', path: '/agents/{own}', allowed: ALL, route: 'GET /agents/:id' },
  { method: 'GET', path: '/contacts/{ownContact}', allowed: ALL, route: 'GET /contacts/:id' },
  { method: 'GET', path: '/settings', allowed: READERS, route: 'GET /settings' },
  { method: 'GET', path: '/stats', allowed: READERS, route: 'GET /stats' },
  {
    method: 'GET',
    path: '/stats/intervals?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z',
    allowed: READERS,
    route: 'GET /stats/intervals',
  },
  { method: 'GET', path: '/events', allowed: READERS, route: 'GET /events' },
  { method: 'GET', path: '/state?at=0-0', allowed: READERS, route: 'GET /state' },
  { method: 'GET', path: '/events/live', allowed: ALL, route: 'GET /events/live' },
  { method: 'POST', path: '/ws-tickets', allowed: ALL, route: 'POST /ws-tickets' },
  { method: 'GET', path: '/keys/me', allowed: ALL, route: 'GET /keys/me' },
  { method: 'POST', path: '/keys', body: { role: 'auditor' }, allowed: ['admin'], route: 'POST /keys' },
  { method: 'GET', path: '/keys', allowed: ['admin'], route: 'GET /keys' },
  { method: 'GET', path: '/keys/0000000000000000', allowed: ['admin'], route: 'GET /keys/:keyId' },
  { method: 'DELETE', path: '/keys/0000000000000000', allowed: ['admin'], route: 'DELETE /keys/:keyId' },
];

/** `{own}` is agent a1 (the agent key's), `{other}` a2; c1 is assigned to a1, c2 to a2. */
function fill(text: string, variant: 'own' | 'other'): string {
  return text
    .replaceAll('{ownContact}', variant === 'own' ? 'c1' : 'c2')
    .replaceAll('{own}', variant === 'own' ? 'a1' : 'a2');
}

async function call(s: Sample, headers: Record<string, string>, variant: 'own' | 'other' = 'own', ws = WS) {
  const body = s.body === undefined ? undefined : JSON.parse(fill(JSON.stringify(s.body), variant));
  const res = await app.inject({
    method: s.method,
    url: `/v1/workspaces/${ws}${fill(s.path, variant)}`,
    headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  });
  return {
    status: res.statusCode,
    type: res.headers['content-type'],
    body: res.json() as { type?: string },
    headers: res.headers,
  };
}

/** A refusal: the status and type, problem+json, and both streams of both workspaces unchanged. */
async function expectRefused(
  s: Sample,
  headers: Record<string, string>,
  status: 401 | 403,
  variant: 'own' | 'other' = 'own',
  ws = WS,
): Promise<void> {
  const before = [await streamLengths(sb.redis, WS), await streamLengths(sb.redis, OTHER)];
  const r = await call(s, headers, variant, ws);
  const what = `${s.method} ${s.path} (${variant}) in ${ws}: ${JSON.stringify(r.body)}`;
  expect(r.status, what).toBe(status);
  expect(r.type, what).toMatch(/^application\/problem\+json/);
  expect(r.body.type, what).toBe(status === 401 ? '/problems/unauthorized' : '/problems/forbidden');
  if (status === 401) expect(r.headers['www-authenticate'], what).toMatch(/^Bearer realm="switchboard"/);
  expect([await streamLengths(sb.redis, WS), await streamLengths(sb.redis, OTHER)], what).toEqual(before);
}

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSecured(redis, { WORKSPACES: `${WS},${OTHER}`, DISCOVER_WORKSPACES: 'false' });
  app = sb.api!;
  await projectorReady(sb.redis, [WS, OTHER]);
  for (const role of API_KEY_ROLES)
    keys[role] = (await keyOf(sb.redis, WS, role, role === 'agent' ? 'a1' : undefined)).key;
  otherAdmin = (await keyOf(sb.redis, OTHER, 'admin')).key;
  const gone = await keyOf(sb.redis, WS, 'admin');
  await revokeApiKey(sb.redis, WS, gone.keyId);
  revoked = gone.key;
  // a1 holds c1 and a2 holds c2 (assigned: the workspace makes no offers).
  const admin = bearer(keys.admin);
  const send = (method: 'POST', url: string, payload: unknown) =>
    app.inject({
      method,
      url: `/v1/workspaces/${WS}${url}`,
      headers: { ...admin, 'content-type': 'application/json' },
      payload: JSON.stringify(payload),
    });
  for (const [agent, skill] of [
    ['a1', 's1'],
    ['a2', 's2'],
  ] as const) {
    expect((await send('POST', '/agents', { id: agent, skills: [skill] })).statusCode).toBe(201);
    expect((await send('POST', `/agents/${agent}/state`, { state: 'available' })).statusCode).toBe(200);
  }
  expect((await send('POST', '/contacts', { id: 'c1', skills: ['s1'] })).statusCode).toBe(201);
  expect((await send('POST', '/contacts', { id: 'c2', skills: ['s2'] })).statusCode).toBe(201);
  for (const c of ['c1', 'c2'])
    await waitFor(`${c} to be assigned`, async () => {
      const r = await app.inject({ url: `/v1/workspaces/${WS}/contacts/${c}`, headers: admin });
      return (r.json() as { state?: string }).state === 'assigned';
    });
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

describe('every route × every role', () => {
  it('the table covers every route the API serves under /v1/workspaces, and the OpenAPI document has each', () => {
    const routes = SAMPLES.map((s) => s.route).sort();
    const table = Object.keys(ROUTE_ACCESS)
      .map((k) => k.replace('/v1/workspaces/:ws', ''))
      .sort();
    expect(table).toEqual(routes);
    const documented = Object.entries(openapi.paths)
      .filter(([p]) => p.startsWith('/v1/workspaces/{ws}'))
      .flatMap(([p, ops]) =>
        Object.keys(ops)
          .filter((m) => m !== 'parameters')
          .map(
            (m) => `${m.toUpperCase()} ${p.replace('/v1/workspaces/{ws}', '').replace(/\{(\w+)\}/g, ':$1')}`,
          ),
      )
      .sort();
    expect(documented).toEqual(routes);
    // And fastify serves each one (a route missing would answer 404 no-route to an admin).
    for (const s of SAMPLES)
      expect(
        app.hasRoute({ method: s.method, url: `/v1/workspaces/:ws${s.route.split(' ')[1]}` }),
        s.route,
      ).toBe(true);
  });

  for (const role of API_KEY_ROLES) {
    it(`role ${role}: allowed where the table says, 403 problem+json elsewhere, nothing appended`, async () => {
      for (const s of SAMPLES) {
        if (s.allowed.includes(role)) {
          const r = await call(s, bearer(keys[role]));
          expect([401, 403], `${role} ${s.method} ${s.path}: ${JSON.stringify(r.body)}`).not.toContain(
            r.status,
          );
          expect(r.status, `${role} ${s.method} ${s.path}: ${JSON.stringify(r.body)}`).toBeLessThan(500);
        } else await expectRefused(s, bearer(keys[role]), 403);
      }
    });
  }

  it("an agent key acting on another agent's id, contact or offer is refused with 403, nothing appended", async () => {
    const ownScoped = SAMPLES.filter(
      (s) => s.allowed.includes('agent') && /\{own/.test(`${s.path}${JSON.stringify(s.body ?? '')}`),
    );
    expect(ownScoped.map((s) => s.route)).toEqual([
      'POST /agents/:id/state',
      'POST /contacts/:id/complete',
      'POST /contacts/:id/accept',
      'POST /contacts/:id/reject',
      'GET /agents/:id',
      'GET /contacts/:id',
    ]);
    for (const s of ownScoped) await expectRefused(s, bearer(keys.agent), 403, 'other');
    // accept naming another agent for its own contact, and a contact no one has.
    const accept = SAMPLES.find((s) => s.route === 'POST /contacts/:id/accept')!;
    await expectRefused({ ...accept, body: { agentId: 'a2' } }, bearer(keys.agent), 403);
    const read = SAMPLES.find((s) => s.route === 'GET /contacts/:id')!;
    await expectRefused({ ...read, path: '/contacts/nobody-has-it' }, bearer(keys.agent), 403);
    // The live feed of another agent.
    const live = SAMPLES.find((s) => s.route === 'GET /events/live')!;
    await expectRefused({ ...live, path: '/events/live?agent=a2' }, bearer(keys.agent), 403);
  });

  it('no key, a malformed, unknown or revoked key: 401 with WWW-Authenticate: Bearer on every route', async () => {
    const unknown = `sb_${'0'.repeat(16)}_${'A'.repeat(43)}`;
    const wrongSecret = `${keys.admin.slice(0, 20)}${'B'.repeat(43)}`;
    for (const s of SAMPLES)
      for (const headers of [
        {},
        { authorization: 'Basic YWRtaW46YWRtaW4=' },
        { authorization: 'Bearer not-a-key' },
        bearer(unknown),
        bearer(wrongSecret),
        bearer(revoked),
      ])
        await expectRefused(s, headers, 401);
  });

  it('a key of one workspace can do nothing in another: 403 on every route, whatever its role', async () => {
    for (const s of SAMPLES) {
      await expectRefused(s, bearer(otherAdmin), 403);
      for (const role of API_KEY_ROLES) await expectRefused(s, bearer(keys[role]), 403, 'own', OTHER);
    }
  });

  it('/health, /status, /metrics and /openapi.json stay open; /status says auth is on', async () => {
    for (const url of ['/health', '/status', '/metrics', '/openapi.json']) {
      const r = await app.inject({ url });
      expect(r.statusCode, url).toBe(200);
    }
    expect((await app.inject({ url: '/status' })).json()).toMatchObject({ auth: 'on' });
    // An unknown route stays a 404, with or without a key.
    expect((await app.inject({ url: '/v2/nothing' })).statusCode).toBe(404);
  });

  it('an agent desk works with its key alone: presence, the offer accepted, the contact completed', async () => {
    const ws = OTHER;
    const admin = bearer(otherAdmin);
    const desk = await keyOf(sb.redis, ws, 'agent', 'desk-1');
    const as = (
      headers: Record<string, string>,
      method: 'POST' | 'PUT' | 'GET',
      path: string,
      body?: unknown,
    ) =>
      app.inject({
        method,
        url: `/v1/workspaces/${ws}${path}`,
        headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
      });
    expect((await as(admin, 'PUT', '/settings', { offerTimeoutMs: 60_000 })).statusCode).toBe(200);
    expect((await as(admin, 'POST', '/agents', { id: 'desk-1', skills: ['d'] })).statusCode).toBe(201);
    const me = bearer(desk.key);
    expect((await as(me, 'POST', '/agents/desk-1/state', { state: 'available' })).statusCode).toBe(200);
    expect((await as(admin, 'POST', '/contacts', { id: 'for-desk', skills: ['d'] })).statusCode).toBe(201);
    await waitFor(
      'the offer',
      async () => (await as(me, 'GET', '/contacts/for-desk')).json().state === 'offered',
    );
    const accepted = await as(me, 'POST', '/contacts/for-desk/accept', { agentId: 'desk-1' });
    expect(accepted.statusCode, accepted.body).toBe(200);
    const done = await as(me, 'POST', '/contacts/for-desk/complete');
    expect(done.statusCode, done.body).toBe(200);
    expect((await as(me, 'GET', '/agents/desk-1')).json()).toMatchObject({ state: 'available' });
    // A contact its agent completed stays readable with its key (SECURITY.md: its agentId is still
    // that agent), and with no other agent's.
    const after = await as(me, 'GET', '/contacts/for-desk');
    expect(after.statusCode, after.body).toBe(200);
    expect(after.json()).toMatchObject({ id: 'for-desk', state: 'completed', agentId: 'desk-1' });
    const otherDesk = await keyOf(sb.redis, ws, 'agent', 'desk-2');
    expect((await as(bearer(otherDesk.key), 'GET', '/contacts/for-desk')).statusCode).toBe(403);
    // One it rejected is back in the queue, no longer its agent's: refused.
    expect((await as(admin, 'POST', '/contacts', { id: 'declined', skills: ['d'] })).statusCode).toBe(201);
    await waitFor(
      'the second offer',
      async () => (await as(me, 'GET', '/contacts/declined')).json().state === 'offered',
    );
    const rejected = await as(me, 'POST', '/contacts/declined/reject', { agentId: 'desk-1' });
    expect(rejected.statusCode, rejected.body).toBe(200);
    expect((await as(me, 'GET', '/contacts/declined')).statusCode).toBe(403);
    const events = await as(admin, 'GET', '/events?type=AssignmentAccepted,ContactCompleted&limit=1000');
    const mine = (
      events.json() as { events: { data: { contactId: string }; meta: Record<string, unknown> }[] }
    ).events.filter((e) => e.data.contactId === 'for-desk');
    expect(mine.map((e) => e.meta)).toEqual([
      expect.objectContaining({ keyId: desk.keyId, role: 'agent' }),
      expect.objectContaining({ keyId: desk.keyId, role: 'agent' }),
    ]);
    // The audit knows the key's agent: what the desk sent for its own agent is no violation.
    const report = await auditWorkspace(sb.redis, ws);
    expect(report.violations.filter((v) => v.kind === 'command')).toEqual([]);
  });

  it("records who did what: the key id and role are in the command entry and every fact's meta", async () => {
    const { key, keyId } = await keyOf(sb.redis, WS, 'integration');
    const r = await app.inject({
      method: 'POST',
      url: `/v1/workspaces/${WS}/contacts`,
      headers: { ...bearer(key), 'content-type': 'application/json' },
      payload: JSON.stringify({ id: 'who-did-it', skills: ['s9'] }),
    });
    expect(r.statusCode).toBe(201);
    const events = await app.inject({
      url: `/v1/workspaces/${WS}/events?type=ContactQueued&limit=1000`,
      headers: bearer(keys.auditor),
    });
    const queued = (
      events.json() as { events: { data: { id: string }; meta: Record<string, unknown> }[] }
    ).events.find((e) => e.data.id === 'who-did-it');
    expect(queued?.meta).toMatchObject({ keyId, role: 'integration' });
  });
});
