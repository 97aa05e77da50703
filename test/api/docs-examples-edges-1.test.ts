/**
 * The documents' literal examples, as a user copies them, read from the documents (so the checks
 * follow them as they change) and run against one real Switchboard process with API keys on:
 * - the README's quick-start `curl` lines, in order (an admin key of the suite's workspace in
 *   `$KEY`, the workspace put for `default`, the port for 8080, a real position for
 *   `<an event position>`): each answered 2xx with the fields the README names; its `wscat` line
 *   opens the live feed with the heartbeat docs/API.md shows, then replays the decision made;
 * - its `npm run keys -- create` line, run as written, prints a key the API takes;
 * - docs/API.md's requests with a query, placeholders filled, answered as it says, and its shapes
 *   of answers, events and documents (`{events, next}`, the envelope and its meta, the agent and
 *   contact documents, settings, stats, intervals, state, keys, tickets) the members the answers carry;
 * - every `/problems/...` the documents name is in docs/API.md's table and the OpenAPI Problem types;
 * - docs/METRICS.md's PromQL examples name families /metrics exposes, by labels they have;
 * - every `npm run <script> -- <options>` (code blocks and inline code) names a script of
 *   package.json and options its `--help` lists, and every bench line parses.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { openapi } from '../../src/adapters/http/openapi.ts';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { parseBenchArgs } from '../../src/cli/bench/options.ts';
import { fencedCommands, help, inlineCode, npmRuns, scripts, shellWords } from '../support/doc-code.ts';
import { PROJECT_ROOT, type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'docs-examples';
const DOCS = [
  'README.md',
  'docs/GETTING-STARTED.md',
  'docs/API.md',
  'docs/ROUTING.md',
  'docs/SECURITY.md',
  'docs/METRICS.md',
];
const read = (doc: string) => readFileSync(path.join(PROJECT_ROOT, doc), 'utf8');

interface Curl {
  readonly line: string;
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

function parseCurl(line: string, vars: Record<string, string>): Curl {
  const words = shellWords(line).map((w) => w.replace(/\$(\w+)/g, (_, v: string) => vars[v] ?? `$${v}`));
  let method = 'GET';
  let url = '';
  let body: string | undefined;
  const headers: Record<string, string> = {};
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    if (w.startsWith('-X')) method = w.length > 2 ? w.slice(2) : words[++i]!;
    else if (w === '-H') {
      const h = words[++i]!;
      const colon = h.indexOf(':');
      headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
    } else if (w === '-d') body = words[++i]!;
    else if (w.startsWith('-')) continue;
    else url = w;
  }
  if (body !== undefined && method === 'GET') method = 'POST';
  return { line, method, url, headers, ...(body !== undefined ? { body } : {}) };
}

/**
 * The README's example pointed at this suite's process and workspace: its port for 8080, the host
 * as written (`localhost` too, which curl and wscat resolve), `http://` where curl adds it.
 */
function localise(url: string, base: string): string {
  const port = new URL(base).port;
  const u = url.replace(
    /^(https?:\/\/|wss?:\/\/)?(localhost|127\.0\.0\.1):8080/,
    (_, scheme: string | undefined, host: string) => `${scheme ?? 'http://'}${host}:${port}`,
  );
  return u.replace('/v1/workspaces/default/', `/v1/workspaces/${WS}/`);
}

let redis: TestRedis;
let sb: SwitchboardProcess;
let key = '';

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startProcess({
    roles: ['api', 'projector', 'dispatcher'],
    redis,
    env: { AUTH: 'on', WORKSPACES: WS },
  });
  const client = redis.client();
  try {
    ({ key } = await createApiKey(client, { workspace: WS, role: 'admin', name: 'docs examples' }));
  } finally {
    client.disconnect();
  }
}, 60_000);

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

