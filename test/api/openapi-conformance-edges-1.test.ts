/**
 * Each route's answers, status by status, against what the OpenAPI document says of that status:
 * its schema, its problem type, and the headers docs/API.md promises (Location, Retry-After,
 * WWW-Authenticate, Idempotent-Replayed). A client generated from the document read
 * `GET /health`'s 503 during a drain (`state: "stopping"`) as invalid, since Problem allowed
 * `state: "paused"` only, and found no Location on POST /keys's 201, no Retry-After on a 429 or a
 * 503, no WWW-Authenticate on a 401, no Idempotent-Replayed on a replayed command, and no 415 (a
 * body in a content coding) nor 417 (an Expect it cannot meet) on the routes that are no command,
 * though any route answers them, nor the 408 (a request that does not arrive within
 * HEADERS_TIMEOUT_MS or REQUEST_TIMEOUT_MS) that Node's parser answers on any route. Now the document
 * declares each. One instance with API keys on, in this process.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openapi } from '../../src/adapters/http/openapi.ts';
import { PROBLEM_TYPES } from '../../src/adapters/http/problem.ts';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { rawHttp, rawRequest } from '../support/raw-http.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'conformance-edges';
type Method = 'get' | 'put' | 'post' | 'delete' | 'patch';
type Schema = Record<string, unknown>;
interface Response {
  readonly content?: Record<string, { schema?: Schema }>;
  readonly headers?: Record<string, { required?: boolean }>;
}
interface Operation {
  readonly responses: Record<string, Response>;
}

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
const doc = JSON.parse(JSON.stringify(openapi).replaceAll('"#/components/', '"doc#/components/')) as {
  paths: Record<string, Record<string, Operation>>;
  components: object;
};
ajv.addSchema({ $id: 'doc', components: doc.components }, 'doc');

/** The headers docs/API.md promises on some answers: each one an answer carries must be declared. */
const PROMISED = ['location', 'retry-after', 'www-authenticate', 'idempotent-replayed'];

function templateOf(path: string): string | undefined {
  const bare = path.split('?')[0]!;
  return Object.keys(doc.paths).find((t) =>
    new RegExp(`^${t.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`).test(bare),
  );
}

let redis: TestRedis;
let sb: Running;
let app: FastifyInstance;
const keys: Record<'admin' | 'auditor' | 'agent' | 'burst', string> = {
  admin: '',
  auditor: '',
  agent: '',
  burst: '',
};
/** What the document gets wrong, each `<METHOD> <path> <status>: <what>`. */
const wrong = new Set<string>();

interface Sent {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Record<string, unknown>;
}

/** One request; what its answer has that the document does not say is added to `wrong`. */
async function call(
  method: Method,
  path: string,
  o: { body?: unknown; raw?: string; key?: keyof typeof keys | null; headers?: Record<string, string> } = {},
): Promise<Sent> {
  const key = o.key === undefined ? keys.admin : o.key === null ? undefined : keys[o.key];
  const res = await app.inject({
    method: method.toUpperCase() as 'GET',
    url: path,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...o.headers,
    },
    ...(o.body !== undefined ? { payload: JSON.stringify(o.body) } : {}),
    ...(o.raw !== undefined ? { payload: o.raw } : {}),
  });
  const body = /json/.test(String(res.headers['content-type'])) ? res.json() : res.body;
  return check(method, path, { status: res.statusCode, body, headers: res.headers });
}

/** An answer against what the document says of its status; what it gets wrong is added to `wrong`. */
function check(method: Method, path: string, sent: Sent): Sent {
  const { status: code, body, headers } = sent;
  const template = templateOf(path);
  const at = `${method.toUpperCase()} ${template ?? path} ${code}`;
  const op = template ? doc.paths[template]![method] : undefined;
  const documented = op?.responses[String(code)];
  if (!documented) {
    wrong.add(`${at}: status not documented (${Object.keys(op?.responses ?? {}).join(', ')})`);
    return sent;
  }
  const media = String(headers['content-type'] ?? '').split(';')[0]!;
  const schema = documented.content?.[media]?.schema;
  if (code !== 304 && !documented.content?.[media]) wrong.add(`${at}: media type ${media}`);
  if (schema && /json/.test(media)) {
    const v = ajv.compile(schema);
    if (!v(body)) wrong.add(`${at}: ${JSON.stringify(v.errors)} in ${JSON.stringify(body).slice(0, 300)}`);
  }
  if (media === 'application/problem+json') {
    const { type, status } = body as { type: string; status: number };
    const slug = type.replace('/problems/', '') as keyof typeof PROBLEM_TYPES;
    if (PROBLEM_TYPES[slug] !== code || status !== code)
      wrong.add(`${at}: problem ${type} with status ${status}`);
  }
  const declared = Object.keys(documented.headers ?? {}).map((h) => h.toLowerCase());
  for (const h of PROMISED)
    if (headers[h] !== undefined && !declared.includes(h)) wrong.add(`${at}: header ${h} not declared`);
  for (const [h, spec] of Object.entries(documented.headers ?? {}))
    if (spec.required && headers[h.toLowerCase()] === undefined) wrong.add(`${at}: header ${h} missing`);
  return sent;
}

