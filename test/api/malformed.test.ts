/**
 * Malformed requests: every one answers 4xx problem+json whose `status` is the HTTP status
 * (validation 400s name each bad field in `errors`), nothing reaches Redis (every key and value
 * is the same before and after the batch), and the process stays healthy. Requests no client
 * library would send (bytes the HTTP parser refuses, bad percent-encoding, bad WebSocket
 * handshakes) go over raw sockets; their answers too are problem+json of a documented type.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { Cluster } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openapi } from '../../src/adapters/http/openapi.ts';
import { PROBLEM_TYPES } from '../../src/adapters/http/problem.ts';
import { globalKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { freezeRedis } from '../support/freeze.ts';
import { intervalsCaughtUp } from '../support/intervals.ts';
import { unappliedPosition } from '../support/positions.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

const WS = 'api-malformed';
const B = `/v1/workspaces/${WS}`;
const D = '/v1/workspaces/default';
const BODY_LIMIT = 65_536;

let redis: TestRedis;
let running: Running;
/** Lists and reads every key (SCAN, TYPE): an admin's, not Switchboard's, rights. */
let adminRedis: RedisClient;

beforeAll(async () => {
  redis = await startTestRedis();
  adminRedis = redis.adminClient();
  running = await startSwitchboard(
    loadConfig({
      AUTH: 'off',
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
  adminRedis?.disconnect();
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

/** 2^64: one past the largest part of a stream id. */
const U64_OVER = '18446744073709551616';
const MAX_ID = '18446744073709551615-18446744073709551615';

/** Attributes nested `levels` objects deep, the attributes object itself the first. */
function nested(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = { leaf: true };
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
}

/**
 * POST /contacts whose `field` nests 10,000 levels (about 60 KB, under BODY_LIMIT): written as
 * text, because building it as a value and stringifying it would overflow the test's own stack.
 */
function deep(name: string, field: string, open: string, close: string, inner = '{"a":'): Case {
  const levels = 10_000;
  const value = `${open}${inner.repeat(levels - 2)}1${(inner === '[' ? ']' : '}').repeat(levels - 2)}${close}`;
  return {
    name,
    method: 'POST',
    url: `${B}/contacts`,
    raw: `{"skills":["x"],"${field}":${value}}`,
    headers: { 'content-type': 'application/json' },
    status: 400,
    paths: [field],
  };
}

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
  // Dot segments: /agents/. and /agents/.. are other routes once a URL is normalised.
  reg('with the id "."', { id: '.', skills: ['x'] }, ['id']),
  reg('with the id ".."', { id: '..', skills: ['x'] }, ['id']),
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
  reg('with a lone high surrogate in the name', { ...agent, name: '\ud800' }, ['name']),
  reg('with a lone low surrogate in the name', { ...agent, name: 'Ana \udc00' }, ['name']),
  reg('with a reversed surrogate pair in the name', { ...agent, name: '\ude00\ud83d' }, ['name']),
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
  contact('with attributes nested 33 levels', { skills: ['x'], attributes: nested(33) }, ['attributes']),
  deep('POST /contacts with attributes nested 10,000 objects deep', 'attributes', '{"a":', '}'),
  deep('POST /contacts with attributes nested 10,000 arrays deep', 'attributes', '{"a":[', ']}', '['),
  contact('with a lone surrogate in attributes', { skills: ['x'], attributes: { note: '\ud800' } }, [
    'attributes',
  ]),
  contact(
    'with a lone surrogate deep in attributes',
    { skills: ['x'], attributes: { a: [{ b: ['ok', '\udfff'] }] } },
    ['attributes'],
  ),
  contact('with a lone surrogate in an attribute name', { skills: ['x'], attributes: { '\udc00': 1 } }, [
    'attributes',
  ]),
  contact('with a 129-character id', { id: id129, skills: ['x'] }, ['id']),
  contact('with an empty id', { id: '', skills: ['x'] }, ['id']),
  contact('with a numeric id', { id: 7, skills: ['x'] }, ['id']),
  contact('with the id "."', { id: '.', skills: ['x'] }, ['id']),
  contact('with the id ".."', { id: '..', skills: ['x'] }, ['id']),
  contact('with ".." among its preferred agents', { skills: ['x'], preferredAgents: ['a', '..'] }, [
    'preferredAgents',
  ]),
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
  // A position after the command stream's last entry names no command: refused at once.
  {
    name: 'GET /stats?minPosition= past the last command',
    method: 'GET',
    url: `${B}/stats?minPosition=99999999999999-0`,
    status: 409,
    type: '/problems/position-ahead',
  },
  {
    name: 'GET /agents?minPosition= in a workspace with no command',
    method: 'GET',
    url: '/v1/workspaces/never-written/agents?minPosition=1-0',
    status: 409,
    type: '/problems/position-ahead',
  },
  query('/stats?=x (a parameter without a name)', `${B}/stats?=x`, ['""']),
  query('/agents?=x&limit=0', `${B}/agents?=x&limit=0`, ['""', 'limit']),
  query(
    '/stats/intervals?from=February 30',
    `${B}/stats/intervals?from=2026-02-30T00:00:00Z&to=2026-03-02T01:00:00Z`,
    ['from'],
  ),
  query(
    '/stats/intervals?to=April 31',
    `${B}/stats/intervals?from=2026-04-30T00:00:00Z&to=2026-04-31T00:00:00Z`,
    ['to'],
  ),
  query('/stats?minPosition=0', `${D}/stats?minPosition=0`, ['minPosition']),
  // Positions past Redis's 64-bit stream ids, and after= the largest id (nothing can follow it).
  query('/events?after=2^64-0', `${D}/events?after=${U64_OVER}-0`, ['after']),
  query('/events?after=0-(20 nines)', `${D}/events?after=0-99999999999999999999`, ['after']),
  query('/events?after=(largest id)', `${D}/events?after=${MAX_ID}`, ['after']),
  query('/events?after=2^64-0&limit=5', `${B}/events?after=${U64_OVER}-0&limit=5&type=AssignmentMade`, [
    'after',
  ]),
  query('/events?minPosition=2^64-0', `${B}/events?minPosition=${U64_OVER}-0`, ['minPosition']),
  query('/stats?minPosition=0-2^64', `${D}/stats?minPosition=0-${U64_OVER}`, ['minPosition']),
  query('/agents?minPosition=(21 digits)', `${B}/agents?minPosition=1-${'9'.repeat(21)}`, ['minPosition']),
  query('/agents/{id}?minPosition=2^64-2^64', `${B}/agents/seed-agent?minPosition=${U64_OVER}-${U64_OVER}`, [
    'minPosition',
  ]),
  query('/contacts/{id}?minPosition=2^64-0', `${B}/contacts/seed-contact?minPosition=${U64_OVER}-0`, [
    'minPosition',
  ]),

  // Unknown routes and methods
  noRoute('POST', '/'), // GET / is the wallboard
  noRoute('GET', '/ui/nothing.js'),
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

/**
 * Keys that change by the clock, not by requests: the live dispatchers, archivers and interval
 * projections, scored by their last lease renewal (every few hundred ms), which a batch longer than
 * that would see move.
 */
const HEARTBEATS = new Set([globalKeys.dispatchers, globalKeys.archivers, globalKeys.intervalProjections]);
/** A caller's rate-limit counter: the one write a refused request may make (it counts the request). */
const RATE_COUNTER = /^sb:(addr|\{[^}]*\}):rate:/;

/** Every key of the database with its type and full value (heartbeats and rate counters left out). */
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
    if (HEARTBEATS.has(key) || RATE_COUNTER.test(key)) continue;
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
    // The live interval projection lets events gather before it counts them: wait until it has
    // them all, so nothing it writes later is taken for a write of the malformed requests.
    for (const ws of [WS, 'default']) await intervalsCaughtUp(running.redis, ws);
    await sleep(200);
    const before = await snapshot(adminRedis);
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
        for (const e of errors) {
          if (typeof e.path !== 'string' || typeof e.message !== 'string')
            failures.push(`bad errors entry ${JSON.stringify(e)}: ${where}`);
          // A message says what the field must be, not the name of the codec that refused it.
          else if (/^must be (?!empty$)[A-Za-z]+$/.test(e.message))
            failures.push(`a codec's name for a message (${e.path}: ${e.message}): ${where}`);
        }
        const named = errors.map((e) => e.path);
        for (const path of c.paths)
          if (!named.includes(path))
            failures.push(`errors do not name "${path}" (${named.join(', ')}): ${where}`);
      }
    }
    expect(failures).toEqual([]);
    expect(withPaths).toBeGreaterThanOrEqual(CASES.length / 2);

    await sleep(200);
    const after = await snapshot(adminRedis);
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

interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The server ended the connection within a second of its answer (asked for with `closes`). */
  readonly closed: boolean;
}

/**
 * Sends `bytes` as is on a new connection (no client library could send most of them) and reads
 * one answer: up to the end of its Content-Length, or to the end of the connection.
 */
function rawExchange(bytes: Buffer, closes = false): Promise<RawAnswer> {
  const { hostname, port } = new URL(running.url!);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let got = Buffer.alloc(0);
    let done = false;
    let ended = false;
    const finish = () => {
      if (done) return;
      const text = got.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const length = Number(headers['content-length'] ?? Number.NaN);
      const body = got.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
      if (Number.isFinite(length) && body.length < length) return;
      done = true;
      clearTimeout(timer);
      const answer = {
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0),
        headers,
        body: body.toString('utf8'),
      };
      const settle = (closed: boolean) => {
        socket.destroy();
        resolve({ ...answer, closed });
      };
      if (!closes || ended) return settle(ended);
      const wait = setTimeout(() => settle(false), 1000);
      socket.once('close', () => {
        clearTimeout(wait);
        settle(true);
      });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(`no whole answer in 5 s; got ${JSON.stringify(got.toString('latin1').slice(0, 300))}`),
      );
    }, 5000);
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      finish();
    });
    socket.on('end', () => {
      ended = true;
      finish();
      if (!done) {
        clearTimeout(timer);
        reject(new Error(`connection ended without an answer: ${JSON.stringify(got.toString('latin1'))}`));
      }
    });
    socket.on('error', (err) => {
      if (!done) {
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.write(bytes);
  });
}

