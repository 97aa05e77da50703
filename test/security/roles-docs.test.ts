/**
 * The role tables of docs/API.md and docs/SECURITY.md ("API keys and roles"), read from the docs
 * themselves (test/security/roles.test.ts holds the server to a copy of the table written out in
 * the test): both tables say the same, they name every operation of the OpenAPI document under
 * /v1/workspaces/{ws}, and a real Switchboard (AUTH on, one key per role made through POST /keys)
 * answers every path × method of that document (HEAD with each GET) as they say: 401 without a
 * key, 403 /problems/forbidden where the role may not, neither where it may, 403 for an agent key
 * acting for another agent and for a key of another workspace. The document's other paths (the
 * pages, /docs, /health, ...) answer without a key.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { openapi } from '../../src/adapters/http/openapi.ts';
import { API_KEY_ROLES, type ApiKeyRole } from '../../src/adapters/redis/api-keys.ts';
import { inProcessApi } from '../support/api.ts';
import { waitFor } from '../support/wait.ts';
import { bearer, keyOf } from './harness.ts';

const WS = 'roles-docs';
const OTHER = 'roles-docs-other';
const PREFIX = '/v1/workspaces/{ws}';
type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
/** Allowed, refused, or (agent) allowed for its own agent only. */
type Cell = 'yes' | 'no' | 'own';

/** Every operation of the OpenAPI document: `GET /v1/workspaces/{ws}/agents`, `GET /health`, ... */
const OPERATIONS: readonly string[] = Object.entries(openapi.paths).flatMap(([path, ops]) =>
  Object.keys(ops as object)
    .filter((m) => m !== 'parameters')
    .map((m) => `${m.toUpperCase()} ${path}`),
);
const WORKSPACE_OPS = OPERATIONS.filter((o) => o.split(' ')[1]!.startsWith(PREFIX)).map((o) =>
  o.replace(PREFIX, ''),
);

/**
 * A doc's role table, as `GET /agents` → role → cell. A cell's route list is its backticked
 * routes: one without a method takes the one before it (`GET /agents`, `/settings`) and, where it
 * names no route of its own, is a sibling of the one before (`POST /contacts/{id}/accept`,
 * `/reject`); "WebSocket `/events/live`" is its GET.
 */
