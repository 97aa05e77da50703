/**
 * Real answers against the OpenAPI document, so it cannot drift from the code: a Switchboard with
 * API keys on, in this process, takes a walk through every operation (an agent's and a contact's
 * whole lifecycle, an offer rejected and one accepted, a transfer, an abandon, the queries, keys,
 * tickets, the operations routes, the pages and /docs) and a few refusals (no key, bad input,
 * missing documents, a conflict, no upgrade). Each answer's status must be one the document lists
 * for that operation, its media type the listed one, and its body valid against the listed schema
 * (problem+json against Problem, its `type` one the document names). Every operation is answered
 * at least once with a success. Every query taking minPosition is asked for a position after the
 * last command, whose 409 must be documented too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openapi } from '../../src/adapters/http/openapi.ts';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'conformance';
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

type Schema = Record<string, unknown>;
interface Operation {
  readonly operationId: string;
  readonly responses: Record<string, { content?: Record<string, { schema?: Schema }> }>;
}

// The document's schemas, its internal references pointed at it.
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
const doc = JSON.parse(JSON.stringify(openapi).replaceAll('"#/components/', '"doc#/components/')) as {
  paths: Record<string, Record<string, Operation>>;
  components: object;
};
ajv.addSchema({ $id: 'doc', components: doc.components }, 'doc');
const validators = new Map<Schema, ReturnType<typeof ajv.compile>>();
const validate = (schema: Schema) => {
  let v = validators.get(schema);
  if (!v) {
    v = ajv.compile(schema);
    validators.set(schema, v);
  }
  return v;
};
const problemTypes = new Set<string>(
  (openapi.components.schemas.Problem.properties.type as { enum: readonly string[] }).enum,
);

/** The members of RFC 9457 that every problem has; the others are Switchboard's extensions. */
const RFC9457 = ['type', 'title', 'status', 'detail'];

/**
 * The extension members the problems of src/ carry: the fifth argument of each
 * `problem(status, slug, title, detail, {...})` call (src/adapters/http/problem.ts), read from the
 * source, each with where it is first given (file:line). `unread`: the calls whose fifth argument
 * is no object literal (spreads of literals and conditionals of them are read).
 */
function problemMembers(): { carried: Map<string, string>; unread: string[] } {
  const carried = new Map<string, string>();
  const unread: string[] = [];
  const root = new URL('../../src/', import.meta.url);
  const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  for (const file of files) {
    const text = readFileSync(new URL(file, root), 'utf8');
    if (!text.includes('problem(')) continue;
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const at = (n: ts.Node) => `src/${file}:${source.getLineAndCharacterOfPosition(n.getStart()).line + 1}`;
    const members = (e: ts.Expression, out: string[]): boolean => {
      if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e)) return members(e.expression, out);
      if (ts.isConditionalExpression(e)) return members(e.whenTrue, out) && members(e.whenFalse, out);
      if (!ts.isObjectLiteralExpression(e)) return false;
      for (const p of e.properties) {
        if (ts.isSpreadAssignment(p)) {
          if (!members(p.expression, out)) return false;
        } else if (p.name && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) out.push(p.name.text);
        else return false;
      }
      return true;
    };
    const visit = (n: ts.Node): void => {
      if (
        ts.isCallExpression(n) &&
        ts.isIdentifier(n.expression) &&
        n.expression.text === 'problem' &&
        n.arguments.length >= 4
      ) {
        const extra = n.arguments[4];
        const out: string[] = [];
        if (extra !== undefined && !members(extra, out)) unread.push(at(n));
        for (const m of out) if (!carried.has(m)) carried.set(m, at(extra!));
      }
      ts.forEachChild(n, visit);
    };
    visit(source);
  }
  return { carried, unread };
}

/**
 * The names docs/API.md's "Problem types" table writes as code in its rows: `lostAfter`, and a
 * member with its value, `applied: "unknown"`.
 */