const CRLF = '\r\n';
const request = (lines: readonly string[], body = ''): Buffer =>
  Buffer.concat([Buffer.from(`${lines.join(CRLF)}${CRLF}${CRLF}`, 'latin1'), Buffer.from(body)]);
const upgrade = (path: string, headers: Record<string, string>): Buffer =>
  request([
    `GET ${path} HTTP/1.1`,
    'Host: localhost',
    'Connection: Upgrade',
    ...Object.entries({
      Upgrade: 'websocket',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version': '13',
      ...headers,
    })
      .filter(([, v]) => v !== '')
      .map(([k, v]) => `${k}: ${v}`),
  ]);

interface RawCase {
  readonly name: string;
  readonly bytes: Buffer;
  readonly status: number;
  readonly type: string;
  readonly paths?: readonly string[];
  readonly headers?: Record<string, string>;
  /** The server must end the connection after its answer (it cannot read another request on it). */
  readonly closes?: boolean;
}

const agentBody = JSON.stringify({ id: 'raw-agent', skills: ['x'] });
const post = (path: string, headers: readonly string[], body = agentBody): Buffer =>
  request(
    [
      `POST ${path} HTTP/1.1`,
      'Host: localhost',
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...headers,
    ],
    body,
  );
const get = (target: string | Buffer, headers: readonly string[] = []): Buffer =>
  Buffer.concat([
    Buffer.from('GET '),
    Buffer.isBuffer(target) ? target : Buffer.from(target, 'latin1'),
    Buffer.from(` HTTP/1.1${CRLF}${['Host: localhost', ...headers].join(CRLF)}${CRLF}${CRLF}`, 'latin1'),
  ]);