function roleTable(file: string): { table: Map<string, Record<ApiKeyRole, Cell>>; errors: string[] } {
  const text = readFileSync(new URL(`../../docs/${file}`, import.meta.url), 'utf8');
  const section = text.slice(text.indexOf('API keys and roles\n'));
  const lines = section.split('\n');
  const head = lines.findIndex((l) => l.startsWith('| route (under `/v1/workspaces/{ws}`)'));
  const table = new Map<string, Record<ApiKeyRole, Cell>>();
  const errors: string[] = [];
  if (head < 0) return { table, errors: [`${file}: no role table`] };
  const roles = lines[head]!.split('|')
    .slice(2, -1)
    .map((c) => c.trim());
  if (roles.join() !== API_KEY_ROLES.join()) errors.push(`${file}: the columns are ${roles.join(', ')}`);
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').slice(1, -1);
    const routeCell = cells[0]!;
    const row = Object.fromEntries(
      roles.map((r, i) => {
        const c = cells[i + 1]!.trim();
        return [r, c === 'yes' ? 'yes' : c === '' ? 'no' : 'own'];
      }),
    ) as Record<ApiKeyRole, Cell>;
    let method = /^\s*WebSocket\b/.test(routeCell) ? 'GET' : '';
    let previous = '';
    for (const [, token] of routeCell.matchAll(/`([^`]+)`/g)) {
      const m = /^(GET|POST|PUT|PATCH|DELETE) (\/\S*)$/.exec(token!);
      if (m) method = m[1]!;
      let path = m ? m[2]! : token!;
      if (!WORKSPACE_OPS.includes(`${method} ${path}`) && previous !== '')
        path = `${previous.slice(0, previous.lastIndexOf('/'))}${path}`;
      const route = `${method} ${path}`;
      if (!WORKSPACE_OPS.includes(route)) errors.push(`${file}: "${token}" (${route}) is no operation`);
      else if (table.has(route)) errors.push(`${file}: ${route} is in two rows`);
      else table.set(route, row);
      previous = path;
    }
  }
  return { table, errors };
}

/**
 * A request for each operation: `{own}` is agent a1 (the agent key's), `{contact}` c1 (assigned to
 * a1); the other-agent variant puts a2 and c2 (assigned to a2) there. `query` only where the route
 * needs one to be a well-formed request.
 */
interface Sample {
  readonly path: string;
  readonly query?: string;
  readonly body?: unknown;
}
const SAMPLES: Readonly<Record<string, Sample>> = {
  'POST /agents': { path: '/agents', body: { id: 'new-one', skills: ['s9'] } },
  'GET /agents': { path: '/agents' },
  'GET /agents/{id}': { path: '/agents/{own}' },
  'PATCH /agents/{id}': { path: '/agents/{own}', body: { name: 'Ann' } },
  'DELETE /agents/{id}': { path: '/agents/nobody' },
  'POST /agents/{id}/state': { path: '/agents/{own}/state', body: { state: 'available' } },
  'POST /contacts': { path: '/contacts', body: { skills: ['s9'] } },
  'GET /contacts/{id}': { path: '/contacts/{contact}' },
  'POST /contacts/{id}/abandon': { path: '/contacts/nope/abandon' },
  'POST /contacts/{id}/complete': { path: '/contacts/{contact}/complete' },
  'POST /contacts/{id}/transfer': { path: '/contacts/nope/transfer', body: { skills: ['s9'] } },
  // An offer answered for c1, which is assigned (not offered): a 409 where allowed.
  'POST /contacts/{id}/accept': { path: '/contacts/{contact}/accept', body: { agentId: '{own}' } },
  'POST /contacts/{id}/reject': { path: '/contacts/{contact}/reject', body: { agentId: '{own}' } },
  'GET /settings': { path: '/settings' },
  'PUT /settings': { path: '/settings', body: {} },
  'GET /stats': { path: '/stats' },
  'GET /stats/intervals': {
    path: '/stats/intervals',
    query: 'from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z',
  },
  'GET /events': { path: '/events' },
  'GET /state': { path: '/state', query: 'at=0-0' },
  'GET /events/live': { path: '/events/live', query: 'agent={own}' },
  'POST /keys': { path: '/keys', body: { role: 'auditor' } },
  'GET /keys': { path: '/keys' },
  'GET /keys/me': { path: '/keys/me' },
  'GET /keys/{keyId}': { path: '/keys/0000000000000000' },
  'DELETE /keys/{keyId}': { path: '/keys/0000000000000000' },
  'POST /ws-tickets': { path: '/ws-tickets' },
};

const api = inProcessApi([WS, OTHER], { env: { AUTH: 'on' } });
const keys = {} as Record<ApiKeyRole, string>;
let otherAdmin: string;

interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  readonly wwwAuthenticate: string | undefined;
}

async function send(
  method: Method,
  url: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<Answer> {
  const res = await api.running.api!.inject({
    method,
    url,
    headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  });
  return {
    status: res.statusCode,
    contentType: String(res.headers['content-type']),
    body: res.body,
    wwwAuthenticate: res.headers['www-authenticate'] as string | undefined,
  };
}

/** The operation `op` (`GET /agents`) in `ws`, for the agent's own agent or another's. */
function request(op: string, variant: 'own' | 'other', ws = WS) {
  const [m, route] = op.split(' ') as [string, string];
  const s = SAMPLES[m === 'HEAD' ? `GET ${route}` : op]!;
  const fill = (text: string) =>
    text
      .replaceAll('{own}', variant === 'own' ? 'a1' : 'a2')
      .replaceAll('{contact}', variant === 'own' ? 'c1' : 'c2');
  const url = `/v1/workspaces/${ws}${fill(s.path)}${s.query ? `?${fill(s.query)}` : ''}`;
  const body = s.body === undefined ? undefined : JSON.parse(fill(JSON.stringify(s.body)));
  return { method: m as Method, url, body };
}

function expectRefusal(a: Answer, status: 401 | 403, what: string): void {
  expect(a.status, `${what}: ${a.body}`).toBe(status);
  expect(a.contentType, what).toMatch(/^application\/problem\+json/);
  // A HEAD answer has no body to read the type from.
  if (!what.startsWith('HEAD'))
    expect(JSON.parse(a.body).type, what).toBe(
      status === 401 ? '/problems/unauthorized' : '/problems/forbidden',
    );
  if (status === 401) expect(a.wwwAuthenticate, what).toMatch(/^Bearer realm="switchboard"/);
}

const apiDoc = roleTable('API.md');
const securityDoc = roleTable('SECURITY.md');
const apiTable = apiDoc.table;
/** The operations walked: every workspace one of the document, and HEAD for each GET. */
const WALKED = WORKSPACE_OPS.flatMap((op) => (op.startsWith('GET ') ? [op, `HEAD ${op.slice(4)}`] : [op]));
const cellOf = (op: string, role: ApiKeyRole): Cell =>
  apiTable.get(op.startsWith('HEAD ') ? `GET ${op.slice(5)}` : op)?.[role] ?? 'no';

beforeAll(async () => {
  const admin = bearer((await keyOf(api.running.redis, WS, 'admin')).key);
  otherAdmin = (await keyOf(api.running.redis, OTHER, 'admin')).key;
  for (const role of API_KEY_ROLES) {
    const r = await send('POST', `/v1/workspaces/${WS}/keys`, admin, {
      role,
      ...(role === 'agent' ? { agentId: 'a1' } : {}),
    });
    expect(r.status, r.body).toBe(201);
    keys[role] = (JSON.parse(r.body) as { key: string }).key;
  }
  // a1 holds c1 and a2 holds c2 (assigned: the workspace makes no offers).
  for (const [agent, skill] of [
    ['a1', 's1'],
    ['a2', 's2'],
  ] as const) {
    const base = `/v1/workspaces/${WS}/agents`;
    expect((await send('POST', base, admin, { id: agent, skills: [skill] })).status).toBe(201);
    expect((await send('POST', `${base}/${agent}/state`, admin, { state: 'available' })).status).toBe(200);
  }
  for (const [c, skill] of [
    ['c1', 's1'],
    ['c2', 's2'],
  ] as const) {
    expect(
      (await send('POST', `/v1/workspaces/${WS}/contacts`, admin, { id: c, skills: [skill] })).status,
    ).toBe(201);
    await waitFor(`${c} to be assigned`, async () => {
      const r = await send('GET', `/v1/workspaces/${WS}/contacts/${c}`, admin);
      return (JSON.parse(r.body) as { state?: string }).state === 'assigned';
    });
  }
});

describe('the documented role tables, route by route', () => {
  it('API.md and SECURITY.md give the same table, naming every operation under /v1/workspaces/{ws}', () => {
    expect([...apiDoc.errors, ...securityDoc.errors]).toEqual([]);
    expect(Object.fromEntries(securityDoc.table)).toEqual(Object.fromEntries(apiTable));
    expect([...apiTable.keys()].sort()).toEqual([...WORKSPACE_OPS].sort());
    expect(Object.keys(SAMPLES).sort()).toEqual([...WORKSPACE_OPS].sort());
  });

  it('no key: 401 with WWW-Authenticate: Bearer on every operation', async () => {
    for (const op of WALKED) {
      const { method, url, body } = request(op, 'own');
      expectRefusal(await send(method, url, {}, body), 401, `${op} without a key`);
    }
  });

  it('each role: 403 /problems/forbidden where the table says no, neither 401 nor 403 where it says yes', async () => {
    // Reads first: the commands below change the documents they read (c1 completed, settings put).
    const ordered = [...WALKED].sort(
      (a, b) => Number(!/^(GET|HEAD) /.test(a)) - Number(!/^(GET|HEAD) /.test(b)),
    );
    for (const op of ordered)
      for (const role of API_KEY_ROLES) {
        const { method, url, body } = request(op, 'own');
        const a = await send(method, url, bearer(keys[role]), body);
        const what = `${op} as ${role}`;
        if (cellOf(op, role) === 'no') expectRefusal(a, 403, what);
        else {
          expect([401, 403], `${what}: ${a.status} ${a.body}`).not.toContain(a.status);
          expect(a.status, `${what}: ${a.body}`).toBeLessThan(500);
        }
      }
  });

  it("an agent key acting for another agent (its id, agentId, a contact, the feed's agent=): 403", async () => {
    const scoped = WALKED.filter((op) => cellOf(op, 'agent') === 'own');
    expect(scoped.length).toBeGreaterThan(0);
    for (const op of scoped) {
      const { method, url, body } = request(op, 'other');
      expectRefusal(await send(method, url, bearer(keys.agent), body), 403, `${op} as agent a1 for a2`);
    }
  });

  it('a key of another workspace: 403 on every operation, whatever its role', async () => {
    for (const op of WALKED) {
      const { method, url, body } = request(op, 'own');
      expectRefusal(
        await send(method, url, bearer(otherAdmin), body),
        403,
        `${op} with ${OTHER}'s admin key`,
      );
      for (const role of API_KEY_ROLES) {
        const there = request(op, 'own', OTHER);
        expectRefusal(
          await send(there.method, there.url, bearer(keys[role]), there.body),
          403,
          `${op} in ${OTHER} with ${WS}'s ${role} key`,
        );
      }
    }
  });

  it("the document's other operations (pages, /docs, /health, ...) answer without a key", async () => {
    const open = OPERATIONS.filter((o) => !o.split(' ')[1]!.startsWith(PREFIX));
    expect(open).toContain('GET /health');
    for (const op of open) {
      const [method, path] = op.split(' ') as [Method, string];
      const a = await send(method, path, {});
      expect(a.status, `${op}: ${a.body.slice(0, 200)}`).toBe(200);
    }
  });
});
