/**
 * The problems Switchboard's other layers make, held to the same contract as the TypeScript ones
 * (test/api/openapi-conformance.test.ts reads those): the Lua steps' outcomes (a command the
 * projector refuses is answered with the body its step made) and HAProxy's own answers
 * (infra/haproxy, both configs). Each type is in docs/API.md's "Problem types" table with the
 * status it is made with and in the OpenAPI `Problem.type`; each member beyond RFC 9457's is
 * declared in the OpenAPI `Problem` and named in docs/API.md for that type (its row, or the text
 * around the table). Each HAProxy body is valid JSON whose type, title and status are those of its
 * status code, and sent as application/problem+json. Read from the sources; one real refusal
 * checks that the scan of the Lua sees every member such a body carries.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openapi } from '../../src/adapters/http/openapi.ts';
import { PROBLEM_TYPES } from '../../src/adapters/http/problem.ts';
import { inProcessApi } from '../support/api.ts';
import {
  type HaproxyAnswer,
  haproxyAnswers,
  luaProblems,
  problemTypesTable,
  type TableRow,
} from '../support/problem-sources.ts';

const RFC9457 = ['type', 'title', 'status', 'detail'];
const HAPROXY = ['infra/haproxy/haproxy.cfg.tmpl', 'infra/haproxy/haproxy.docker.cfg'];

const problemSchema = openapi.components.schemas.Problem;
const enumTypes = new Set<string>((problemSchema.properties.type as { enum: readonly string[] }).enum);
const declared = Object.keys(problemSchema.properties).filter((m) => !RFC9457.includes(m));

/** The titles the TypeScript problems give each type: `problem(status, 'slug', 'Title', ...)`. */
function tsTitles(): Map<string, Set<string>> {
  const titles = new Map<string, Set<string>>();
  const root = new URL('../../src/', import.meta.url);
  for (const file of readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('.ts'),
  ))
    for (const m of readFileSync(new URL(file, root), 'utf8').matchAll(
      /\bproblem\(\s*\d{3},\s*'([a-z-]+)',\s*'([^']*)'/g,
    )) {
      const set = titles.get(`/problems/${m[1]}`) ?? new Set<string>();
      set.add(m[2]!);
      titles.set(`/problems/${m[1]}`, set);
    }
  return titles;
}

/**
 * What is wrong with one problem a layer makes (none: []): its type not in the table or the
 * OpenAPI enum, or with another status; its title not the one TypeScript gives the type; a
 * member not declared in Problem, or not named for its type in docs/API.md.
 */
function wrongWith(
  p: { type: string; status: number; title: string | undefined; members: readonly string[]; at: string },
  table: { rows: Map<string, TableRow>; prose: ReadonlySet<string> },
  titles: Map<string, Set<string>>,
): string[] {
  const out: string[] = [];
  const row = table.rows.get(p.type);
  if (!row) out.push(`${p.at}: ${p.type} is not in docs/API.md's "Problem types" table`);
  else if (row.status !== p.status)
    out.push(`${p.at}: ${p.type} made with ${p.status}, docs/API.md says ${row.status}`);
  if (!enumTypes.has(p.type)) out.push(`${p.at}: ${p.type} is not in the OpenAPI Problem.type`);
  const slug = p.type.replace('/problems/', '') as keyof typeof PROBLEM_TYPES;
  if (PROBLEM_TYPES[slug] !== undefined && PROBLEM_TYPES[slug] !== p.status)
    out.push(`${p.at}: ${p.type} made with ${p.status}, PROBLEM_TYPES says ${PROBLEM_TYPES[slug]}`);
  const ts = titles.get(p.type);
  if (p.title !== undefined && ts && !ts.has(p.title))
    out.push(`${p.at}: ${p.type} titled "${p.title}", TypeScript's is "${[...ts].join('", "')}"`);
  for (const m of p.members.filter((m) => !RFC9457.includes(m))) {
    if (!declared.includes(m))
      out.push(`${p.at}: ${p.type} carries ${m}, not declared in the OpenAPI Problem`);
    if (!row?.names.has(m) && !table.prose.has(m))
      out.push(`${p.at}: ${p.type} carries ${m}, which docs/API.md does not name for it`);
  }
  return out;
}

