/**
 * Readers of the problem documents Switchboard's other layers make, and of the docs they are held
 * to: docs/API.md's "Problem types" table, the Lua steps' `problem(...)` outcomes (a command the
 * projector refuses is answered with its body as the step made it), and HAProxy's own answers
 * (infra/haproxy). Read from the files, without running them.
 */
import { readdirSync, readFileSync } from 'node:fs';

const ROOT = new URL('../../', import.meta.url);
const read = (rel: string) => readFileSync(new URL(rel, ROOT), 'utf8');
const lineOf = (text: string, index: number) => text.slice(0, index).split('\n').length;

/** One row of docs/API.md's "Problem types" table. */
export interface TableRow {
  readonly status: number;
  /** The names the row writes as code: `lostAfter`, `applied: "unknown"` (as `applied`). */
  readonly names: ReadonlySet<string>;
}

/** The names written as code in a piece of Markdown (`commandId`, `applied: "unknown"`). */
const codeNames = (text: string) =>
  new Set([...text.matchAll(/`([A-Za-z]+)(?::[^`]*)?`/g)].map((m) => m[1]!));

/**
 * docs/API.md's "Problem types" table, by type; `prose`: the names the section's text around the
 * table writes as code (what it says of every problem, or of a group of them). `text`: the API.md
 * to read, docs/API.md's by default.
 */
export function problemTypesTable(text = read('docs/API.md')): {
  rows: Map<string, TableRow>;
  prose: ReadonlySet<string>;
} {
  const start = text.indexOf('### Problem types');
  if (start < 0) throw new Error('docs/API.md has no "### Problem types" section');
  const rest = text.slice(start);
  const end = rest.indexOf('\n#', 1);
  const section = end < 0 ? rest : rest.slice(0, end);
  const rows = new Map<string, TableRow>();
  const prose: string[] = [];
  for (const line of section.split('\n')) {
    const m = /^\| `(\/problems\/[a-z-]+)` \| (\d{3}) \|(.*)$/.exec(line);
    if (m) rows.set(m[1]!, { status: Number(m[2]), names: codeNames(m[3]!) });
    else if (!line.startsWith('|')) prose.push(line);
  }
  return { rows, prose: codeNames(prose.join('\n')) };
}

/** A problem a Lua step makes, as read from the source. */
export interface LuaProblem {
  readonly type: string;
  readonly status: number;
  /** The title when the source writes it out (a literal, or a literal put together with a literal argument). */
  readonly title: string | undefined;
  /** Every member its body can carry: the builder's table, and members set on a refusal's body after. */
  readonly members: readonly string[];
  /** file:line of the call. */
  readonly at: string;
}

/** The arguments of the call whose `(` is at `open`, as source text, and the index after its `)`. */
function callArgs(text: string, open: number): { args: string[]; end: number } {
  const args: string[] = [];
  let depth = 0;
  let from = open + 1;
  for (let i = open; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "'" || ch === '"') {
      for (i++; i < text.length && text[i] !== ch; i++) if (text[i] === '\\') i++;
      continue;
    }
    if (ch === '-' && text[i + 1] === '-') {
      i = text.indexOf('\n', i);
      continue;
    }
    if (ch === '(' || ch === '{' || ch === '[') depth++;
    else if (ch === ')' || ch === '}' || ch === ']') {
      depth--;
      if (depth === 0) {
        args.push(text.slice(from, i).trim());
        return { args: args.filter((a, k) => a !== '' || k > 0), end: i + 1 };
      }
    } else if (ch === ',' && depth === 1) {
      args.push(text.slice(from, i).trim());
      from = i + 1;
    }
  }
  throw new Error(`unclosed call at ${open}`);
}

/** A Lua string literal's value, or undefined when `src` is no single literal. */
function luaString(src: string): string | undefined {
  const m = /^'((?:[^'\\]|\\.)*)'$|^"((?:[^"\\]|\\.)*)"$/.exec(src.trim());
  if (!m) return undefined;
  return (m[1] ?? m[2]!).replace(/\\(.)/g, '$1');
}

/**
 * A Lua expression that is a literal, or literals and one parameter of the enclosing function
 * put together with `..` (`'contact-not-' .. wanted`): its values, the parameter's taken from
 * every call of that function whose argument is a literal. Undefined when it cannot be read.
 */
function luaValues(text: string, at: number, src: string): string[] | undefined {
  const whole = luaString(src);
  if (whole !== undefined) return [whole];
  const parts = src.split(/\s*\.\.\s*/);
  const params = parts.filter((p) => luaString(p) === undefined);
  if (params.length !== 1 || !/^[A-Za-z_]\w*$/.test(params[0]!)) return undefined;
  const defs = [...text.slice(0, at).matchAll(/local function ([A-Za-z_]\w*)\(([^)]*)\)/g)];
  const def = defs[defs.length - 1];
  if (!def) return undefined;
  const index = def[2]!
    .split(',')
    .map((p) => p.trim())
    .indexOf(params[0]!);
  if (index < 0) return undefined;
  const values: string[] = [];
  for (const call of text.matchAll(new RegExp(`(?<![\\w.:])${def[1]}\\(`, 'g'))) {
    if (call.index === def.index! + 'local function '.length) continue;
    const arg = callArgs(text, call.index! + def[1]!.length).args[index];
    const v = arg === undefined ? undefined : luaString(arg);
    if (v === undefined) return undefined;
    values.push(v);
  }
  if (values.length === 0) return undefined;
  return [...new Set(values)].map((v) => parts.map((p) => luaString(p) ?? v).join(''));
}

/**
 * The problems the Lua steps under src/ make. A builder is a `local function` whose table has
 * `type = '/problems/' .. <parameter>`; each call of it is one problem, its status, type and
 * title read from the call's arguments. A member set on a body afterwards (`outcome.body.x = ...`,
 * as the projector sets `commandId` on every refusal) counts for every problem of the file.
 * `unread`: what the scan cannot read (a `/problems/` outside a builder, a call whose status or
 * type is no literal and no literal argument of its caller).
 */
export function luaProblems(): { problems: LuaProblem[]; unread: string[] } {
  const problems: LuaProblem[] = [];
  const unread: string[] = [];
  const src = new URL('src/', ROOT);
  const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.lua'));
  for (const file of files) {
    const text = read(`src/${file}`);
    if (!text.includes('/problems/')) continue;
    const where = (i: number) => `src/${file}:${lineOf(text, i)}`;
    // members: [name, the expression it is given] of the builder's table.
    const builders: { name: string; params: string[]; members: string[][]; from: number; to: number }[] = [];
    for (const def of text.matchAll(/local function ([A-Za-z_]\w*)\(([^)]*)\)\n([\s\S]*?)\nend\n/g)) {
      const body = def[3]!;
      const table = /\{([^{}]*type\s*=\s*'\/problems\/'\s*\.\.[^{}]*)\}/.exec(body);
      if (!table) continue;
      builders.push({
        name: def[1]!,
        params: def[2]!.split(',').map((p) => p.trim()),
        members: [...table[1]!.matchAll(/([A-Za-z_]\w*)\s*=(?!=)\s*([^,}]*)/g)].map((m) => [
          m[1]!,
          m[2]!.trim(),
        ]),
        from: def.index!,
        to: def.index! + def[0].length,
      });
    }
    for (const m of text.matchAll(/\/problems\//g))
      if (!builders.some((b) => m.index! > b.from && m.index! < b.to))
        unread.push(`${where(m.index!)}: /problems/ outside a builder`);
    const later = [...text.matchAll(/\b[A-Za-z_]\w*\.body\.([A-Za-z_]\w*)\s*=(?!=)/g)].map((m) => m[1]!);
    for (const b of builders) {
      const table = (name: string) => {
        const body = text.slice(b.from, b.to);
        const m = new RegExp(`\\b${name}\\s*=\\s*([A-Za-z_]\\w*|'[^']*'\\s*\\.\\.\\s*[A-Za-z_]\\w*)`).exec(
          body,
        );
        return m?.[1];
      };
      // Which argument each member is: `status = status`, `type = '/problems/' .. slug`.
      const param = (member: string) => {
        const v = table(member);
        const name = v?.includes('..') ? v.split('..')[1]!.trim() : v;
        return name === undefined ? -1 : b.params.indexOf(name);
      };
      const [iStatus, iType, iTitle] = [param('status'), param('type'), param('title')];
      // A member given a parameter is carried by the calls that pass it (Lua leaves out a nil one).
      const carried = (args: string[]) =>
        b.members
          .filter(([, v]) => {
            const k = b.params.indexOf(v!);
            return k < 0 || (args[k] !== undefined && args[k] !== 'nil');
          })
          .map(([m]) => m!);
      if (iStatus < 0 || iType < 0) {
        unread.push(`${where(b.from)}: builder ${b.name} whose status or type is no parameter`);
        continue;
      }
      for (const call of text.matchAll(new RegExp(`(?<![\\w.:])${b.name}\\(`, 'g'))) {
        if (call.index === b.from + 'local function '.length) continue;
        const { args } = callArgs(text, call.index! + b.name.length);
        const status = Number(args[iStatus]);
        const types = luaValues(text, call.index!, args[iType] ?? '');
        const titles = iTitle < 0 ? undefined : luaValues(text, call.index!, args[iTitle] ?? '');
        if (!Number.isInteger(status) || !types) {
          unread.push(`${where(call.index!)}: ${b.name}(${args.slice(0, 2).join(', ')}, ...)`);
          continue;
        }
        for (const [k, slug] of types.entries())
          problems.push({
            type: `/problems/${slug}`,
            status,
            title: titles?.length === types.length ? titles[k] : titles?.[0],
            members: [...new Set([...carried(args), ...later])],
            at: where(call.index!),
          });
      }
    }
  }
  return { problems, unread };
}