const LIVE = `${B}/events/live`;

const RAW_CASES: readonly RawCase[] = [
  {
    name: 'raw non-ASCII bytes in the request target',
    bytes: get(Buffer.concat([Buffer.from(`${D}/agents/`), Buffer.from([0xc3, 0xa9, 0xff])])),
    status: 400,
    type: '/problems/malformed-request',
    closes: true,
  },
  {
    name: 'a space inside the request target',
    bytes: get(`${D}/agents/a b`),
    status: 400,
    type: '/problems/malformed-request',
    closes: true,
  },
  {
    name: 'a control character in the Idempotency-Key header',
    bytes: post(`${B}/agents`, ['Idempotency-Key: key\x01one']),
    status: 400,
    type: '/problems/malformed-request',
    closes: true,
  },
  {
    name: 'a DEL in a header value',
    bytes: post(`${B}/agents`, ['X-Note: a\x7fb']),
    status: 400,
    type: '/problems/malformed-request',
    closes: true,
  },
  {
    name: 'a header without a colon',
    bytes: post(`${B}/agents`, ['Idempotency-Key']),
    status: 400,
    type: '/problems/malformed-request',
    closes: true,
  },
  {
    name: 'an HTTP/1.1 request without Host',
    bytes: request([`GET ${D}/stats HTTP/1.1`]),
    status: 400,
    type: '/problems/bad-request',
    paths: ['Host'],
    closes: true,
  },
  {
    name: 'an HTTP/1.1 command without Host',
    bytes: request(
      [`POST ${B}/agents HTTP/1.1`, 'Content-Type: application/json', `Content-Length: ${agentBody.length}`],
      agentBody,
    ),
    status: 400,
    type: '/problems/bad-request',
    paths: ['Host'],
    closes: true,
  },
  {
    name: 'a WebSocket upgrade without Host',
    bytes: request([
      `GET ${LIVE} HTTP/1.1`,
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13',
    ]),
    status: 400,
    type: '/problems/bad-request',
    paths: ['Host'],
    closes: true,
  },
  {
    name: 'an Expect other than 100-continue',
    bytes: get(`${D}/stats`, ['Expect: 200-ok']),
    status: 417,
    type: '/problems/expectation-failed',
    closes: true,
  },
  {
    name: 'an Expect other than 100-continue on a command',
    bytes: post(`${B}/agents`, ['Expect: foo']),
    status: 417,
    type: '/problems/expectation-failed',
    closes: true,
  },
  {
    // Node checks no expectation on an upgrade: it was opened (101) whatever its Expect said.
    name: 'an Expect other than 100-continue on a WebSocket upgrade',
    bytes: request([
      `GET ${LIVE} HTTP/1.1`,
      'Host: localhost',
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13',
      'Expect: 200-ok',
    ]),
    status: 417,
    type: '/problems/expectation-failed',
    closes: true,
  },
  {
    name: 'a request line that is not HTTP',
    bytes: Buffer.from(`HELLO${CRLF}${CRLF}`),
    status: 400,
    type: '/problems/malformed-request',
    closes: true,
  },
  {
    name: 'headers over the size node reads',
    bytes: get(`${D}/stats`, [`X-Big: ${'b'.repeat(20_000)}`]),
    status: 431,
    type: '/problems/headers-too-large',
    closes: true,
  },
  {
    name: 'bad percent-encoding in the workspace',
    bytes: get('/v1/workspaces/%zz/stats'),
    status: 400,
    type: '/problems/invalid-url',
  },
  {
    name: 'a truncated percent-encoding in an id',
    bytes: post(`${B}/agents/a%2/state`, [], '{"state":"away"}'),
    status: 400,
    type: '/problems/invalid-url',
  },
  {
    name: 'a 300-character agent id in the path',
    bytes: get(`${B}/agents/${'a'.repeat(300)}`),
    status: 414,
    type: '/problems/uri-too-long',
  },
  {
    name: 'a 300-character workspace on a command',
    bytes: post(`/v1/workspaces/${'w'.repeat(300)}/agents`, []),
    status: 414,
    type: '/problems/uri-too-long',
  },
  {
    name: 'a WebSocket handshake with a bad Sec-WebSocket-Key',
    bytes: upgrade(LIVE, { 'Sec-WebSocket-Key': 'not-a-key' }),
    status: 400,
    type: '/problems/bad-handshake',
    closes: true,
    paths: ['Sec-WebSocket-Key'],
  },
  {
    name: 'a WebSocket handshake without Sec-WebSocket-Key',
    bytes: upgrade(LIVE, { 'Sec-WebSocket-Key': '' }),
    status: 400,
    type: '/problems/bad-handshake',
    closes: true,
    paths: ['Sec-WebSocket-Key'],
  },
  {
    name: 'a WebSocket handshake with Sec-WebSocket-Version 99',
    bytes: upgrade(LIVE, { 'Sec-WebSocket-Version': '99' }),
    status: 400,
    type: '/problems/bad-handshake',
    closes: true,
    paths: ['Sec-WebSocket-Version'],
    headers: { 'sec-websocket-version': '13, 8' },
  },
  {
    name: 'Upgrade: h2c on the live route',
    bytes: upgrade(LIVE, { Upgrade: 'h2c', 'HTTP2-Settings': 'AAMAAABkAARAAAAAAAIAAAAA' }),
    status: 400,
    type: '/problems/bad-handshake',
    closes: true,
    paths: ['Upgrade'],
  },
  {
    name: 'Upgrade: h2c on a query route',
    bytes: upgrade(`${D}/stats`, { Upgrade: 'h2c', 'Sec-WebSocket-Key': '', 'Sec-WebSocket-Version': '' }),
    status: 400,
    type: '/problems/bad-handshake',
    closes: true,
    paths: ['Upgrade'],
  },
  {
    name: 'a valid WebSocket handshake to a route that is no WebSocket route',
    bytes: upgrade(`${D}/stats`, {}),
    status: 400,
    type: '/problems/bad-handshake',
    closes: true,
    paths: ['url'],
  },
  {
    name: 'a malformed Sec-WebSocket-Protocol',
    bytes: upgrade(LIVE, { 'Sec-WebSocket-Protocol': 'a b' }),
    status: 400,
    type: '/problems/bad-handshake',
    closes: true,
    paths: ['Sec-WebSocket-Protocol'],
  },
  {
    name: 'a WebSocket upgrade of a command (POST)',
    bytes: request(
      [
        `POST ${B}/agents HTTP/1.1`,
        'Host: localhost',
        'Connection: Upgrade',
        'Upgrade: websocket',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        'Content-Type: application/json',
        `Content-Length: ${Buffer.byteLength(agentBody)}`,
      ],
      agentBody,
    ),
    status: 400,
    type: '/problems/bad-handshake',
    closes: true,
    paths: ['method'],
  },
  {
    name: 'a bad live query on a good handshake',
    bytes: upgrade(`${LIVE}?after=${U64_OVER}-0`, {}),
    status: 400,
    type: '/problems/invalid-request',
    paths: ['after'],
    closes: true,
  },
  {
    name: 'a WebSocket upgrade with after= past the last event',
    bytes: upgrade(`${LIVE}?after=99999999999999-0`, {}),
    status: 409,
    type: '/problems/position-ahead',
    closes: true,
  },
  {
    name: 'a WebSocket upgrade with after= in a workspace with no event',
    bytes: upgrade('/v1/workspaces/never-written/events/live?after=1-0', {}),
    status: 409,
    type: '/problems/position-ahead',
    closes: true,
  },
  {
    name: 'a WebSocket upgrade with bad percent-encoding in the path',
    bytes: upgrade('/v1/workspaces/%zz/events/live', {}),
    status: 400,
    type: '/problems/invalid-url',
    closes: true,
  },
  {
    name: 'a WebSocket upgrade with a 300-character workspace',
    bytes: upgrade(`/v1/workspaces/${'w'.repeat(300)}/events/live`, {}),
    status: 414,
    type: '/problems/uri-too-long',
    closes: true,
  },
  {
    name: 'a WebSocket upgrade of no route',
    bytes: upgrade('/v1/nope', {}),
    status: 404,
    type: '/problems/no-route',
    closes: true,
  },
];