describe("the README's quick start", () => {
  const commands = fencedCommands(read('README.md'));
  const curls = commands.filter(
    (l) => /^curl /.test(l) && /(localhost|127\.0\.0\.1):8080/.test(l) && l.includes('$KEY'),
  );

  it('has the curl and wscat lines this suite sends', () => {
    expect(curls.length).toBeGreaterThanOrEqual(6);
    expect(commands.some((l) => l.includes('wscat'))).toBe(true);
  });

  it('each curl line is answered as the README says, in order', { timeout: 30_000 }, async () => {
    let lastPosition: string | undefined;
    for (const line of curls) {
      const curl = parseCurl(line, { KEY: key });
      let url = localise(curl.url, sb.url!);
      if (url.includes('<an event position>')) {
        expect(lastPosition, `${line}: a position from the events read before it`).toBeDefined();
        url = url.replace('<an event position>', lastPosition!);
      }
      expect(url, line).not.toMatch(/[<>]/);
      const ask = () =>
        fetch(url, {
          method: curl.method,
          headers: curl.headers,
          ...(curl.body !== undefined ? { body: curl.body } : {}),
        });
      let res = await ask();
      let body = (await res.json()) as Record<string, unknown>;
      const route = new URL(url).pathname.replace(`/v1/workspaces/${WS}`, '');
      if (route === '/events') {
        // The decision comes a moment after the contact is queued.
        const found = await waitFor(
          `${line}: an AssignmentMade of ana`,
          async () => {
            res = await ask();
            body = (await res.json()) as Record<string, unknown>;
            const events = body.events as { type: string; position: string; data: { agentId?: string } }[];
            return events.some((e) => e.type === 'AssignmentMade' && e.data.agentId === 'ana')
              ? events
              : undefined;
          },
          { timeoutMs: 10_000 },
        );
        for (const e of found) expect(e.type, line).toBe('AssignmentMade');
        lastPosition = found.at(-1)!.position;
        expect(body, line).toHaveProperty('next');
      }
      expect(res.status, `${line}\n${JSON.stringify(body)}`).toBeGreaterThanOrEqual(200);
      expect(res.status, `${line}\n${JSON.stringify(body)}`).toBeLessThan(300);
      if (route === '/agents' && curl.method === 'POST') {
        expect(res.status, line).toBe(201);
        expect(body, line).toMatchObject({ id: 'ana', state: 'offline' });
      }
      if (route === '/contacts') expect(res.headers.get('location'), line).toBeTruthy();
      if (route === '/state') {
        expect(body, line).toHaveProperty('agents');
        expect(body, line).toHaveProperty('contacts');
      }
      if (route === '/keys') {
        expect(res.status, line).toBe(201);
        expect(body, line).toMatchObject({ role: 'agent', agentId: 'ana', workspace: WS });
        expect(typeof body.key, line).toBe('string');
      }
    }
  });

  it('the wscat line opens the live feed: the heartbeat docs/API.md shows, then the replay', async () => {
    const line = commands.find((l) => l.includes('wscat'))!;
    const words = shellWords(line).map((w) => w.replace('$KEY', key));
    const url = localise(words[words.indexOf('-c') + 1]!, sb.url!);
    const header = words[words.indexOf('-H') + 1]!;
    const frames: Record<string, unknown>[] = [];
    const ws = new WebSocket(url, {
      headers: { [header.slice(0, header.indexOf(':'))]: header.slice(header.indexOf(':') + 1).trim() },
    });
    ws.on('message', (m) => frames.push(JSON.parse(String(m)) as Record<string, unknown>));
    try {
      await waitFor('the replayed AssignmentMade', () => frames.some((f) => f.type === 'AssignmentMade'), {
        timeoutMs: 10_000,
      });
    } finally {
      ws.close();
    }
    // As docs/API.md writes it: {"heartbeat": {"after": "<position>", "at": "<ISO-8601>", "everyMs": 10000}}.
    const shown = read('docs/API.md').match(/`(\{"heartbeat": [^`]*)`/)![1]!;
    const documented = JSON.parse(shown) as { heartbeat: Record<string, unknown> };
    const heartbeat = frames[0]!.heartbeat as Record<string, unknown>;
    expect(Object.keys(heartbeat).sort()).toEqual(Object.keys(documented.heartbeat).sort());
    expect(heartbeat.everyMs).toBe(documented.heartbeat.everyMs);
    expect(heartbeat.after).toBe('0-0');
    expect(Number.isNaN(Date.parse(String(heartbeat.at)))).toBe(false);
    for (const f of frames.slice(1)) {
      expect(typeof f.position, JSON.stringify(f)).toBe('string');
      expect(typeof f.type, JSON.stringify(f)).toBe('string');
    }
  });
});

describe("the README's npm run keys line", () => {
  it('run as written (REDIS_URL), prints a key the API takes, of the role it names', async () => {
    const line = fencedCommands(read('README.md')).find((l) => l.startsWith('npm run keys -- create'))!;
    const run = npmRuns(DOCS).find((r) => r.line === line)!;
    const args = run.args.map((a) => (a === 'default' ? WS : a));
    const file = scripts.keys!.match(/src\/cli\/[\w-]+\.ts/)![0];
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env))
      if (v !== undefined && !['REDIS_URL', 'REDIS_CLUSTER_NODES', 'NODE_OPTIONS'].includes(k)) env[k] = v;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file, ...args], {
      cwd: PROJECT_ROOT,
      env: { ...env, ...redis.env },
      timeout: 30_000,
    });
    const printed = stdout.split('\n').find((l) => l.startsWith('sb_'));
    expect(printed, stdout).toBeDefined();
    const res = await fetch(`${sb.url}/v1/workspaces/${WS}/keys/me`, {
      headers: { authorization: `Bearer ${printed}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ workspace: WS, role: args[args.indexOf('--role') + 1] });
  });
});