function problemTypesTableNames(): Set<string> {
  const text = readFileSync(new URL('../../docs/API.md', import.meta.url), 'utf8');
  const section = text.slice(text.indexOf('### Problem types'));
  const rows = section
    .slice(0, section.indexOf('\n#', 1) < 0 ? undefined : section.indexOf('\n#', 1))
    .split('\n')
    .filter((l) => l.startsWith('| `/problems/'));
  expect(rows.length, 'rows of the problem types table').toBe(problemTypes.size);
  return new Set(rows.flatMap((r) => [...r.matchAll(/`([A-Za-z]+)(?::[^`]*)?`/g)].map((m) => m[1]!)));
}

/** The documented path template a concrete path matches (`/v1/workspaces/x/agents/a1` → `.../{id}`). */
function templateOf(path: string): string | undefined {
  const bare = path.split('?')[0]!;
  return Object.keys(doc.paths).find((t) =>
    new RegExp(`^${t.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`).test(bare),
  );
}

/**
 * The members of an answer its schema does not declare (`/intervals/0.queued`): a schema without
 * `properties` (a free object) declares any; `additionalProperties` declares the rest.
 */
function undeclared(schema: Schema | undefined, value: unknown, at = ''): string[] {
  if (!schema || value === null || typeof value !== 'object') return [];
  const $ref = schema.$ref as string | undefined;
  if ($ref) {
    const name = $ref.slice($ref.lastIndexOf('/') + 1);
    return undeclared((doc.components as { schemas: Record<string, Schema> }).schemas[name], value, at);
  }
  if (Array.isArray(schema.allOf)) {
    const parts = (schema.allOf as Schema[]).map((s) => {
      const r = s.$ref as string | undefined;
      return r
        ? (doc.components as { schemas: Record<string, Schema> }).schemas[r.slice(r.lastIndexOf('/') + 1)]!
        : s;
    });
    const properties = Object.assign({}, ...parts.map((s) => s.properties ?? {}));
    return undeclared({ type: 'object', properties }, value, at);
  }
  for (const k of ['oneOf', 'anyOf'] as const)
    if (Array.isArray(schema[k])) {
      const fits = (schema[k] as Schema[]).find((s) => validate(s)(value));
      return fits ? undeclared(fits, value, at) : [];
    }
  if (Array.isArray(value))
    return value.flatMap((v) => undeclared(schema.items as Schema | undefined, v, `${at}/*`));
  const properties = schema.properties as Record<string, Schema> | undefined;
  const extra = schema.additionalProperties as Schema | boolean | undefined;
  if (!properties && extra === undefined) return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const s = properties?.[k] ?? (typeof extra === 'object' ? extra : undefined);
    if (s) return undeclared(s, v, `${at}/${k}`);
    return [`${at}/${k}`];
  });
}

let redis: TestRedis;
let sb: Running;
let app: FastifyInstance;
let admin: string;
/** operationId → the statuses it answered. */
const answered = new Map<string, Set<number>>();
const problemsSeen: string[] = [];
/** Members of answers their schema does not declare: `<request> <member>`. */
const undeclaredSeen = new Set<string>();

interface Sent {
  readonly status: number;
  readonly body: unknown;
}

/** One request, its answer checked against the document. */
async function call(
  method: (typeof METHODS)[number],
  path: string,
  o: { body?: unknown; key?: string | null; headers?: Record<string, string> } = {},
): Promise<Sent> {
  const key = o.key === undefined ? admin : o.key;
  const res = await app.inject({
    method: method.toUpperCase() as 'GET',
    url: path,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...o.headers,
    },
    ...(o.body !== undefined ? { payload: JSON.stringify(o.body) } : {}),
  });
  const what = `${method.toUpperCase()} ${path} → ${res.statusCode} ${res.body.slice(0, 300)}`;
  const template = templateOf(path);
  expect(template, `${what}: no documented path`).toBeDefined();
  const op = doc.paths[template!]![method];
  expect(op, `${what}: no documented operation`).toBeDefined();
  const documented = op!.responses[String(res.statusCode)];
  expect(
    documented,
    `${what}: status not documented (${Object.keys(op!.responses).join(', ')})`,
  ).toBeDefined();
  const media = String(res.headers['content-type'] ?? '').split(';')[0]!;
  let body: unknown = res.body;
  if (res.statusCode !== 304 && res.statusCode !== 101) {
    const content = documented!.content;
    expect(content, `${what}: no content documented`).toBeDefined();
    expect(Object.keys(content!), `${what}: media type`).toContain(media);
    if (/json/.test(media)) {
      body = res.json();
      const schema = content![media]!.schema;
      if (schema) {
        const v = validate(schema);
        expect(v(body), `${what}: ${JSON.stringify(v.errors)}`).toBe(true);
        for (const member of undeclared(schema, body))
          undeclaredSeen.add(`${method.toUpperCase()} ${template} ${res.statusCode} ${member}`);
      }
      if (media === 'application/problem+json') {
        const type = (body as { type: string }).type;
        expect(problemTypes.has(type), `${what}: problem type ${type}`).toBe(true);
        problemsSeen.push(type);
      }
    }
  }
  const seen = answered.get(op!.operationId) ?? new Set<number>();
  seen.add(res.statusCode);
  answered.set(op!.operationId, seen);
  return { status: res.statusCode, body };
}

const at = (p: string) => `/v1/workspaces/${WS}${p}`;
async function ok(method: (typeof METHODS)[number], path: string, body?: unknown): Promise<Sent> {
  const r = await call(method, at(path), { body });
  expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
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
    }),
    pino({ level: 'silent' }),
  );
  app = sb.api!;
  await projectorReady(sb.redis, [WS]);
  admin = (await createApiKey(sb.redis, { workspace: WS, role: 'admin' })).key;
}, 30_000);

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