/** The problem types docs/API.md lists in its "Problem types" table, with their status. */
function documentedTypes(): Map<string, number> {
  const doc = readFileSync(new URL('../../docs/API.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('### Problem types'));
  return new Map(
    [...section.matchAll(/^\| `(\/problems\/[a-z-]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]),
  );
}

describe('the HTTP edge', () => {
  it('every problem type is documented in docs/API.md and the OpenAPI document, with its status', () => {
    const types = new Map(
      Object.entries(PROBLEM_TYPES).map(([slug, status]) => [`/problems/${slug}`, status]),
    );
    expect(documentedTypes()).toEqual(types);
    expect([...openapi.components.schemas.Problem.properties.type.enum].sort()).toEqual(
      [...types.keys()].sort(),
    );
  });

  it(`${RAW_CASES.length} requests the HTTP parser, the router or the WebSocket handshake refuse answer documented problem+json`, async () => {
    for (const ws of [WS, 'default']) await intervalsCaughtUp(running.redis, ws);
    const before = await snapshot(adminRedis);
    const documented = documentedTypes();
    const failures: string[] = [];
    for (const c of RAW_CASES) {
      let a: RawAnswer;
      try {
        a = await rawExchange(c.bytes, c.closes);
      } catch (err) {
        failures.push(`${c.name}: ${(err as Error).message}`);
        continue;
      }
      const where = `${c.name}: ${a.status} ${a.headers['content-type']} ${a.body.slice(0, 300)}`;
      if (a.status !== c.status) failures.push(`expected ${c.status}: ${where}`);
      if (!/^application\/problem\+json/.test(a.headers['content-type'] ?? '')) {
        failures.push(`not problem+json: ${where}`);
        continue;
      }
      let p: { type?: string; status?: number; title?: string; detail?: string; errors?: { path: string }[] };
      try {
        p = JSON.parse(a.body) as typeof p;
      } catch {
        failures.push(`body is not JSON: ${where}`);
        continue;
      }
      if (p.status !== a.status) failures.push(`status field ${p.status}: ${where}`);
      if (p.type !== c.type) failures.push(`type ${p.type} instead of ${c.type}: ${where}`);
      if (documented.get(p.type ?? '') !== a.status)
        failures.push(`type ${p.type} is not documented with ${a.status}: ${where}`);
      if (!p.title || !p.detail) failures.push(`no title or detail: ${where}`);
      for (const path of c.paths ?? [])
        if (!p.errors?.some((e) => e.path === path)) failures.push(`errors do not name ${path}: ${where}`);
      if (c.closes && !a.closed) failures.push(`connection left open: ${where}`);
      for (const [k, v] of Object.entries(c.headers ?? {}))
        if (a.headers[k] !== v) failures.push(`header ${k}: ${a.headers[k]} instead of ${v}: ${where}`);
    }
    expect(failures).toEqual([]);

    await sleep(200);
    const after = await snapshot(adminRedis);
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [key, v] of before) expect(after.get(key), key).toEqual(v);
    expect((await running.api!.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  });

  it('after= the position just below the largest id is a valid position, past the log: 409 position-ahead, not a 400', async () => {
    const res = await running.api!.inject({
      method: 'GET',
      url: `${D}/events?after=18446744073709551615-18446744073709551614`,
    });
    expect(res.statusCode, res.body).toBe(409);
    expect(res.json()).toMatchObject({ type: '/problems/position-ahead', status: 409 });
    // test/api/events-after-ahead.test.ts: a position past the last event names none.
  });

  it('a request that arrives while the instance stops answers 503 problem+json (shutting-down)', async () => {
    const own = await startSwitchboard(
      loadConfig({
        AUTH: 'off',
        ...redis.env,
        PORT: '0',
        LOG_LEVEL: 'silent',
        ROLES: 'api',
        QUERY_TIMEOUT_MS: '1500',
        // Closing at once: the drain before it (LB_DRAIN_MS) serves on, test/e2e/drain-edges-1.test.ts.
        LB_DRAIN_MS: '0',
      }),
      pino({ level: 'silent' }),
    );
    const { hostname, port } = new URL(own.url!);
    const socket = connect(Number(port), hostname);
    let text = '';
    let again = false;
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('data', (c: Buffer) => {
      text += c.toString('utf8');
      // The first answer comes once the instance has begun to stop: the next request on the same
      // connection arrives while it stops.
      if (!again && text.endsWith('}')) {
        again = true;
        socket.write(request([`GET ${D}/stats HTTP/1.1`, 'Host: localhost']));
      }
    });
    // It waits for a position not reached yet, keeping the connection busy while stop begins.
    const waiting = await unappliedPosition(adminRedis, 'malformed-unserved');
    socket.write(
      request([
        `GET /v1/workspaces/malformed-unserved/stats?minPosition=${waiting} HTTP/1.1`,
        'Host: localhost',
      ]),
    );
    await sleep(300);
    await Promise.all([own.stop(), Promise.race([ended, sleep(10_000)])]);
    socket.destroy();
    const answers = text.split(/(?=HTTP\/1\.1 \d{3} )/);
    expect(answers, answers.join('\n---\n')).toHaveLength(2);
    for (const a of answers) expect(a).toMatch(/\r\ncontent-type: application\/problem\+json/i);
    expect(answers[0]).toMatch(/^HTTP\/1\.1 503[\s\S]*"type":"\/problems\/position-not-reached"/);
    expect(answers[1]).toMatch(/^HTTP\/1\.1 503[\s\S]*"type":"\/problems\/shutting-down"/);
    expect(answers[1]).toMatch(/\r\nretry-after: 1\r\n/i);
  });

  it('an upgrade that arrives while the instance stops: 503 shutting-down, its connection closed, the stop not held', async () => {
    const own = await startSwitchboard(
      // Closing at once (LB_DRAIN_MS=0): during a drain an upgrade is still served.
      loadConfig({
        AUTH: 'off',
        ...redis.env,
        PORT: '0',
        LOG_LEVEL: 'silent',
        ROLES: 'api',
        LB_DRAIN_MS: '0',
      }),
      pino({ level: 'silent' }),
    );
    const { hostname, port } = new URL(own.url!);
    const socket = connect(Number(port), hostname);
    await new Promise((resolve) => socket.once('connect', resolve));
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('utf8');
    });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    // The client keeps its end open: only the server can end the connection.
    const stopped = own.stop();
    socket.write(
      request([
        `GET ${D}/events/live HTTP/1.1`,
        'Host: localhost',
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
      ]),
    );
    const done = await Promise.race([
      Promise.all([stopped, closed]).then(() => true),
      sleep(5000).then(() => false),
    ]);
    socket.destroy();
    expect(done, `the instance did not stop, or left the connection open: ${text}`).toBe(true);
    expect(text).toMatch(/^HTTP\/1\.1 503[\s\S]*"type":"\/problems\/shutting-down"/);
  });

  it('a malformed request pipelined after a good one: the good answer first, then the problem', async () => {
    const { hostname, port } = new URL(running.url!);
    const socket = connect(Number(port), hostname);
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('utf8');
    });
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(
      Buffer.concat([
        request([`GET ${D}/stats HTTP/1.1`, 'Host: localhost']),
        request([`GET ${D}/stats HTTP/1.1`, 'Host: localhost', 'Idempotency-Key: a\x01b']),
      ]),
    );
    await Promise.race([ended, sleep(5000)]);
    socket.destroy();
    const answers = text.split(/(?=HTTP\/1\.1 \d{3} )/);
    expect(answers, text).toHaveLength(2);
    expect(answers[0]).toMatch(/^HTTP\/1\.1 200 [\s\S]*"queued":/);
    expect(answers[1]).toMatch(
      /^HTTP\/1\.1 400 [\s\S]*application\/problem\+json[\s\S]*"\/problems\/malformed-request"/,
    );
  });

  it('GET /health while Redis does not answer is a 503 problem+json', async () => {
    const health = () => running.api!.inject({ method: 'GET', url: '/health' });
    let res = await health();
    expect(res.statusCode).toBe(200);
    const admin = redis.adminClient();
    // A cluster client knows its nodes once it has connected.
    await admin.ping();
    // Every other client waits: the instance's once-a-second PING gets no answer within 1 s.
    // Noticed within about 2 s; asked for 5.5 s, so that a loaded machine's late timers still see it.
    const untilNotOk = async (forMs: number) => {
      const until = Date.now() + forMs;
      let seen = await health();
      while (seen.statusCode === 200 && Date.now() < until) {
        await sleep(50);
        seen = await health();
      }
      return seen;
    };
    try {
      if (admin instanceof Cluster) {
        // Any node may take the instance's PING: every one is paused. Paused, not stopped (a node
        // stopped longer than cluster-node-timeout is failed over), and a pause cannot be ended
        // early: 3 s first, and 6 s once more if that was not seen as a 503.
        const nodes = admin.nodes('all');
        for (const pauseMs of [3000, 6000]) {
          await Promise.all(nodes.map((n) => n.call('CLIENT', 'PAUSE', String(pauseMs), 'ALL')));
          res = await untilNotOk(pauseMs - 500);
          await Promise.all(nodes.map((n) => n.call('CLIENT', 'UNPAUSE').catch(() => {})));
          if (res.statusCode !== 200) break;
        }
      } else {
        // Stopped until the 503 is seen (a pause would last its whole length).
        const frozen = await freezeRedis(admin, { atMostMs: 8000 });
        try {
          res = await untilNotOk(5500);
        } finally {
          await frozen.thaw();
        }
      }
    } finally {
      admin.disconnect();
    }
    expect(res.statusCode, res.body).toBe(503);
    expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json()).toMatchObject({ type: '/problems/redis-unavailable', status: 503, state: 'paused' });
    expect(res.json().detail).toMatch(/unreachable/);
    for (let i = 0; i < 100 && (await health()).statusCode !== 200; i++) await sleep(50);
    expect((await health()).statusCode).toBe(200);
  });
});