const at = (p: string) => `/v1/workspaces/${WS}${p}`;
/** A request under the workspace that must answer `status`: its answer. */
async function expectStatus(
  status: number,
  method: Method,
  path: string,
  o: Parameters<typeof call>[2] = {},
): Promise<Sent> {
  const r = await call(method, at(path), o);
  expect(r.status, `${method} ${path}: ${JSON.stringify(r.body).slice(0, 300)}`).toBe(status);
  return r;
}
const contactState = async (id: string) =>
  ((await call('get', at(`/contacts/${id}`))).body as { state: string }).state;

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSwitchboard(
    loadConfig({
      ...redis.env,
      AUTH: 'on',
      PORT: '0',
      LOG_LEVEL: 'silent',
      WORKSPACES: WS,
      DISCOVER_WORKSPACES: 'false',
      // A key's burst is spent in one quick loop (the 429); the walk sends far fewer at once.
      RATE_LIMIT: '50',
      RATE_LIMIT_BURST: '200',
      // The last test reads /health during the drain of a stop.
      LB_DRAIN_MS: '300',
    }),
    pino({ level: 'silent' }),
  );
  app = sb.api!;
  await projectorReady(sb.redis, [WS]);
  keys.admin = (await createApiKey(sb.redis, { workspace: WS, role: 'admin' })).key;
  keys.auditor = (await createApiKey(sb.redis, { workspace: WS, role: 'auditor' })).key;
  keys.agent = (await createApiKey(sb.redis, { workspace: WS, role: 'agent', agentId: 'a1' })).key;
  keys.burst = (await createApiKey(sb.redis, { workspace: WS, role: 'auditor' })).key;
}, 30_000);

beforeEach(() => wrong.clear());

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