/** One answer HAProxy makes itself, as its config writes it. */
export interface HaproxyAnswer {
  readonly status: number;
  readonly contentType: string | undefined;
  /** The body as HAProxy sends it (the config's string unquoted), or undefined when it is no string. */
  readonly body: string | undefined;
  /** file:line, and the section (`defaults`, `frontend api_http`). */
  readonly at: string;
  readonly section: string;
}

/** A double-quoted HAProxy argument starting at `i` (at its `"`): its value, unescaped. */
function haproxyQuoted(line: string, i: number): string {
  let out = '';
  for (let k = i + 1; k < line.length; k++) {
    if (line[k] === '\\') out += line[++k] ?? '';
    else if (line[k] === '"') return out;
    else out += line[k];
  }
  throw new Error(`unclosed string: ${line}`);
}

/**
 * The answers HAProxy makes itself in `file` (relative to the repository): `http-error`,
 * `errorfile` and `http-request|http-response|http-after-response return`, with their section.
 */
export function haproxyAnswers(file: string): HaproxyAnswer[] {
  const out: HaproxyAnswer[] = [];
  let section = '';
  read(file)
    .split('\n')
    .forEach((raw, n) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      if (!/^\s/.test(raw)) {
        section = line;
        return;
      }
      const at = `${file}:${n + 1}`;
      const errorfile = /^errorfile (\d{3}) (\S+)/.exec(line);
      if (errorfile) {
        let body: string | undefined;
        try {
          const response = readFileSync(new URL(errorfile[2]!, new URL(file, ROOT)), 'utf8');
          body = response
            .split(/\r?\n\r?\n/)
            .slice(1)
            .join('\n\n');
        } catch {
          body = undefined;
        }
        out.push({ status: Number(errorfile[1]), contentType: undefined, body, at, section });
        return;
      }
      const m = /^(?:http-error|http-(?:request|response|after-response) return) status (\d{3})\b/.exec(line);
      if (!m) return;
      const contentType = /\bcontent-type (\S+)/.exec(line)?.[1];
      const string = /\b(?:lf-)?string "/.exec(line);
      out.push({
        status: Number(m[1]),
        contentType,
        body: string ? haproxyQuoted(line, string.index + string[0].length - 1) : undefined,
        at,
        section,
      });
    });
  return out;
}
