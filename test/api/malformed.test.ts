/**
 * Malformed requests: every one answers 4xx problem+json whose `status` is the HTTP status
 * (validation 400s name each bad field in `errors`), nothing reaches Redis (every key and value
 * is the same before and after the batch), and the process stays healthy.
 */
import { Cluster } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/adapters/config.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { type Running, startSwitchboard } from '../../src/switchboard.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

const WS = 'api-malformed';
const B = `/v1/workspaces/${WS}`;
const D = '/v1/workspaces/default';
const BODY_LIMIT = 65_536;

let redis: TestRedis;
let running: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  running = await startSwitchboard(
    loadConfig({
      ...redis.env,
      PORT: '0',
      LOG_LEVEL: 'silent',
      COMMAND_TIMEOUT_MS: '2000',
      WORKSPACES: WS,
      BODY_LIMIT: String(BODY_LIMIT),
    }),
    pino({ level: 'silent' }),
  );
  await projectorReady(running.redis, [WS, 'default']);
});

afterAll(async () => {
  await running?.stop();
  await redis?.stop();
});

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';

interface Case {
  readonly name: string;
  readonly method: Method;
  readonly url: string;
  /** A JSON value, sent as application/json. */
  readonly json?: unknown;
  /** A raw body, sent as is (with `headers` choosing its content-type). */
  readonly raw?: string;
  readonly headers?: Record<string, string>;
  readonly status: number;
  /** Field paths the 400's `errors` must name (each of them). */
  readonly paths?: readonly string[];
  /** The problem type the answer must have. */
  readonly type?: string;
}

const id129 = 'a'.repeat(129);
const ws65 = 'w'.repeat(65);
const agent = { id: 'new-agent', skills: ['x'] };
const skills33 = Array.from({ length: 33 }, (_, i) => `s${i}`);

/** POST /agents with `body` replacing the valid body's fields. */
const reg = (name: string, body: unknown, paths: readonly string[]): Case => ({
  name: `POST /agents ${name}`,
  method: 'POST',
  url: `${B}/agents`,
  json: body,
  status: 400,
  paths,
});
const contact = (name: string, body: unknown, paths: readonly string[]): Case => ({
  name: `POST /contacts ${name}`,
  method: 'POST',
  url: `${B}/contacts`,
  json: body,
  status: 400,
  paths,
});
const query = (name: string, url: string, paths: readonly string[]): Case => ({
  name: `GET ${name}`,
  method: 'GET',
  url,
  status: 400,
  paths,
});
const raw = (
  name: string,
  method: Method,
  url: string,
  body: string,
  contentType: string | undefined,
  status: number,
  type?: string,
): Case => ({
  name,
  method,
  url,
  raw: body,
  headers: contentType ? { 'content-type': contentType } : {},
  status,
  ...(type ? { type } : {}),
});
const noRoute = (method: Method, url: string): Case => ({
  name: `${method} ${url} (no such route)`,
  method,
  url,
  status: 404,
  type: '/problems/no-route',
});