/** What is wrong with HAProxy's answers (none: []): each must be a documented problem, as JSON. */
function haproxyWrong(
  answers: readonly HaproxyAnswer[],
  table: { rows: Map<string, TableRow>; prose: ReadonlySet<string> },
  titles: Map<string, Set<string>>,
): string[] {
  const wrong: string[] = [];
  for (const a of answers) {
    const at = `${a.at} (${a.section})`;
    if (a.contentType !== 'application/problem+json') wrong.push(`${at}: content-type ${a.contentType}`);
    let p: unknown;
    try {
      p = JSON.parse(a.body ?? '');
    } catch (err) {
      wrong.push(`${at}: the body is not JSON (${(err as Error).message}): ${a.body}`);
      continue;
    }
    if (typeof p !== 'object' || p === null || Array.isArray(p)) {
      wrong.push(`${at}: the body is no JSON object`);
      continue;
    }
    const b = p as Record<string, unknown>;
    for (const [m, t] of [
      ['type', 'string'],
      ['title', 'string'],
      ['status', 'number'],
      ['detail', 'string'],
    ] as const)
      if (typeof b[m] !== t || b[m] === '') wrong.push(`${at}: ${m} is ${JSON.stringify(b[m])}, not a ${t}`);
    if (b.status !== a.status) wrong.push(`${at}: status ${b.status} in the body of a ${a.status}`);
    wrong.push(
      ...wrongWith(
        { type: String(b.type), status: a.status, title: String(b.title), members: Object.keys(b), at },
        table,
        titles,
      ),
    );
  }
  return wrong;
}