describe("docs/API.md's requests with a query", () => {
  it('are answered as it says, placeholders filled', async () => {
    const auth = { authorization: `Bearer ${key}` };
    const base = `${sb.url}/v1/workspaces/${WS}`;
    const events = (await (await fetch(`${base}/events`, { headers: auth })).json()) as {
      events: { position: string }[];
    };
    const position = events.events.at(-1)!.position;
    const quarter = 15 * 60_000;
    const to = new Date(Math.ceil(Date.now() / quarter) * quarter).toISOString();
    const from = new Date(Date.parse(to) - 4 * quarter).toISOString();
    const fill: Record<string, string> = {
      '<ISO time>': '',
      '<event position>': position,
      '<position>': position,
      '<resumeAfter>': position,
      '<n>': '10',
      '<T,...>': 'AssignmentMade,ContactQueued',
      '<id>': 'ana',
    };
    const spans = inlineCode(read('docs/API.md')).filter((c) => /^(GET|POST) \/\S*\?\S*=/.test(c));
    const asked = new Set<string>();
    const wrong: string[] = [];
    for (const span of spans) {
      const [method, target] = span.split(' ') as [string, string];
      if (target.includes('/events/live')) continue; // a WebSocket: the wscat line's test opens it
      if (/\?\w+=$/.test(target)) continue; // a parameter named (`GET /state?at=`), no example
      let isoSeen = 0;
      const filled = target
        .replace(/^\/v1\/workspaces\/\{ws\}/, '')
        .replace(/<ISO time>/g, () => (isoSeen++ === 0 ? from : to))
        .replace(/<[^>]+>/g, (p) => fill[p] ?? p)
        .replace(/skill=x\b/, 'skill=Billing');
      if (/[<>{}]/.test(filled) || asked.has(`${method} ${filled}`)) continue;
      asked.add(`${method} ${filled}`);
      const res = await fetch(`${base}${filled}`, {
        method,
        headers: { ...auth, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
        ...(method === 'POST' ? { body: JSON.stringify({ skills: ['Billing'] }) } : {}),
      });
      const body = await res.text();
      // The one a document shows to be refused: a command reads no query parameter.
      const expected = method === 'POST' ? 400 : 200;
      const named = [...filled.matchAll(/[?&](\w+)=/g)].map((m) => m[1]!);
      if (expected === 400 && !named.every((n) => body.includes(`"path":"${n}"`)))
        wrong.push(`${span}: the 400 names no ${named.join(', ')}: ${body.slice(0, 300)}`);
      if (res.status !== expected)
        wrong.push(`${span} (${method} ${filled}): ${res.status} ${body.slice(0, 300)}`);
    }
    expect(asked.size).toBeGreaterThan(4);
    expect(wrong).toEqual([]);
  });
});

/**
 * The members of the first object a shape of docs/API.md shows (`{a, b?, c: ..., ...}`, or the
 * element of `name: [{...}]`): those always there, those marked `?`, and whether `...` leaves it
 * open to more.
 */
function shape(span: string): { required: string[]; optional: string[]; open: boolean } {
  const start = span.indexOf('{');
  const parts: string[] = [];
  let depth = 0;
  let part = '';
  for (const c of span.slice(start)) {
    if ('{[('.includes(c)) depth++;
    if ('}])'.includes(c)) depth--;
    if (depth === 0) break;
    if (depth === 1 && (c === ',' || c === '{')) {
      if (c === ',') parts.push(part.trim());
      part = '';
    } else part += c;
  }
  parts.push(part.trim());
  const required: string[] = [];
  const optional: string[] = [];
  let open = false;
  for (const p of parts) {
    if (p.startsWith('...')) open = true;
    const m = p.match(/^(\w+)(\?)?/);
    if (m) (m[2] ? optional : required).push(m[1]!);
  }
  return { required, optional, open };
}

describe("docs/API.md's shapes of answers, events and documents", () => {
  it('are the members the live answers carry', { timeout: 30_000 }, async () => {
    const auth = { authorization: `Bearer ${key}` };
    const base = `${sb.url}/v1/workspaces/${WS}`;
    const get = async (route: string, init: RequestInit = {}) => {
      const res = await fetch(
        route.startsWith('/v1') || route.startsWith('/status') ? `${sb.url}${route}` : `${base}${route}`,
        {
          ...init,
          headers: { ...auth, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
        },
      );
      return (await res.json()) as Record<string, unknown>;
    };
    type Doc = Record<string, unknown>;
    const page = await get('/events?limit=1000');
    const events = page.events as Doc[];
    const made = events.find((e) => e.type === 'AssignmentMade')!;
    const stats = await get('/stats');
    const to = new Date(Math.ceil(Date.now() / 900_000) * 900_000);
    const answers: [string, Doc, string?][] = [
      ['{events:', page],
      ['{position, type, workspace', events[0]!],
      ['AssignmentMade.data =', made.data as Doc],
      ['{version, state:', await get('/status')],
      [
        '200 {offerTimeoutMs',
        await get('/settings', {
          method: 'PUT',
          body: JSON.stringify({ offerTimeoutMs: 15000, wrapUpMs: 5000 }),
        }),
      ],
      ['{id, name?, skills, capacity, presence', await get('/agents/ana')],
      [
        '{id, skills, channel, priority, attributes?, steps?',
        await get(`/contacts/${(made.data as Doc).contactId}`),
      ],
      ['{agents:', await get('/agents')],
      ['queues: [{channel', (stats.queues as Doc[])[0]!],
      [
        '{from, to, intervals',
        await get(`/stats/intervals?from=${new Date(+to - 3_600_000).toISOString()}&to=${to.toISOString()}`),
      ],
      ['{workspace, at, position, checkpoint', await get(`/state?at=${made.position}`)],
      [
        '201 {keyId',
        await get('/keys', { method: 'POST', body: JSON.stringify({ role: 'supervisor', name: 'shape' }) }),
      ],
      ['{keys:', await get('/keys')],
      ['200 {keyId', await get('/keys/me')],
      ['201 {ticket', await get('/ws-tickets', { method: 'POST' })],
    ];
    // The members shown nested (`meta: {...}`, `keys: [{...}]`): each event's, the first element's.
    for (const e of events) answers.push(['{position, type, workspace', e.meta as Doc, 'meta']);
    answers.push(['{keys:', ((answers.find((a) => a[0] === '{keys:')![1].keys as Doc[]) ?? [])[0]!, 'keys']);
    answers.push([
      '{from, to, intervals',
      ((answers.find((a) => a[0] === '{from, to, intervals')![1].intervals as Doc[]) ?? [])[0]!,
      'intervals',
    ]);
    const spans = inlineCode(read('docs/API.md'));
    const wrong: string[] = [];
    for (const [prefix, answer, member] of answers) {
      const whole = spans.find((c) => c.startsWith(prefix));
      if (whole === undefined) {
        wrong.push(`docs/API.md shows no ${prefix}...`);
        continue;
      }
      const span = member === undefined ? whole : whole.slice(whole.indexOf(`${member}: `));
      const { required, optional, open } = shape(span);
      const have = Object.keys(answer);
      for (const k of required)
        if (!have.includes(k))
          wrong.push(`${span}: ${k} missing from ${JSON.stringify(answer).slice(0, 300)}`);
      if (!open)
        for (const k of have)
          if (!required.includes(k) && !optional.includes(k))
            wrong.push(`${span}: the answer has ${k}, not shown`);
    }
    expect(wrong).toEqual([]);
  });
});

describe('the problem types the documents show', () => {
  it("are in docs/API.md's table and the OpenAPI document's Problem types", () => {
    const sent = new Set<string>(
      (openapi.components.schemas.Problem.properties.type as { enum: readonly string[] }).enum,
    );
    const table = new Set(
      [...read('docs/API.md').matchAll(/^\| `(\/problems\/[\w-]+)` \|/gm)].map((m) => m[1]!),
    );
    const wrong: string[] = [];
    for (const doc of DOCS)
      for (const m of read(doc).matchAll(/\/problems\/[a-z0-9-]*[a-z0-9]/g)) {
        if (!sent.has(m[0])) wrong.push(`${doc}: ${m[0]} is no type the OpenAPI document names`);
        if (!table.has(m[0])) wrong.push(`${doc}: ${m[0]} is not in docs/API.md's problem types`);
      }
    expect(table.size).toBeGreaterThan(40);
    expect(wrong).toEqual([]);
  });
});

describe("docs/METRICS.md's queries", () => {
  it('name families /metrics exposes, matched and grouped by labels they have', async () => {
    const text = await (await fetch(`${sb.url}/metrics`)).text();
    const labels = new Map<string, Set<string>>();
    for (const m of text.matchAll(/^# TYPE (\w+) (\w+)$/gm)) labels.set(m[1]!, new Set());
    for (const m of text.matchAll(/^(\w+?)(?:_bucket|_sum|_count)?\{([^}]*)\}/gm)) {
      const family = labels.get(m[1]!) ?? labels.get(m[0]!.slice(0, m[0]!.indexOf('{')));
      for (const l of m[2]!.matchAll(/(\w+)="/g)) family?.add(l[1]!);
    }
    // The inline code that is a query: a family name and a function call.
    const queries = inlineCode(read('docs/METRICS.md')).filter(
      (c) => /\bswitchboard_\w+/.test(c) && /\w\(/.test(c),
    );
    expect(queries.length).toBeGreaterThan(3);
    const wrong: string[] = [];
    for (const q of queries) {
      const names = [...q.matchAll(/\bswitchboard_\w+/g)].map((m) => m[0]);
      const families = names.map((n) => (labels.has(n) ? n : n.replace(/_(bucket|sum|count)$/, '')));
      for (const f of families) if (!labels.has(f)) wrong.push(`${q}: no family ${f} on /metrics`);
      const used = [
        ...[...q.matchAll(/\{([^}]*)\}/g)].flatMap((m) =>
          [...m[1]!.matchAll(/(\w+)\s*[=!~]/g)].map((l) => l[1]!),
        ),
        ...[...q.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim())),
      ];
      for (const l of used)
        if (!families.some((f) => labels.get(f)?.has(l)))
          wrong.push(`${q}: label ${l} is on none of ${families.join(', ')}`);
    }
    expect(wrong).toEqual([]);
  });
});

// The tools' --help texts are asked for while the process starts.
beforeAll(() => {
  for (const run of npmRuns(DOCS))
    if (scripts[run.script] !== undefined && run.options.length > 0) void help(run.script);
});

describe('the npm run lines of the documents', () => {
  it('every npm run bench line is accepted by the bench', () => {
    const bench = npmRuns(DOCS).filter((r) => r.script === 'bench');
    expect(bench.length).toBeGreaterThan(3);
    for (const run of bench) {
      const args = run.args.map((a) => (a.startsWith('/tmp/') ? PROJECT_ROOT : a));
      if (args[0] === 'all') continue; // its options: test/cli/docs-commands-edges-1.test.ts
      expect(() => parseBenchArgs(args), `${run.doc}: ${run.line}`).not.toThrow();
    }
  });

  it('name scripts of package.json and options their --help lists', { timeout: 60_000 }, async () => {
    const runs = npmRuns(DOCS);
    expect(runs.length).toBeGreaterThan(10);
    const wrong: string[] = [];
    for (const run of runs) {
      if (scripts[run.script] === undefined) {
        wrong.push(`${run.doc}: ${run.line}: no script ${run.script}`);
        continue;
      }
      if (run.options.length === 0) continue;
      const text = await help(run.script);
      for (const o of run.options) {
        if (o === '--help') continue;
        if (!new RegExp(`(?<![\\w-])${o}(?![\\w-])`).test(text))
          wrong.push(`${run.doc}: ${run.line}: ${o} is not in npm run ${run.script} -- --help`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