const CASES: readonly Case[] = [
  // POST /agents: missing fields and wrong types
  reg('without id', { skills: ['x'] }, ['id']),
  reg('without skills', { id: 'a' }, ['skills']),
  reg('with an empty object', {}, ['id', 'skills']),
  reg('with a numeric id', { id: 5, skills: ['x'] }, ['id']),
  reg('with an empty id', { id: '', skills: ['x'] }, ['id']),
  reg('with a 129-character id', { id: id129, skills: ['x'] }, ['id']),
  reg('with a space in the id', { id: 'a b', skills: ['x'] }, ['id']),
  reg('with a slash in the id', { id: 'a/b', skills: ['x'] }, ['id']),
  reg('with a hash tag in the id', { id: '{x}', skills: ['x'] }, ['id']),
  reg('with skills as a string', { id: 'a', skills: 'x' }, ['skills']),
  reg('with skills null', { id: 'a', skills: null }, ['skills']),
  reg('with empty skills', { id: 'a', skills: [] }, ['skills']),
  reg('with 33 skills', { id: 'a', skills: skills33 }, ['skills']),
  reg('with a space in a skill', { id: 'a', skills: ['x', 'bad skill'] }, ['skills']),
  reg('with a colon in a skill', { id: 'a', skills: ['a:b'] }, ['skills']),
  reg('with a 65-character skill', { id: 'a', skills: ['s'.repeat(65)] }, ['skills']),
  reg('with an empty skill', { id: 'a', skills: [''] }, ['skills']),
  reg('with a numeric skill', { id: 'a', skills: [1] }, ['skills']),
  reg('with a numeric name', { ...agent, name: 5 }, ['name']),
  reg('with an empty name', { ...agent, name: '' }, ['name']),
  reg('with a 201-character name', { ...agent, name: 'n'.repeat(201) }, ['name']),
  reg('with capacity 0', { ...agent, capacity: 0 }, ['capacity']),
  reg('with capacity -1', { ...agent, capacity: -1 }, ['capacity']),
  reg('with capacity 1.5', { ...agent, capacity: 1.5 }, ['capacity']),
  reg('with capacity "2"', { ...agent, capacity: '2' }, ['capacity']),
  reg('with capacity 101', { ...agent, capacity: 101 }, ['capacity']),
  reg('with a misspelt field', { id: 'a', skils: ['x'] }, ['skils', 'skills']),
  reg('with an unknown field', { ...agent, state: 'available' }, ['state']),
  reg('with several bad fields', { id: 1, skills: [], capacity: 0, extra: true }, [
    'id',
    'skills',
    'capacity',
    'extra',
  ]),
  reg('with an array body', [agent], ['(body)']),
  reg('with a string body', 'agent', ['(body)']),
  reg('with a number body', 42, ['(body)']),
  reg('with a boolean body', true, ['(body)']),
  raw('POST /agents with a null body', 'POST', `${B}/agents`, 'null', 'application/json', 400),
  raw('POST /agents with an empty JSON body', 'POST', `${B}/agents`, '', 'application/json', 400),
  raw(
    'POST /agents with truncated JSON',
    'POST',
    `${B}/agents`,
    '{"id": "a", "skills": [',
    'application/json',
    400,
    '/problems/invalid-json',
  ),
  raw(
    'POST /agents with a trailing comma',
    'POST',
    `${B}/agents`,
    '{"id": "a", "skills": ["x"],}',
    'application/json',
    400,
    '/problems/invalid-json',
  ),
  raw(
    'POST /agents with single quotes',
    'POST',
    `${B}/agents`,
    "{'id': 'a'}",
    'application/json',
    400,
    '/problems/invalid-json',
  ),
  raw(
    'POST /agents as text/plain',
    'POST',
    `${B}/agents`,
    JSON.stringify(agent),
    'text/plain',
    415,
    '/problems/unsupported-media-type',
  ),
  raw(
    'POST /agents as a form',
    'POST',
    `${B}/agents`,
    'id=a&skills=x',
    'application/x-www-form-urlencoded',
    415,
    '/problems/unsupported-media-type',
  ),
  raw(
    'POST /agents as XML',
    'POST',
    `${B}/agents`,
    '<agent id="a"/>',
    'application/xml',
    415,
    '/problems/unsupported-media-type',
  ),
  raw(
    'POST /agents with a body and no content-type',
    'POST',
    `${B}/agents`,
    JSON.stringify(agent),
    undefined,
    415,
  ),
  {
    name: 'POST /agents with a body over BODY_LIMIT',
    method: 'POST',
    url: `${B}/agents`,
    json: { ...agent, name: 'n'.repeat(BODY_LIMIT + 10) },
    status: 413,
    type: '/problems/body-too-large',
  },
  {
    name: 'POST /contacts with a body over BODY_LIMIT',
    method: 'POST',
    url: `${B}/contacts`,
    json: { skills: ['x'], attributes: { blob: 'b'.repeat(BODY_LIMIT * 2) } },
    status: 413,
    type: '/problems/body-too-large',
  },
  {
    name: 'POST /agents with a 201-character Idempotency-Key',
    method: 'POST',
    url: `${B}/agents`,
    json: agent,
    headers: { 'idempotency-key': 'k'.repeat(201) },
    status: 400,
    paths: ['Idempotency-Key'],
  },
  {
    name: 'POST /agents with a space in the Idempotency-Key',
    method: 'POST',
    url: `${B}/agents`,
    json: agent,
    headers: { 'idempotency-key': 'two words' },
    status: 400,
    paths: ['Idempotency-Key'],
  },
  {
    name: 'POST /contacts/{id}/abandon with a non-ASCII Idempotency-Key',
    method: 'POST',
    url: `${B}/contacts/seed-contact/abandon`,
    headers: { 'idempotency-key': 'clé' },
    status: 400,
    paths: ['Idempotency-Key'],
  },

  // PATCH /agents/{id}
  {
    name: 'PATCH with an empty object',
    method: 'PATCH',
    url: `${B}/agents/seed-agent`,
    json: {},
    status: 400,
    paths: ['(body)'],
  },
  {
    name: 'PATCH without a body',
    method: 'PATCH',
    url: `${B}/agents/seed-agent`,
    status: 400,
    paths: ['(body)'],
  },
  {
    name: 'PATCH of the id',
    method: 'PATCH',
    url: `${B}/agents/seed-agent`,
    json: { id: 'other' },
    status: 400,
    paths: ['id'],
  },
  {
    name: 'PATCH with empty skills',
    method: 'PATCH',
    url: `${B}/agents/seed-agent`,
    json: { skills: [] },
    status: 400,
    paths: ['skills'],
  },
  {
    name: 'PATCH with 33 skills',
    method: 'PATCH',
    url: `${B}/agents/seed-agent`,
    json: { skills: skills33 },
    status: 400,
    paths: ['skills'],
  },
  {
    name: 'PATCH with capacity 0',
    method: 'PATCH',
    url: `${B}/agents/seed-agent`,
    json: { capacity: 0 },
    status: 400,
    paths: ['capacity'],
  },
  {
    name: 'PATCH with a null name',
    method: 'PATCH',
    url: `${B}/agents/seed-agent`,
    json: { name: null },
    status: 400,
    paths: ['name'],
  },
  {
    name: 'PATCH with an array body',
    method: 'PATCH',
    url: `${B}/agents/seed-agent`,
    json: [{ name: 'x' }],
    status: 400,
    paths: ['(body)'],
  },
  {
    name: 'PATCH with a 129-character id in the path',
    method: 'PATCH',
    url: `${B}/agents/${id129}`,
    json: { name: 'x' },
    status: 400,
    paths: ['id'],
  },
  {
    name: 'PATCH with a space in the path id',
    method: 'PATCH',
    url: `${B}/agents/a%20b`,
    json: { name: 'x' },
    status: 400,
    paths: ['id'],
  },
  {
    name: 'PATCH with %2F in the path id',
    method: 'PATCH',
    url: `${B}/agents/a%2Fb`,
    json: { name: 'x' },
    status: 400,
    paths: ['id'],
  },
  raw('PATCH as text/plain', 'PATCH', `${B}/agents/seed-agent`, '{"name":"x"}', 'text/plain', 415),

  // POST /agents/{id}/state
  {
    name: 'state sleeping',
    method: 'POST',
    url: `${B}/agents/seed-agent/state`,
    json: { state: 'sleeping' },
    status: 400,
    paths: ['state'],
  },
  {
    name: 'state busy (derived, not settable)',
    method: 'POST',
    url: `${B}/agents/seed-agent/state`,
    json: { state: 'busy' },
    status: 400,
    paths: ['state'],
  },
  {
    name: 'state as a number',
    method: 'POST',
    url: `${B}/agents/seed-agent/state`,
    json: { state: 1 },
    status: 400,
    paths: ['state'],
  },
  {
    name: 'state missing',
    method: 'POST',
    url: `${B}/agents/seed-agent/state`,
    json: {},
    status: 400,
    paths: ['state'],
  },
  {
    name: 'state with an unknown field',
    method: 'POST',
    url: `${B}/agents/seed-agent/state`,
    json: { state: 'away', why: 'lunch' },
    status: 400,
    paths: ['why'],
  },
  {
    name: 'state without a body',
    method: 'POST',
    url: `${B}/agents/seed-agent/state`,
    status: 400,
    paths: ['(body)'],
  },
  {
    name: 'state with a bad path id',
    method: 'POST',
    url: `${B}/agents/bad%20id/state`,
    json: { state: 'away' },
    status: 400,
    paths: ['id'],
  },

  // Body-less commands with a body, and bad ids in their paths
  {
    name: 'DELETE with a body',
    method: 'DELETE',
    url: `${B}/agents/seed-agent`,
    json: { force: true },
    status: 400,
    paths: ['(body)'],
  },
  {
    name: 'DELETE with an array body',
    method: 'DELETE',
    url: `${B}/agents/seed-agent`,
    json: [],
    status: 400,
    paths: ['(body)'],
  },
  {
    name: 'DELETE with a string body',
    method: 'DELETE',
    url: `${B}/agents/seed-agent`,
    json: 'x',
    status: 400,
    paths: ['(body)'],
  },
  {
    name: 'DELETE with a 129-character id',
    method: 'DELETE',
    url: `${B}/agents/${id129}`,
    status: 400,
    paths: ['id'],
  },
  {
    name: 'DELETE with %2F in the id',
    method: 'DELETE',
    url: `${B}/agents/seed%2Fagent`,
    status: 400,
    paths: ['id'],
  },
  {
    name: 'abandon with a body',
    method: 'POST',
    url: `${B}/contacts/seed-contact/abandon`,
    json: { reason: 'x' },
    status: 400,
    paths: ['(body)'],
  },
  {
    name: 'complete with a body',
    method: 'POST',
    url: `${B}/contacts/seed-contact/complete`,
    json: [1],
    status: 400,
    paths: ['(body)'],
  },
  {
    name: 'complete with a number body',
    method: 'POST',
    url: `${B}/contacts/seed-contact/complete`,
    json: 0,
    status: 400,
    paths: ['(body)'],
  },
  {
    name: 'complete with a space in the id',
    method: 'POST',
    url: `${B}/contacts/seed%20contact/complete`,
    status: 400,
    paths: ['id'],
  },
  {
    name: 'abandon with a 129-character id',
    method: 'POST',
    url: `${B}/contacts/${id129}/abandon`,
    status: 400,
    paths: ['id'],
  },
  raw(
    'abandon with a text/plain body',
    'POST',
    `${B}/contacts/seed-contact/abandon`,
    'please',
    'text/plain',
    415,
  ),

  // POST /contacts
  contact('without skills', {}, ['skills']),
  contact('with priority -1', { skills: ['x'], priority: -1 }, ['priority']),
  contact('with priority 10', { skills: ['x'], priority: 10 }, ['priority']),
  contact('with priority 1.5', { skills: ['x'], priority: 1.5 }, ['priority']),
  contact('with priority "3"', { skills: ['x'], priority: '3' }, ['priority']),
  contact('with priority null', { skills: ['x'], priority: null }, ['priority']),
  contact('with attributes as an array', { skills: ['x'], attributes: [1, 2] }, ['attributes']),
  contact('with attributes as a string', { skills: ['x'], attributes: 'vip' }, ['attributes']),
  contact('with attributes over 16 KiB', { skills: ['x'], attributes: { blob: 'b'.repeat(17_000) } }, [
    'attributes',
  ]),
  contact('with a 129-character id', { id: id129, skills: ['x'] }, ['id']),
  contact('with an empty id', { id: '', skills: ['x'] }, ['id']),
  contact('with a numeric id', { id: 7, skills: ['x'] }, ['id']),
  contact('with 33 skills', { skills: skills33 }, ['skills']),
  contact('with a bad skill', { skills: ['ok', 'n/a'] }, ['skills']),
  contact('with an unknown field', { skills: ['x'], agentId: 'seed-agent' }, ['agentId']),
  contact('with state', { skills: ['x'], state: 'assigned' }, ['state']),
  contact('with several bad fields', { id: '', skills: 'x', priority: 99 }, ['id', 'skills', 'priority']),
  raw('POST /contacts with a null body', 'POST', `${B}/contacts`, 'null', 'application/json', 400),
  raw('POST /contacts with an array body', 'POST', `${B}/contacts`, '[]', 'application/json', 400),
  raw(
    'POST /contacts with bad JSON',
    'POST',
    `${B}/contacts`,
    '{"skills": ["x"]',
    'application/json',
    400,
    '/problems/invalid-json',
  ),

  // Bad workspace names
  {
    name: 'a space in the workspace',
    method: 'POST',
    url: '/v1/workspaces/bad%20ws/agents',
    json: agent,
    status: 400,
    paths: ['ws'],
  },
  {
    name: 'a 65-character workspace',
    method: 'POST',
    url: `/v1/workspaces/${ws65}/agents`,
    json: agent,
    status: 400,
    paths: ['ws'],
  },
  {
    name: 'a hash tag in the workspace',
    method: 'POST',
    url: '/v1/workspaces/%7Bx%7D/contacts',
    json: { skills: ['x'] },
    status: 400,
    paths: ['ws'],
  },
  {
    name: 'a dot in the workspace',
    method: 'POST',
    url: '/v1/workspaces/a.b/contacts',
    json: { skills: ['x'] },
    status: 400,
    paths: ['ws'],
  },
  {
    name: 'a colon in the workspace',
    method: 'DELETE',
    url: '/v1/workspaces/a:b/agents/x',
    status: 400,
    paths: ['ws'],
  },
  {
    name: '%2F in the workspace',
    method: 'POST',
    url: '/v1/workspaces/a%2Fb/agents/x/state',
    json: { state: 'away' },
    status: 400,
    paths: ['ws'],
  },
  query('/stats of a bad workspace', '/v1/workspaces/bad%20ws/stats', ['ws']),
  query('/events of a bad workspace', `/v1/workspaces/${ws65}/events`, ['ws']),
  query('/agents/{id} of a bad workspace and id', '/v1/workspaces/a.b/agents/c%20d', ['ws', 'id']),

  // Query parameters
  query('/events?limit=0', `${B}/events?limit=0`, ['limit']),
  query('/events?limit=abc', `${B}/events?limit=abc`, ['limit']),
  query('/events?limit=1001', `${B}/events?limit=1001`, ['limit']),
  query('/events?limit=-1', `${B}/events?limit=-1`, ['limit']),
  query('/events?limit=1.5', `${B}/events?limit=1.5`, ['limit']),
  query('/events?limit twice', `${B}/events?limit=1&limit=2`, ['limit']),
  query('/events?after=notaposition', `${B}/events?after=notaposition`, ['after']),
  query('/events?after=1-2-3', `${B}/events?after=1-2-3`, ['after']),
  query('/events?after= (empty)', `${B}/events?after=`, ['after']),
  query('/events?type=Nope', `${B}/events?type=Nope`, ['type']),
  query('/events?type=AssignmentMade,Nope', `${B}/events?type=AssignmentMade,Nope`, ['type']),
  query('/events?type= (empty)', `${B}/events?type=`, ['type']),
  query('/events?agent=x (unknown here)', `${B}/events?agent=x`, ['agent']),
  query('/events?minPosition=abc', `${B}/events?minPosition=abc`, ['minPosition']),
  query('/events with several bad params', `${B}/events?limit=0&after=x&type=Nope&foo=1`, [
    'limit',
    'after',
    'type',
    'foo',
  ]),
  query('/agents?state=sleeping', `${B}/agents?state=sleeping`, ['state']),
  query('/agents?skill=bad skill', `${B}/agents?skill=bad%20skill`, ['skill']),
  query('/agents?limit=0', `${B}/agents?limit=0`, ['limit']),
  query('/agents?limit=10001', `${B}/agents?limit=10001`, ['limit']),
  query('/agents?foo=bar', `${B}/agents?foo=bar`, ['foo']),
  query('/agents/{id}?after=1-0', `${B}/agents/seed-agent?after=1-0`, ['after']),
  query('/agents/{id}?minPosition=x', `${B}/agents/seed-agent?minPosition=x`, ['minPosition']),
  query('/agents/{129 characters}', `${B}/agents/${id129}`, ['id']),
  query('/contacts/{id}?foo', `${B}/contacts/seed-contact?foo=1`, ['foo']),
  query('/contacts/{space}', `${B}/contacts/%20`, ['id']),
  query('/contacts/{%2F}', `${B}/contacts/a%2Fb`, ['id']),
  query('/stats?x=1', `${B}/stats?x=1`, ['x']),
  query('/stats?minPosition=0', `${D}/stats?minPosition=0`, ['minPosition']),

  // Unknown routes and methods
  noRoute('GET', '/'),
  noRoute('GET', '/v1'),
  noRoute('GET', '/v1/nope'),
  noRoute('GET', `${B}/queues`),
  noRoute('GET', '/v2/workspaces/default/agents'),
  noRoute('PUT', `${B}/agents/seed-agent`),
  noRoute('POST', `${B}/agents/seed-agent`),
  noRoute('PATCH', `${B}/contacts/seed-contact`),
  noRoute('DELETE', `${B}/contacts/seed-contact`),
  noRoute('POST', `${B}/agents/seed-agent/assign`),
  noRoute('DELETE', `${B}/events`),
  noRoute('POST', '/health'),
  noRoute('DELETE', '/v1/workspaces/default'),
];

