/**
 * A command whose outcome comes too late (202) still names the document it is about: `id` in the
 * body, and for a command that makes one (POST /contacts, POST /agents) its `Location`, as its 201
 * would. Above all a contact whose id the server made: without it the client could not read,
 * abandon or complete the contact it queued. In-process against a real Redis, with an API-only
 * instance whose workspace no projector serves until the test starts one.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

/** Served by no projector until a test starts one. */
const WS = 'api-accepted-names';
const OTHERS = 'api-accepted-names-others';
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

let redis: TestRedis;
/** Answers 202 to every command: no projector of its own, and it waits 50 ms for an outcome. */
let apiOnly: Running;
const extra: Running[] = [];

function env(more: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...redis.env, AUTH: 'off', PORT: '0', LOG_LEVEL: 'silent', ...more };
}

async function start(more: Record<string, string>): Promise<Running> {
  const r = await startSwitchboard(loadConfig(env(more)), log);
  extra.push(r);
  return r;
}

beforeAll(async () => {
  redis = await startTestRedis();
  apiOnly = await start({ ROLES: 'api', COMMAND_TIMEOUT_MS: '50', QUERY_TIMEOUT_MS: '8000' });
});

afterAll(async () => {
  for (const r of extra.reverse()) await r.stop();
  await redis?.stop();
});

async function call(
  method: 'GET' | 'POST' | 'PUT',
  url: string,
  payload?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  if (!apiOnly.api) throw new Error('this instance runs no api role');
  return (await apiOnly.api.inject({
    method,
    url,
    headers,
    ...(payload !== undefined ? { payload: payload as Json } : {}),
  })) as unknown as Reply;
}

const base = (ws: string) => `/v1/workspaces/${ws}`;

function expectJson(res: Reply, status: number): Json {
  expect(res.statusCode, res.body).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/json/);
  return res.json();
}

const xlen = (ws: string) => apiOnly.redis.xlen(workspaceKeys(ws).commands);

describe('a 202 names the document its command is about', () => {
  it('POST /contacts without an id: the 202 gives the id the server made and its Location, replays too', async () => {
    const h = { 'idempotency-key': 'accepted-contact-1' };
    const res = await call('POST', `${base(WS)}/contacts`, { skills: ['x'] }, h);
    const body = expectJson(res, 202);
    expect(Object.keys(body).sort()).toEqual(['commandId', 'id', 'position']);
    expect(body.position).toMatch(POSITION);
    expect(body.commandId).toMatch(UUID);
    expect(body.id).toMatch(UUID);
    const location = `${base(WS)}/contacts/${body.id}`;
    expect(res.headers.location).toBe(location);
    expect(res.headers['idempotent-replayed']).toBeUndefined();

    // A repeat while still unapplied: the first request's contact (the server made another id for
    // the repeat, which names nothing), replayed, nothing appended.
    const again = await call('POST', `${base(WS)}/contacts`, { skills: ['x'] }, h);
    expect(expectJson(again, 202)).toEqual(body);
    expect(again.headers.location).toBe(location);
    expect(again.headers['idempotent-replayed']).toBe('true');
    // Without a key: a contact of its own, named too.
    const plain = await call('POST', `${base(WS)}/contacts`, { skills: ['y'] });
    const other = expectJson(plain, 202);
    expect(other.id).toMatch(UUID);
    expect(other.id).not.toBe(body.id);
    expect(plain.headers.location).toBe(`${base(WS)}/contacts/${other.id}`);
    expect(await xlen(WS)).toBe(2);

    // Once projected, the Location finds the contact.
    await start({ ROLES: 'projector', WORKSPACES: WS, DISCOVER_WORKSPACES: 'false' });
    const contact = expectJson(await call('GET', `${location}?minPosition=${body.position}`), 200);
    expect(contact).toMatchObject({ id: body.id, state: 'queued', skills: ['x'] });
    expect(
      expectJson(await call('GET', `${plain.headers.location}?minPosition=${other.position}`), 200),
    ).toMatchObject({ id: other.id, skills: ['y'] });
    // And the repeat now answers the outcome: the same contact, at the same Location.
    const applied = await call('POST', `${base(WS)}/contacts`, { skills: ['x'] }, h);
    expect(expectJson(applied, 201)).toMatchObject({ id: body.id, position: body.position });
    expect(applied.headers.location).toBe(location);
    expect(applied.headers['idempotent-replayed']).toBe('true');
    expect(await xlen(WS)).toBe(2);
  });

  it('the other commands: POST /agents with its Location, a contact command its id, settings none', async () => {
    const agent = await call('POST', `${base(OTHERS)}/agents`, { id: 'a1', skills: ['x'] });
    expect(expectJson(agent, 202)).toMatchObject({ id: 'a1' });
    expect(agent.headers.location).toBe(`${base(OTHERS)}/agents/a1`);

    const abandon = await call('POST', `${base(OTHERS)}/contacts/c1/abandon`);
    expect(expectJson(abandon, 202)).toMatchObject({ id: 'c1' });
    // It makes no document: no Location, as its 200 has none.
    expect(abandon.headers.location).toBeUndefined();

    const settings = await call('PUT', `${base(OTHERS)}/settings`, { wrapUpMs: 0 });
    const s = expectJson(settings, 202);
    expect(Object.keys(s).sort()).toEqual(['commandId', 'position']);
    expect(settings.headers.location).toBeUndefined();
  });
});