describe('the OpenAPI document against real answers', () => {
  it('every operation, its successes and refusals, as documented', async () => {
    await ok('put', '/settings', { offerTimeoutMs: 60_000 });
    await ok('get', '/settings');
    for (const id of ['a1', 'a2', 'a3']) await ok('post', '/agents', { id, skills: ['x'] });
    expect((await call('post', at('/agents'), { body: { id: 'a1', skills: ['x'] } })).status).toBe(409);
    await ok('get', '/agents');
    await ok('get', '/agents/a1');
    expect((await call('get', at('/agents/nobody'))).status).toBe(404);
    await ok('patch', '/agents/a1', { name: 'Ann' });
    await ok('delete', '/agents/a3');
    // An offer rejected, the next accepted, completed.
    await ok('post', '/agents/a1/state', { state: 'available' });
    await ok('post', '/contacts', { id: 'c1', skills: ['x'] });
    await waitFor('c1 offered', async () => (await contactState('c1')) === 'offered');
    await ok('post', '/contacts/c1/reject', { agentId: 'a1' });
    await ok('post', '/agents/a2/state', { state: 'available' });
    await waitFor('c1 offered again', async () => (await contactState('c1')) === 'offered');
    const offeredTo = ((await call('get', at('/contacts/c1'))).body as { agentId: string }).agentId;
    await ok('post', '/contacts/c1/accept', { agentId: offeredTo });
    // A transfer back to the queue, then an abandon; another contact completed.
    await ok('post', '/contacts/c1/transfer', { skills: ['nobody'] });
    await ok('post', '/contacts/c1/abandon');
    expect((await call('post', at('/contacts/c1/abandon'))).status).toBe(409);
    await ok('post', '/agents/a1/state', { state: 'available' });
    await ok('post', '/contacts', { id: 'c2', skills: ['x'] });
    await waitFor('c2 offered', async () => (await contactState('c2')) === 'offered');
    const to = ((await call('get', at('/contacts/c2'))).body as { agentId: string }).agentId;
    await ok('post', '/contacts/c2/accept', { agentId: to });
    await ok('post', '/contacts/c2/complete');
    // Queries.
    await ok('get', '/stats');
    const from = new Date(Date.now() - 3_600_000).toISOString();
    await ok('get', `/stats/intervals?from=${from}&to=${new Date().toISOString()}`);
    const events = (await ok('get', '/events?limit=5')).body as { events: { position: string }[] };
    await ok('get', `/state?at=${events.events[4]!.position}`);
    expect((await call('get', at('/events/live'))).status).toBe(426);
    // Keys and tickets.
    await ok('post', '/ws-tickets');
    await ok('get', '/keys');
    await ok('get', '/keys/me');
    const made = (await ok('post', '/keys', { role: 'auditor', name: 'conformance' })).body as {
      keyId: string;
    };
    await ok('get', `/keys/${made.keyId}`);
    await ok('delete', `/keys/${made.keyId}`);
    expect((await call('delete', at('/keys/0000000000000000'))).status).toBe(404);
    expect((await call('get', at('/keys/0000000000000000'))).status).toBe(404);
    // Refusals.
    expect((await call('get', at('/agents'), { key: null })).status).toBe(401);
    expect((await call('post', at('/contacts'), { body: { skills: 5 } })).status).toBe(400);
    expect((await call('get', at('/stats?serviceLevelMs=0'))).status).toBe(400);
    for (const [method, path] of [
      ['get', '/keys?x=1'],
      ['get', '/keys/me?x=1'],
      ['post', '/ws-tickets?x=1'],
      ['delete', '/agents/a1?x=1'],
    ] as const)
      expect((await call(method, at(path))).status, path).toBe(400);
    // Open routes, the pages and the docs.
    for (const path of Object.keys(doc.paths).filter((p) => !p.startsWith('/v1/'))) {
      const r = await call('get', path, { key: null });
      expect(r.status, path).toBe(200);
    }
    const page = await app.inject({ url: '/' });
    expect(
      (await call('get', '/', { key: null, headers: { 'if-none-match': String(page.headers.etag) } })).status,
    ).toBe(304);

    // Every operation answered with a success (the live feed: its 426 without an upgrade).
    const all = Object.values(doc.paths).flatMap((item) =>
      METHODS.filter((m) => item[m]).map((m) => item[m]!.operationId),
    );
    for (const id of all) {
      const statuses = [...(answered.get(id) ?? [])];
      expect(statuses.length, `${id} was not called`).toBeGreaterThan(0);
      if (id !== 'subscribeLive')
        expect(
          statuses.some((s) => s < 300),
          `${id}: ${statuses}`,
        ).toBe(true);
    }
    expect(new Set(problemsSeen)).toEqual(
      new Set([
        '/problems/agent-exists',
        '/problems/agent-not-found',
        '/problems/contact-not-queued',
        '/problems/upgrade-required',
        '/problems/key-not-found',
        '/problems/unauthorized',
        '/problems/invalid-request',
      ]),
    );
  }, 30_000);

  it('every query taking minPosition documents the 409 a position after the last command answers', async () => {
    const ahead = '99999999999999-0';
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const concrete: Record<string, string> = {
      '/v1/workspaces/{ws}/agents/{id}': at('/agents/a1'),
      '/v1/workspaces/{ws}/contacts/{id}': at('/contacts/c1'),
      '/v1/workspaces/{ws}/state': at('/state?at=0-0'),
      '/v1/workspaces/{ws}/stats/intervals': at(
        `/stats/intervals?from=${from}&to=${new Date().toISOString()}`,
      ),
    };
    const taking = Object.entries(doc.paths).filter(([, item]) =>
      (item.get as { parameters?: { name: string }[] } | undefined)?.parameters?.some(
        (p) => p.name === 'minPosition',
      ),
    );
    expect(taking.length).toBeGreaterThanOrEqual(8);
    for (const [template] of taking) {
      const base = concrete[template] ?? template.replace('{ws}', WS);
      const r = await call('get', `${base}${base.includes('?') ? '&' : '?'}minPosition=${ahead}`);
      expect(r.status, template).toBe(409);
      expect((r.body as { type: string }).type).toBe('/problems/position-ahead');
    }
  });

  it("a request body the server takes is valid against the operation's schema: a channel given twice", async () => {
    const body = { channels: ['voice', 'chat', 'voice'] };
    const op = doc.paths['/v1/workspaces/{ws}/settings']!.put as unknown as {
      requestBody: { content: { 'application/json': { schema: Schema } } };
    };
    const v = validate(op.requestBody.content['application/json'].schema);
    expect(v(body), JSON.stringify(v.errors)).toBe(true);
    expect((await ok('put', '/settings', body)).body).toMatchObject({ channels: ['chat', 'voice'] });
  });

  it('every operation under a workspace documents the 401 and 403 its key check answers, and the edge refusals', () => {
    const missing: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!path.startsWith('/v1/workspaces/{ws}')) continue;
      for (const [method, op] of Object.entries(item)) {
        if (method === 'parameters') continue;
        // The key check; a target too long, past the rate limit, headers too large (every route).
        for (const status of ['401', '403', '414', '429', '431'])
          if (!op.responses[status]) missing.push(`${method} ${path} ${status}`);
      }
    }
    // The live feed's refusals before the upgrade (docs/API.md): after= past the last event, the
    // key's WebSockets (429 too-many-websockets), the instance's (503 too-many-connections).
    const live = doc.paths['/v1/workspaces/{ws}/events/live']!.get!.responses;
    for (const status of ['409', '429', '503']) if (!live[status]) missing.push(`live ${status}`);
    expect(missing).toEqual([]);
  });

  it('the key and ticket routes document the 413 and 415 their bodies can answer', async () => {
    const big = { name: 'x'.repeat(70_000) };
    for (const [method, path] of [
      ['post', '/keys'],
      ['post', '/ws-tickets'],
      ['delete', '/keys/0000000000000000'],
    ] as const) {
      const plain = await call(method, at(path), { body: 'x', headers: { 'content-type': 'text/plain' } });
      expect(plain.status, `${method} ${path}`).toBe(415);
      const large = await call(method, at(path), { body: big });
      expect(large.status, `${method} ${path}`).toBe(413);
    }
  });

  it('every refusal an operation documents is problem+json', () => {
    const bare: string[] = [];
    for (const [path, item] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(item)) {
        if (!METHODS.includes(method as (typeof METHODS)[number])) continue;
        for (const [status, r] of Object.entries(op.responses))
          if (Number(status) >= 400 && !r.content?.['application/problem+json'])
            bare.push(`${method} ${path} ${status}`);
      }
    expect(bare).toEqual([]);
  });

  it("every member a problem body carries is declared in Problem, and named in docs/API.md's problem types", () => {
    const declared = Object.keys(openapi.components.schemas.Problem.properties).filter(
      (m) => !RFC9457.includes(m),
    );
    const { carried, unread } = problemMembers();
    // A fifth argument the scan cannot read would hide its members: write them out in the call.
    expect(unread, 'problem() calls whose members are not written out').toEqual([]);
    const undeclared = [...carried].filter(([m]) => !declared.includes(m)).map(([m, at]) => `${m} (${at})`);
    expect(undeclared, 'members answered but not declared in the OpenAPI Problem').toEqual([]);
    expect(
      declared.filter((m) => !carried.has(m)),
      'members declared in Problem that no problem body carries',
    ).toEqual([]);
    const named = problemTypesTableNames();
    expect(
      declared.filter((m) => !named.has(m)),
      'members declared in Problem that docs/API.md\'s "Problem types" table does not name',
    ).toEqual([]);
  });

  it("a query parameter's documented schema refuses what the server refuses, and takes what it takes", async () => {
    // [operation path, parameter, value as sent, value as the schema reads it, taken by the server]
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const range = `from=${from}&to=${new Date().toISOString()}`;
    const cases: [string, string, string, unknown, boolean][] = [
      ['/agents', 'skill', 'x', 'x', true],
      ['/agents', 'skill', 'a%20b', 'a b', false],
      ['/agents', 'skill', 'x'.repeat(65), 'x'.repeat(65), false],
      ['/agents', 'skill', 'a%2Cb', 'a,b', false],
      ['/agents', 'state', 'busy', 'busy', true],
      ['/agents', 'state', 'gone', 'gone', false],
      ['/agents', 'limit', '10000', 10_000, true],
      ['/agents', 'limit', '10001', 10_001, false],
      ['/agents', 'limit', '0', 0, false],
      ['/events', 'limit', '1000', 1000, true],
      ['/events', 'limit', '1001', 1001, false],
      ['/events', 'after', '0-0', '0-0', true],
      ['/events', 'after', '12', '12', false],
      ['/stats', 'serviceLevelMs', '86400000', 86_400_000, true],
      ['/stats', 'serviceLevelMs', '86400001', 86_400_001, false],
      [`/stats/intervals?${range}`, 'serviceLevelMs', '1', 1, true],
      [`/stats/intervals?${range}`, 'serviceLevelMs', '0', 0, false],
      [`/stats/intervals?${range}`, 'source', 'log', 'log', true],
      [`/stats/intervals?${range}`, 'source', 'live', 'live', false],
    ];
    const wrong: string[] = [];
    for (const [path, name, sent, read, taken] of cases) {
      const r = await call('get', at(`${path}${path.includes('?') ? '&' : '?'}${name}=${sent}`));
      const template = templateOf(at(path))!;
      const params = (
        doc.paths[template]!.get as unknown as { parameters: { name: string; schema: Schema }[] }
      ).parameters;
      const schema = params.find((p) => p.name === name)!.schema;
      const says = `${path.split('?')[0]} ${name}=${sent}`;
      if ((r.status !== 400) !== taken) wrong.push(`${says}: the server answered ${r.status}`);
      if (validate(schema)(read) !== taken)
        wrong.push(`${says}: the document's schema ${taken ? 'refuses' : 'takes'} it`);
    }
    expect(wrong).toEqual([]);
  });

  it('every file the pages and /docs link to is in the document, with the media type it is served as', async () => {
    const missing: string[] = [];
    for (const page of ['/', '/agent', '/docs']) {
      const html = (await app.inject({ url: page })).body;
      const links = [...html.matchAll(/(?:href|src)="(\/[^"]*)"/g)].map((m) => m[1]!);
      expect(links.length, page).toBeGreaterThan(0);
      for (const link of links) {
        const r = await call('get', link, { key: null });
        if (r.status !== 200) missing.push(`${page} → ${link}: ${r.status}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('every open route documents the refusals any request meets first: a bad Host (400), the instance stopping (503)', async () => {
    const open = Object.keys(doc.paths).filter((p) => !p.startsWith('/v1/'));
    expect(open.length).toBeGreaterThan(10);
    for (const path of open) {
      // Answered before any route runs (server.ts's first onRequest hook), as is shutting-down.
      const r = await call('get', path, { key: null, headers: { host: 'not a host' } });
      expect(r.status, path).toBe(400);
      expect((r.body as { type: string }).type).toBe('/problems/bad-request');
      expect(doc.paths[path]!.get!.responses['503'], `${path} 503`).toBeDefined();
    }
  });

  // Last: after the walks above, whose answers it looks through.
  it('every member of every answer above is declared in its schema', () => {
    expect(answered.size).toBeGreaterThan(0);
    expect([...undeclaredSeen]).toEqual([]);
  });
});