interface Reply {
  statusCode: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
}

async function send(c: Case): Promise<Reply> {
  const payload = c.raw !== undefined ? c.raw : c.json !== undefined ? JSON.stringify(c.json) : undefined;
  const headers: Record<string, string> = {
    ...(c.json !== undefined ? { 'content-type': 'application/json' } : {}),
    ...c.headers,
  };
  return (await running.api!.inject({
    method: c.method,
    url: c.url,
    headers,
    ...(payload !== undefined ? { payload } : {}),
  })) as unknown as Reply;
}

/** Every key of the database with its type and full value. */
async function snapshot(r: RedisClient): Promise<Map<string, unknown>> {
  const keys: string[] = [];
  // On a cluster, every master holds its own share of the keys.
  const nodes = r instanceof Cluster ? r.nodes('master') : [r];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
  }
  const out = new Map<string, unknown>();
  for (const key of keys.sort()) {
    const type = await r.type(key);
    let value: unknown;
    switch (type) {
      case 'string':
        value = await r.get(key);
        break;
      case 'hash':
        value = Object.entries(await r.hgetall(key)).sort();
        break;
      case 'list':
        value = await r.lrange(key, 0, -1);
        break;
      case 'set':
        value = (await r.smembers(key)).sort();
        break;
      case 'zset':
        value = await r.zrange(key, 0, -1, 'WITHSCORES');
        break;
      case 'stream': {
        const info = (await r.xinfo('STREAM', key)) as unknown[];
        const lastId = info[info.indexOf('last-generated-id') + 1];
        value = { len: await r.xlen(key), lastId, entries: await r.xrange(key, '-', '+') };
        break;
      }
      default:
        value = type;
    }
    out.set(key, { type, value });
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('malformed requests', () => {
  it(`${CASES.length} malformed requests answer 4xx problem+json and change nothing in Redis`, async () => {
    expect(CASES.length).toBeGreaterThanOrEqual(50);
    // Something to protect: an agent, a queued contact, an idempotency record, an event history.
    const api = running.api!;
    const seed = [
      { method: 'POST', url: `${B}/agents`, payload: { id: 'seed-agent', skills: ['x'] } },
      { method: 'POST', url: `${B}/contacts`, payload: { id: 'seed-contact', skills: ['nobody'] } },
      { method: 'POST', url: `${D}/agents`, payload: { id: 'seed-agent', skills: ['x'] } },
    ] as const;
    for (const s of seed) {
      const res = await api.inject({ ...s, headers: { 'idempotency-key': `seed-${s.url}` } });
      expect(res.statusCode, res.body).toBe(201);
    }
    await sleep(200);
    const before = await snapshot(running.redis);
    expect(before.size).toBeGreaterThan(5);

    const failures: string[] = [];
    let withPaths = 0;
    for (const c of CASES) {
      const res = await send(c);
      const where = `${c.name} (${c.method} ${c.url.slice(0, 80)}): ${res.statusCode} ${res.body.slice(0, 300)}`;
      if (res.statusCode !== c.status) {
        failures.push(`expected ${c.status}: ${where}`);
        continue;
      }
      if (!/^application\/problem\+json/.test(String(res.headers['content-type']))) {
        failures.push(`content-type ${String(res.headers['content-type'])}: ${where}`);
        continue;
      }
      let p: { type?: unknown; title?: unknown; status?: unknown; detail?: unknown; errors?: unknown };
      try {
        p = JSON.parse(res.body) as typeof p;
      } catch {
        failures.push(`body is not JSON: ${where}`);
        continue;
      }
      if (p.status !== res.statusCode) failures.push(`status field ${String(p.status)}: ${where}`);
      for (const f of ['type', 'title', 'detail'] as const)
        if (typeof p[f] !== 'string' || p[f] === '') failures.push(`no ${f}: ${where}`);
      if (c.type && p.type !== c.type) failures.push(`type ${String(p.type)} instead of ${c.type}: ${where}`);
      if (c.paths) {
        withPaths++;
        const errors = p.errors as { path?: unknown; message?: unknown }[] | undefined;
        if (!Array.isArray(errors) || errors.length === 0) {
          failures.push(`no errors array: ${where}`);
          continue;
        }
        for (const e of errors)
          if (typeof e.path !== 'string' || typeof e.message !== 'string')
            failures.push(`bad errors entry ${JSON.stringify(e)}: ${where}`);
        const named = errors.map((e) => e.path);
        for (const path of c.paths)
          if (!named.includes(path))
            failures.push(`errors do not name "${path}" (${named.join(', ')}): ${where}`);
      }
    }
    expect(failures).toEqual([]);
    expect(withPaths).toBeGreaterThanOrEqual(CASES.length / 2);

    await sleep(200);
    const after = await snapshot(running.redis);
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [key, v] of before) expect(after.get(key), key).toEqual(v);

    const health = await api.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(200);
    // And it still takes commands.
    const ok = await api.inject({
      method: 'POST',
      url: `${B}/agents`,
      payload: { id: 'after-batch', skills: ['x'] },
    });
    expect(ok.statusCode, ok.body).toBe(201);
  });

  it('a plain GET (no upgrade) of the live route answers 4xx problem+json', async () => {
    const res = await running.api!.inject({ method: 'GET', url: `${B}/events/live` });
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
    expect(res.json().status).toBe(res.statusCode);
  });
});