describe("each route's answers, status by status, as the OpenAPI document says", () => {
  it('commands: 200, 201, 400, 401, 403, 404, 409, 413, 415, 422, and a replay', async () => {
    await expectStatus(200, 'put', '/settings', { body: { channels: ['voice', 'chat'] } });
    await expectStatus(201, 'post', '/agents', { body: { id: 'a1', skills: ['x'] } });
    await expectStatus(201, 'post', '/agents', { body: { id: 'a2', skills: ['x'] } });
    await expectStatus(400, 'post', '/agents', { body: { id: 'a3' } });
    await expectStatus(401, 'post', '/agents', { body: { id: 'a3', skills: ['x'] }, key: null });
    await expectStatus(403, 'post', '/agents', { body: { id: 'a3', skills: ['x'] }, key: 'auditor' });
    await expectStatus(409, 'post', '/agents', { body: { id: 'a1', skills: ['x'] } });
    await expectStatus(413, 'post', '/agents', {
      body: { id: 'a3', skills: ['x'], name: 'x'.repeat(2_000_000) },
    });
    await expectStatus(415, 'post', '/agents', { raw: 'x', headers: { 'content-type': 'text/plain' } });
    const idem = { 'idempotency-key': 'conformance-edges-1' };
    await expectStatus(201, 'post', '/agents', { body: { id: 'a3', skills: ['x'] }, headers: idem });
    const replay = await expectStatus(201, 'post', '/agents', {
      body: { id: 'a3', skills: ['x'] },
      headers: idem,
    });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    await expectStatus(422, 'post', '/agents', { body: { id: 'a4', skills: ['x'] }, headers: idem });
    const again = { 'idempotency-key': 'conformance-edges-2' };
    await expectStatus(409, 'post', '/agents', { body: { id: 'a1', skills: ['x'] }, headers: again });
    const refused = await expectStatus(409, 'post', '/agents', {
      body: { id: 'a1', skills: ['x'] },
      headers: again,
    });
    expect(refused.headers['idempotent-replayed']).toBe('true');
    await expectStatus(422, 'post', '/agents', { body: { id: 'a4', skills: ['x'], capacity: { fax: 1 } } });
    await expectStatus(200, 'patch', '/agents/a1', { body: { name: 'Ann' } });
    await expectStatus(404, 'patch', '/agents/nobody', { body: { name: 'Ann' } });
    await expectStatus(200, 'delete', '/agents/a3');
    await expectStatus(404, 'delete', '/agents/a3');
    await expectStatus(403, 'post', '/agents/a2/state', { body: { state: 'available' }, key: 'agent' });
    await expectStatus(404, 'post', '/agents/nobody/state', { body: { state: 'available' } });
    await expectStatus(200, 'post', '/agents/a1/state', { body: { state: 'available' }, key: 'agent' });
    await expectStatus(201, 'post', '/contacts', { body: { id: 'c1', skills: ['x'] } });
    await expectStatus(409, 'post', '/contacts', { body: { id: 'c1', skills: ['x'] } });
    await expectStatus(422, 'post', '/contacts', { body: { skills: ['x'], channel: 'fax' } });
    await waitFor('c1 assigned', async () => (await contactState('c1')) === 'assigned');
    await expectStatus(409, 'post', '/contacts/c1/accept', { body: { agentId: 'a1' } });
    await expectStatus(409, 'post', '/contacts/c1/reject', { body: { agentId: 'a1' } });
    await expectStatus(409, 'post', '/contacts/c1/abandon');
    await expectStatus(404, 'post', '/contacts/nobody/complete');
    await expectStatus(200, 'post', '/contacts/c1/transfer', { body: { skills: ['nobody'] } });
    await expectStatus(409, 'post', '/contacts/c1/complete');
    await expectStatus(409, 'post', '/contacts/c1/transfer', { body: { skills: ['x'] } });
    await expectStatus(200, 'post', '/contacts/c1/abandon');
    await expectStatus(422, 'put', '/settings', { body: { channels: ['voice'] } });
    expect([...wrong]).toEqual([]);
  }, 30_000);

  it('queries: 200, 400, 401, 403, 404, 409', async () => {
    const ahead = 'minPosition=99999999999999-0';
    for (const path of ['/agents', '/settings', '/stats', '/events']) {
      await expectStatus(200, 'get', path);
      await expectStatus(400, 'get', `${path}?x=1`);
      await expectStatus(401, 'get', path, { key: null });
      await expectStatus(403, 'get', path, { key: 'agent' });
      await expectStatus(409, 'get', `${path}?${ahead}`);
    }
    await expectStatus(200, 'get', '/agents/a1', { key: 'agent' });
    await expectStatus(403, 'get', '/agents/a2', { key: 'agent' });
    await expectStatus(404, 'get', '/agents/nobody');
    await expectStatus(409, 'get', `/agents/a1?${ahead}`);
    await expectStatus(200, 'get', '/contacts/c1');
    await expectStatus(404, 'get', '/contacts/nobody');
    await expectStatus(400, 'get', '/contacts/c1?x=1');
    await expectStatus(409, 'get', '/events?after=99999999999999-0');
    const events = (await expectStatus(200, 'get', '/events?limit=3')).body as {
      events: { position: string }[];
    };
    await expectStatus(200, 'get', `/state?at=${events.events[2]!.position}`);
    await expectStatus(400, 'get', '/state');
    await expectStatus(409, 'get', '/state?at=99999999999999-0');
    const range = `from=${new Date(Date.now() - 3_600_000).toISOString()}&to=${new Date().toISOString()}`;
    await expectStatus(200, 'get', `/stats/intervals?${range}`);
    await expectStatus(200, 'get', `/stats/intervals?${range}&source=log`);
    await expectStatus(400, 'get', '/stats/intervals');
    await expectStatus(403, 'get', `/stats/intervals?${range}`, { key: 'agent' });
    await expectStatus(426, 'get', '/events/live');
    // A body in a content coding is refused on any route, before it is read (docs/API.md).
    const gzip = { 'content-type': 'application/json', 'content-encoding': 'gzip' };
    for (const path of ['/agents', '/agents/a1', '/stats', '/keys', '/keys/me', '/keys/0000000000000000'])
      await expectStatus(415, 'get', path, { raw: '{}', headers: gzip });
    expect([...wrong]).toEqual([]);
  });

  it('keys and tickets: 200, 201, 400, 401, 403, 404, 409, 413, 415', async () => {
    const made = await expectStatus(201, 'post', '/keys', { body: { role: 'auditor', name: 'edges' } });
    expect(made.headers.location).toBe(at(`/keys/${(made.body as { keyId: string }).keyId}`));
    await expectStatus(400, 'post', '/keys', { body: { role: 'agent' } });
    await expectStatus(403, 'post', '/keys', { body: { role: 'auditor' }, key: 'auditor' });
    await expectStatus(413, 'post', '/keys', { body: { role: 'auditor', name: 'x'.repeat(2_000_000) } });
    await expectStatus(415, 'post', '/keys', { raw: 'x', headers: { 'content-type': 'text/plain' } });
    await expectStatus(200, 'get', '/keys');
    await expectStatus(403, 'get', '/keys', { key: 'auditor' });
    const me = await expectStatus(200, 'get', '/keys/me', { key: 'agent' });
    expect(me.body).toMatchObject({ role: 'agent', agentId: 'a1' });
    await expectStatus(401, 'get', '/keys/me', { key: null });
    const keyId = (made.body as { keyId: string }).keyId;
    await expectStatus(200, 'get', `/keys/${keyId}`);
    await expectStatus(400, 'get', '/keys/NOT-A-KEY-ID');
    await expectStatus(404, 'get', '/keys/0000000000000000');
    await expectStatus(200, 'delete', `/keys/${keyId}`);
    await expectStatus(404, 'delete', '/keys/0000000000000000');
    await expectStatus(201, 'post', '/ws-tickets', { key: 'agent' });
    await expectStatus(400, 'post', '/ws-tickets', { body: { after: 'soon' } });
    await expectStatus(409, 'post', '/ws-tickets', { body: { after: '99999999999999-0' } });
    expect([...wrong]).toEqual([]);
  });

  it('a key past its rate limit: 429 with Retry-After, as documented', async () => {
    let last: Sent | undefined;
    for (let i = 0; i < 1000 && last?.status !== 429; i++)
      last = await call('get', at('/keys/me'), { key: 'burst' });
    expect(last?.status).toBe(429);
    expect(Number(last?.headers['retry-after'])).toBeGreaterThan(0);
    expect([...wrong]).toEqual([]);
  });

  it('the open routes: 200, and GET /health 503 shutting-down during the drain of a stop', async () => {
    const gzip = { 'content-type': 'application/json', 'content-encoding': 'gzip' };
    for (const path of ['/health', '/status', '/metrics', '/openapi.json', '/', '/docs']) {
      expect((await call('get', path, { key: null })).status, path).toBe(200);
      expect((await call('get', path, { key: null, raw: '{}', headers: gzip })).status, path).toBe(415);
    }
    // An Expect the server cannot meet, on any route: Node's own check, before any route runs.
    const port = Number(new URL(sb.url!).port);
    for (const path of ['/status', '/health', at('/agents'), at('/keys/me')]) {
      const r = await rawHttp(
        port,
        rawRequest('GET', path, [`Authorization: Bearer ${keys.admin}`, 'Expect: nothing']),
      );
      expect(r.status, path).toBe(417);
      check('get', path, { status: r.status, body: JSON.parse(r.body), headers: r.headers });
    }
    const stopped = sb.stop();
    const health = await call('get', '/health', { key: null });
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ type: '/problems/shutting-down', state: 'stopping' });
    expect(health.headers['retry-after']).toBe('1');
    const status = await call('get', '/status', { key: null });
    expect(status.body).toMatchObject({ state: 'stopping' });
    await stopped;
    expect([...wrong]).toEqual([]);
  });

  it('every operation lists each status the edge answers before any route runs', () => {
    // What the edge answers on any route, as docs/API.md's problem table types it, and where.
    const edge: readonly (readonly [string, number])[] = [
      ['malformed-request', 400], // edge.ts clientErrorHandler: Node's parser refused the bytes
      ['bad-request', 400], // edge.ts headersProblem: Host missing, repeated or malformed
      ['invalid-url', 400], // server.ts frameworkErrors (bad %-encoding), edge.ts fragmentProblem
      ['request-timeout', 408], // edge.ts clientErrorHandler: HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS
      ['uri-too-long', 414], // server.ts frameworkErrors (long segment), limits.ts (MAX_URL_BYTES)
      ['unsupported-encoding', 415], // server.ts preParsing, json-body.ts contentEncodingProblem
      ['expectation-failed', 417], // edge.ts refuseExpectation, expectationProblem on an upgrade
      ['rate-limited', 429], // limits.ts, on every route but /health and /metrics
      ['headers-too-large', 431], // edge.ts clientErrorHandler: over MAX_HEADER_BYTES
      ['shutting-down', 503], // server.ts onRequest, while the instance stops
    ];
    const table = readFileSync(new URL('../../docs/API.md', import.meta.url), 'utf8');
    for (const [type, status] of edge)
      expect(table, `docs/API.md's problem table has ${type}`).toContain(
        `| \`/problems/${type}\` | ${status} |`,
      );
    const missing: string[] = [];
    for (const [path, item] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(item)) {
        if (!op || typeof op !== 'object' || !('responses' in op)) continue;
        for (const [type, status] of edge) {
          if (status === 429 && (path === '/health' || path === '/metrics')) continue;
          if (!(String(status) in op.responses))
            missing.push(`${method.toUpperCase()} ${path} ${status} (${type})`);
        }
      }
    expect(missing).toEqual([]);
  });
});