describe("the problems of the Lua steps and of HAProxy, against the OpenAPI Problem and docs/API.md's problem types", () => {
  it('every problem a Lua step makes: its type, status, title and members are documented', () => {
    const { problems, unread } = luaProblems();
    expect(unread, 'Lua problems the scan cannot read').toEqual([]);
    // The projector's refusals: not found, exists, not in the state, and the 422s.
    expect(problems.length).toBeGreaterThan(15);
    const table = problemTypesTable();
    const titles = tsTitles();
    expect(problems.flatMap((p) => wrongWith(p, table, titles))).toEqual([]);
  });

  it('every answer HAProxy makes itself is problem+json, valid JSON of a documented type, title and status', () => {
    const table = problemTypesTable();
    const titles = tsTitles();
    const bodies = HAPROXY.map((file) => {
      // The stats frontend's too (the operators' port: /ready's 503, keepalived's check, and its 404).
      const answers = haproxyAnswers(file).filter((a) => a.status >= 400);
      // 500, 502, 503 and 504 at least, and the stats frontend's 503 and 404.
      expect(answers.length, file).toBeGreaterThanOrEqual(6);
      expect(answers.filter((a) => a.section === 'frontend stats').map((a) => a.status)).toEqual([503, 404]);
      expect(haproxyWrong(answers, table, titles)).toEqual([]);
      return answers.map((a) => [a.status, a.body]);
    });
    // The two configs (the launcher's and the compose deployment's) answer the same.
    expect(bodies[1], 'haproxy.docker.cfg against haproxy.cfg.tmpl').toEqual(bodies[0]);
  });

  it('the checks above fail on a type the table leaves out, a member it does not name, a body that is wrong', () => {
    const text = readFileSync(new URL('../../docs/API.md', import.meta.url), 'utf8');
    const titles = tsTitles();
    // A copy of the table without the row of a type the Lua makes through its caller's argument.
    const row = text.split('\n').find((l) => l.startsWith('| `/problems/contact-not-assigned` |'))!;
    expect(row).toBeDefined();
    const lua = luaProblems().problems;
    const without = problemTypesTable(text.replace(`${row}\n`, ''));
    expect(lua.flatMap((p) => wrongWith(p, without, titles))).toEqual([
      expect.stringMatching(
        /^src\/projections\/lua\/project-\d+\.lua:\d+: \/problems\/contact-not-assigned is not in docs\/API\.md's "Problem types" table$/,
      ),
    ]);
    // A copy whose text does not say that refusals carry commandId.
    const silent = problemTypesTable(text.replace('carries\n`commandId` too', 'carries\ncommandId too'));
    expect(lua.flatMap((p) => wrongWith(p, silent, titles)).length).toBe(lua.length);
    // HAProxy bodies: cut, of another status, of an undocumented type or member.
    const [good] = haproxyAnswers(HAPROXY[0]!).filter((a) => a.status === 503);
    const table = problemTypesTable(text);
    const bad = [
      { ...good!, body: good!.body!.slice(0, -1) },
      { ...good!, status: 502 },
      { ...good!, contentType: 'text/html' },
      { ...good!, body: good!.body!.replace('no-instance-available', 'no-server') },
      { ...good!, body: good!.body!.replace('"status":503', '"status":503,"retryAfter":5') },
    ];
    expect(bad.map((a) => haproxyWrong([a], table, titles).join(' | '))).toEqual([
      expect.stringContaining('the body is not JSON'),
      expect.stringContaining('status 503 in the body of a 502'),
      expect.stringContaining('content-type text/html'),
      expect.stringContaining('/problems/no-server is not in docs/API.md\'s "Problem types" table'),
      expect.stringContaining('carries retryAfter, not declared in the OpenAPI Problem'),
    ]);
  });

  describe('a refusal the projector answers', () => {
    const WS = 'layers';
    const api = inProcessApi([WS]);

    it('carries no member the scan of the Lua does not see', async () => {
      const scanned = new Map(luaProblems().problems.map((p) => [p.type, new Set(p.members)]));
      await api.ok('POST', WS, '/agents', { id: 'a1', skills: ['x'] });
      const refusals = [
        await api.problem('POST', WS, '/agents', { id: 'a1', skills: ['x'] }, 409, 'agent-exists'),
        await api.problem(
          'POST',
          WS,
          '/contacts',
          { skills: ['x'], channel: 'fax' },
          422,
          'channel-not-declared',
        ),
        await api.problem('POST', WS, '/contacts/nobody/abandon', undefined, 404, 'contact-not-found'),
      ];
      const unseen = refusals.flatMap((b) =>
        Object.keys(b)
          .filter((m) => !scanned.get(String(b.type))?.has(m))
          .map((m) => `${b.type} ${m}`),
      );
      expect(unseen).toEqual([]);
    });

    it('a channel not declared is named in errors, as a bad field of a TypeScript 400 is', async () => {
      const contact = await api.problem(
        'POST',
        WS,
        '/contacts',
        { skills: ['x'], channel: 'fax' },
        422,
        'channel-not-declared',
      );
      expect(contact.errors).toEqual([
        {
          path: 'channel',
          message: expect.stringMatching(/^"fax" is not among this workspace's channels \(voice\)/),
        },
      ]);
      const agent = await api.problem(
        'POST',
        WS,
        '/agents',
        { id: 'a2', skills: ['x'], capacity: { voice: 1, fax: 1, mail: 2 } },
        422,
        'channel-not-declared',
      );
      expect(agent.errors).toEqual([
        {
          path: 'capacity.fax',
          message: expect.stringMatching(/^"fax" is not among this workspace's channels/),
        },
        {
          path: 'capacity.mail',
          message: expect.stringMatching(/^"mail" is not among this workspace's channels/),
        },
      ]);
    });
  });
});
