/**
 * The operators' documents' literal examples (docs/DEPLOYMENT.md, AUDIT.md, ARCHIVE.md,
 * BENCHMARKS.md), read from the documents through test/support/doc-code.ts, so the checks follow
 * them as they change (README, API.md, METRICS.md, ROUTING.md, SECURITY.md:
 * test/api/docs-examples-edges-1.test.ts):
 * - every `npm run <script>` names a script of package.json and options its `--help` lists, and
 *   the audit's and rebuild's synopses name every option their `--help` lists (AUDIT.md's audit
 *   synopsis left out `--page-size`, which its exit codes then named: an operator reading the
 *   synopsis had no page size to give);
 * - every environment variable named is one src/app/config.ts reads, or one src, infra or the
 *   tests read; each `NAME=value` shown of the configuration passes its codec, and so does each
 *   default of a variables table, which is the default config.ts documents;
 * - every path under infra/, src/, test/, scripts/ and docs/ named exists (what
 *   infra/make-secrets.sh writes excepted);
 * - every message quoted (a line of prose in code) has its words in src, in that order;
 * - the launcher's status.json shown has the members src/topology/status.ts writes;
 * - run for real against one Redis: the archive ARCHIVE.md lays out (folders, segment names, the
 *   header's members, entry lines, its shell command for the hash) and the audit AUDIT.md
 *   describes (its summary's lines, exit 0 clean; exit 2 for an unknown workspace, a `--page-size`
 *   such as it shows, a P past the end, and an archive directory without the trimmed workspace's
 *   folder, the rebuild's too).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { CONFIG_ENTRIES, loadConfig, parseConfig } from '../../src/app/config.ts';
import { workspaceFolder } from '../../src/archive/store.ts';
import { fencedCommands, help, inlineCode, npmRuns, readDoc, scripts } from '../support/doc-code.ts';
import { PROJECT_ROOT } from '../support/processes.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';
import { waitFor } from '../support/wait.ts';
import { runCli } from './run-cli.ts';

const WS = 'docs-examples-ops';
const DOCS = ['docs/DEPLOYMENT.md', 'docs/AUDIT.md', 'docs/ARCHIVE.md', 'docs/BENCHMARKS.md'];

/** Every file of a folder of the repository, recursively (node_modules left out). */
function filesUnder(dir: string): string[] {
  const root = path.join(PROJECT_ROOT, dir);
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .map((f) => path.join(root, f))
    .filter((f) => !f.includes('node_modules') && statSync(f).isFile());
}

/** The text of src, infra, scripts and the Dockerfile: what Switchboard and its deployment are. */
const sourceText = [...filesUnder('src'), ...filesUnder('infra'), ...filesUnder('scripts'), 'Dockerfile']
  .filter((f) => /\.(ts|lua|sh|cfg|conf|tmpl|ya?ml|json|md)$|Dockerfile$/.test(f))
  .map((f) => readFileSync(path.isAbsolute(f) ? f : path.join(PROJECT_ROOT, f), 'utf8'))
  .join('\n');
const testText = filesUnder('test')
  .filter((f) => f.endsWith('.ts'))
  .map((f) => readFileSync(f, 'utf8'))
  .join('\n');

describe('the npm run lines of the operators documents', () => {
  const runs = npmRuns(DOCS);

  it('name scripts of package.json and options their --help lists', { timeout: 60_000 }, async () => {
    expect(runs.length).toBeGreaterThan(20);
    const wrong: string[] = [];
    for (const run of runs) {
      if (scripts[run.script] === undefined) {
        wrong.push(`${run.doc}: ${run.line}: no script ${run.script}`);
        continue;
      }
      if (run.options.length === 0) continue;
      // `npm run bench -- all` has options of its own (its --help), a single workload's refused.
      const text = await help(run.script, run.script === 'bench' && run.args[0] === 'all' ? ['all'] : []);
      for (const o of run.options)
        if (o !== '--help' && !new RegExp(`(?<![\\w-])${o}(?![\\w-])`).test(text))
          wrong.push(`${run.doc}: ${run.line}: ${o} is not in npm run ${run.script} -- --help`);
    }
    expect(wrong).toEqual([]);
  });

  it("AUDIT.md's synopses of the audit and the rebuild name every option their --help lists", async () => {
    const wrong: string[] = [];
    for (const script of ['audit', 'rebuild']) {
      const synopsis = runs.find(
        (r) => r.doc === 'docs/AUDIT.md' && r.line.startsWith(`npm run ${script} -- `),
      );
      expect(synopsis, `AUDIT.md: a synopsis of npm run ${script}`).toBeDefined();
      const listed = [...(await help(script)).matchAll(/^ {2}(--[a-z][\w-]*)/gm)].map((m) => m[1]!);
      expect(listed.length).toBeGreaterThan(4);
      for (const o of listed)
        if (o !== '--help' && !synopsis!.options.includes(o))
          wrong.push(`${synopsis!.line}: no ${o} (npm run ${script} -- --help lists it)`);
    }
    expect(wrong).toEqual([]);
  });
});

/** A name of an environment variable: capitals, digits and at least one `_`. */
const VARIABLE = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/;
/** A value shown that stands for the operator's own (`<host:port>`, `…`, `$(...)`, `host:port`). */
const placeholder = (value: string) => /[<>…]|\$\(|^host:port$/.test(value);
const configNames = new Set(CONFIG_ENTRIES.map((e) => e.name));

/** `NAME=value` of a document's inline code and the leading assignments of its commands. */
function assignments(doc: string): { name: string; value: string; where: string }[] {
  const text = readDoc(doc);
  const found: { name: string; value: string; where: string }[] = [];
  for (const span of inlineCode(text)) {
    const m = span.match(/^([A-Z][A-Z0-9_]*)=(\S+)$/);
    if (m) found.push({ name: m[1]!, value: m[2]!, where: `\`${span}\`` });
  }
  for (const line of fencedCommands(text))
    for (const m of line.matchAll(/(?:^|\s)([A-Z][A-Z0-9_]*)=(\S+)(?=\s)/g))
      if (/\bnpm run\b|\bnpx\b|\bnode\b/.test(line)) found.push({ name: m[1]!, value: m[2]!, where: line });
  return found;
}

describe('the environment variables the documents name', () => {
  it('are read by src/app/config.ts, or by src, infra or the tests', () => {
    const wrong: string[] = [];
    let seen = 0;
    for (const doc of DOCS) {
      const names = new Set([
        ...inlineCode(readDoc(doc)).filter((c) => VARIABLE.test(c)),
        ...assignments(doc).map((a) => a.name),
      ]);
      for (const name of names) {
        seen++;
        if (configNames.has(name) || /^(CAP|SO)_/.test(name)) continue; // Linux's capabilities and socket options
        const word = new RegExp(`(?<![A-Z0-9_])${name}(?![A-Z0-9_])`);
        if (!word.test(sourceText) && !word.test(testText))
          wrong.push(`${doc}: ${name} is read nowhere (not config.ts, src, infra nor a test)`);
      }
    }
    expect(seen).toBeGreaterThan(30);
    expect(wrong).toEqual([]);
  });

  it('each NAME=value shown of the configuration passes its codec', () => {
    const wrong: string[] = [];
    let decoded = 0;
    for (const doc of DOCS)
      for (const { name, value, where } of assignments(doc)) {
        if (!configNames.has(name) || placeholder(value)) continue;
        decoded++;
        const checked = parseConfig({ [name]: value });
        if (checked._tag === 'Left')
          // A file named for the example (`REDIS_TLS_CA=/etc/switchboard/redis-ca.pem`) is not here.
          for (const p of checked.left)
            if (p.startsWith(`${name}:`) && !/: no such file:/.test(p)) wrong.push(`${doc}: ${where}: ${p}`);
      }
    expect(decoded).toBeGreaterThan(4);
    expect(wrong).toEqual([]);
  });

  it("a variables table's defaults are config.ts's, and pass the codec", () => {
    const wrong: string[] = [];
    let rows = 0;
    for (const doc of DOCS)
      for (const m of readDoc(doc).matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| ([^|]+) \|/gm)) {
        const entry = CONFIG_ENTRIES.find((e) => e.name === m[1]);
        if (entry === undefined) continue;
        rows++;
        const cell = m[2]!.trim();
        const shown = cell.match(/^`([^`]+)`/)?.[1] ?? cell;
        if (shown !== entry.default)
          wrong.push(`${doc}: ${m[1]} shown defaulting to ${cell}, config.ts: ${entry.default}`);
        if (placeholder(shown) || shown.startsWith('(') || /[A-Z]{3}/.test(shown)) continue;
        const checked = parseConfig({ [m[1]!]: shown });
        if (checked._tag === 'Left') wrong.push(`${doc}: ${m[1]} = ${shown}: ${checked.left.join('; ')}`);
      }
    expect(rows).toBeGreaterThan(4);
    expect(wrong).toEqual([]);
  });
});

describe('the paths the documents name', () => {
  it('exist (what infra/make-secrets.sh makes excepted)', () => {
    const secrets = readFileSync(path.join(PROJECT_ROOT, 'infra/make-secrets.sh'), 'utf8');
    const wrong: string[] = [];
    let seen = 0;
    for (const doc of DOCS)
      for (const m of readDoc(doc).matchAll(
        /(?<![\w./-])((?:infra|src|test|scripts|docs)\/[\w./*-]*[\w*])/g,
      )) {
        const named = m[1]!;
        seen++;
        // A glob (`test/archive/*.test.ts`): some file it matches.
        const [head, ...rest] = named.split('*');
        const exists =
          rest.length === 0
            ? existsSync(path.join(PROJECT_ROOT, named))
            : readdirSync(path.join(PROJECT_ROOT, path.dirname(`${head}x`))).length > 0;
        if (!exists && !secrets.includes(named)) wrong.push(`${doc}: ${named} does not exist`);
      }
    expect(seen).toBeGreaterThan(50);
    expect(wrong).toEqual([]);
  });
});

/**
 * A text's words (a number, a quoted or elided part and a `${...}` of a template literal count
 * as `•`, which stands for any word), a string's quotes as `•` too: a literal's neighbours are
 * code, not its words.
 */
function words(text: string): string[] {
  return text
    .replace(/\$\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}/g, ' • ')
    .replace(/<[^<>\s][^<>]*>|…|\.\.\.|\b\d[\d.,:]*\b/g, ' • ')
    .replace(/['"`]/g, ' • ')
    .split(/[^\w•/-]+/)
    .filter(Boolean);
}

/** Lines the documents quote from the programs Switchboard runs (redis-server), not its own. */
const OTHER_PROGRAMS = ['nodes.conf is already used by a different Redis Cluster node'];

describe('the messages the documents quote', () => {
  it('have their words in src, in that order (any word where src has a value)', () => {
    const source = words(sourceText);
    const trigrams = new Set<string>();
    for (let i = 0; i + 2 < source.length; i++) trigrams.add(source.slice(i, i + 3).join(' '));
    // At most one word of the three where src has a value (`${workspace}`).
    const found = (t: string[]) =>
      [-1, 0, 1, 2].some((at) => trigrams.has(t.map((w, i) => (i === at ? '•' : w)).join(' ')));
    const wrong: string[] = [];
    let seen = 0;
    for (const doc of DOCS)
      for (const span of inlineCode(readDoc(doc))) {
        // Prose: five words at least, lower case first, not a command, a call or a snippet of code.
        if (!/^[a-z(]/.test(span) || span.split(' ').length < 5) continue;
        if (
          /^(npm|npx|curl|redis-cli|ip|docker|kill|node|sh|cd|mv|head|tail|perf|sudo)\b|[|&;]|^\w+\(|\w\(\w/.test(
            span,
          )
        )
          continue;
        if (/\b(and|or) nil\b|\blocal\b/.test(span)) continue; // Lua
        if (OTHER_PROGRAMS.includes(span)) continue;
        seen++;
        const w = words(span);
        for (let i = 0; i + 2 < w.length; i++) {
          const t = w.slice(i, i + 3);
          // Three words of the message's own: none elided or a value (`…`, `0`, a field's name).
          if (t.some((x) => x === '•' || /[a-z][A-Z]/.test(x)) || found(t)) continue;
          wrong.push(`${doc}: \`${span}\`: "${t.join(' ')}" is in no message of src`);
          break;
        }
      }
    expect(seen).toBeGreaterThan(10);
    expect(wrong).toEqual([]);
  });
});

describe("DEPLOYMENT.md's status.json", () => {
  it('has the members the launcher writes', () => {
    const doc = readDoc('docs/DEPLOYMENT.md');
    const shown = doc.match(/```json\n(\{ "launcher"[\s\S]*?)```/)![1]!;
    const members = new Set([...shown.matchAll(/"(\w+)":/g)].map((m) => m[1]!));
    const src = ['src/topology/status.ts', 'src/topology/supervisor.ts']
      .map((f) => readFileSync(path.join(PROJECT_ROOT, f), 'utf8'))
      .join('\n');
    const written = new Set([...src.matchAll(/^\s+readonly (\w+)\??:/gm)].map((m) => m[1]!));
    for (const k of ['launcher', 'updatedAt', 'components', 'pid', 'lastExitAt'])
      expect(written).toContain(k);
    expect([...members].filter((k) => !written.has(k))).toEqual([]);
    // Each component shown whole has every member of a component.
    const component = src.match(/export interface ComponentStatus \{([\s\S]*?)\n\}/)![1]!;
    const all = [...component.matchAll(/^\s+readonly (\w+)\??:/gm)].map((m) => m[1]!);
    const first = shown.match(/\{ "name": "api-1"[^}]*\}/)![0];
    expect(all.filter((k) => !first.includes(`"${k}"`))).toEqual([]);
  });
});

describe('the archive and the audit, run for real', () => {
  const tempDir = suiteTempDirs();
  let redis: TestRedis;
  let sb: Running | undefined;
  let archiveDir = '';

  beforeAll(async () => {
    redis = await startTestRedis();
    archiveDir = await tempDir('docs-examples-archive-');
    sb = await startSwitchboard(
      loadConfig({
        ...redis.env,
        AUTH: 'off',
        PORT: '0',
        LOG_LEVEL: 'silent',
        WORKSPACES: WS,
        ARCHIVE_DIR: archiveDir,
        LOG_RETENTION: '2',
        ARCHIVE_SEGMENT_ENTRIES: '2',
        ARCHIVE_EVERY_MS: '20',
      }),
      pino({ level: 'silent' }),
    );
    await projectorReady(sb.redis, [WS]);
    const post = async (url: string, body: unknown) => {
      const r = await sb!.api!.inject({
        method: 'POST',
        url: `/v1/workspaces/${WS}${url}`,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(body),
      });
      if (r.statusCode >= 300) throw new Error(`${url}: ${r.statusCode} ${r.body}`);
    };
    for (let i = 0; i < 4; i++) await post('/agents', { id: `a${i}`, skills: ['s'] });
    for (let i = 0; i < 4; i++) await post('/contacts', { id: `c${i}`, skills: ['s'] });
    // ARCHIVE.md's layout: <ARCHIVE_DIR>/<workspace folder>/<commands|events>/<segment>.
    await waitFor(
      'two segments of each stream',
      () =>
        ['commands', 'events'].every((s) => {
          const dir = path.join(archiveDir, workspaceFolder(WS), s);
          return existsSync(dir) && readdirSync(dir).filter((f) => f.endsWith('.jsonl')).length >= 2;
        }),
      { timeoutMs: 20_000 },
    );
    await sb.stop();
    sb = undefined;
  }, 60_000);

  afterAll(async () => {
    await sb?.stop();
    await redis?.stop();
  });

  /** The last position of the workspace's log (its command stream's or event stream's, the later). */
  const sb0Last = async () => {
    const client = redis.client();
    try {
      const ends = await Promise.all(
        ['commands', 'events'].map(
          async (s) => (await client.xrevrange(`sb:{${WS}}:${s}`, '+', '-', 'COUNT', 1))[0]![0],
        ),
      );
      return ends.sort((a, b) => (BigInt(a.split('-')[0]!) < BigInt(b.split('-')[0]!) ? -1 : 1)).at(-1)!;
    } finally {
      client.disconnect();
    }
  };

  it("ARCHIVE.md's segment: its name, header members, entry lines and shell hash", () => {
    const doc = readDoc('docs/ARCHIVE.md');
    const block = doc.match(/^```\n(\{"format":"switchboard-segment[^\n]*)\n([\s\S]*?)^```$/m)!;
    const header = JSON.parse(block[1]!) as Record<string, unknown>;
    const entryLine = JSON.parse(block[2]!.split('\n')[0]!) as [string, string[]];
    const shell = doc.match(/`(\(head -1 seg \| jq[^`]*sha256sum)`/)![1]!;
    for (const stream of ['commands', 'events']) {
      const dir = path.join(archiveDir, workspaceFolder(WS), stream);
      const files = readdirSync(dir).sort();
      for (const [i, f] of files.entries()) {
        // `<index, 10 digits>-<first position>.jsonl`
        expect(f).toMatch(/^\d{10}-\d+-\d+\.jsonl$/);
        const lines = readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean);
        const h = JSON.parse(lines[0]!) as Record<string, unknown>;
        expect(Object.keys(h).sort()).toEqual(Object.keys(header).sort());
        expect(h).toMatchObject({ format: header.format, workspace: WS, stream, index: i });
        expect(f).toBe(`${String(i).padStart(10, '0')}-${h.first}.jsonl`);
        const [position, fields] = JSON.parse(lines[1]!) as [string, string[]];
        expect(position).toBe(h.first);
        expect(fields.filter((_, k) => k % 2 === 0)).toEqual(
          stream === 'events' ? entryLine[1].filter((_, k) => k % 2 === 0) : expect.any(Array),
        );
        const hash = execFileSync(
          'sh',
          ['-c', shell.replace(/\bseg\b/g, JSON.stringify(path.join(dir, f)))],
          {
            encoding: 'utf8',
          },
        );
        expect(hash.split(' ')[0]).toBe(h.hash);
      }
    }
  });

  it("AUDIT.md's audit: the summary it names, exit 0 when clean", { timeout: 60_000 }, async () => {
    const run = await runCli('audit', [
      '--workspace',
      WS,
      '--redis-url',
      redis.url,
      '--archive-dir',
      archiveDir,
    ]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const doc = readDoc('docs/AUDIT.md').replace(/\s+/g, ' ');
    const summary = doc.match(/It prints a summary \(([^)]*)\)/)![1]!.split(', ');
    expect(summary.length).toBeGreaterThan(3);
    for (const item of summary) for (const w of item.split(' ')) expect(run.stdout, item).toContain(w);
    // The summary's members the text names (`timers`, `state`, `intervals`): a line each.
    for (const m of doc.matchAll(/the summary's `(\w+)`/g))
      expect(run.stdout).toMatch(new RegExp(`^ {2}${m[1]} `, 'm'));
  });

  it('exit 2: an unknown workspace, and an archive directory without the trimmed workspace', {
    timeout: 60_000,
  }, async () => {
    const exits = readDoc('docs/AUDIT.md').replace(/\s+/g, ' ');
    expect(exits).toMatch(/Exit codes: 0 no violation, 1 violations, 2 bad arguments \(/);
    expect(exits).toMatch(/ or an unknown workspace, 3 it could not run/);
    const unknown = await runCli('audit', ['--workspace', `${WS}-none`, '--redis-url', redis.url]);
    expect(unknown.code, unknown.stdout + unknown.stderr).toBe(2);
    expect(unknown.stderr).toContain(`${WS}-none`);
    const elsewhere = await tempDir('docs-examples-other-');
    const wrongDir = await runCli('audit', [
      '--workspace',
      WS,
      '--redis-url',
      redis.url,
      '--archive-dir',
      elsewhere,
    ]);
    expect(wrongDir.code, wrongDir.stdout + wrongDir.stderr).toBe(2);
    expect(wrongDir.stderr + wrongDir.stdout).toContain(elsewhere);
    // "Exit codes as the auditor's" (the rebuild): the same archive directory, exit 2.
    const rebuild = await runCli('rebuild', [
      '--workspace',
      WS,
      '--redis-url',
      redis.url,
      '--archive-dir',
      elsewhere,
    ]);
    expect(rebuild.code, rebuild.stdout + rebuild.stderr).toBe(2);
    expect(rebuild.stderr + rebuild.stdout).toContain(elsewhere);
  });

  it('exit 2: the bad arguments AUDIT.md names (a page size such as 0x10, a P past the end)', {
    timeout: 60_000,
  }, async () => {
    const doc = readDoc('docs/AUDIT.md').replace(/\s+/g, ' ');
    const sizes = doc.match(/a `--page-size` not written in decimal digits such as `([^`]+)` or `([^`]+)`/)!;
    for (const size of sizes.slice(1)) {
      const run = await runCli('audit', [
        ...['--workspace', WS, '--redis-url', redis.url, '--archive-dir', archiveDir],
        ...['--page-size', size],
      ]);
      expect(run.code, `--page-size ${size}: ${run.stderr}`).toBe(2);
      expect(run.stderr).toContain('--page-size');
    }
    expect(doc).toMatch(
      /a P past the end of the log, later than its last position, is refused with exit 2 naming that position/,
    );
    const past = await runCli('audit', [
      ...['--workspace', WS, '--redis-url', redis.url, '--archive-dir', archiveDir],
      ...['--after', '99999999999999-0'],
    ]);
    expect(past.code, past.stdout + past.stderr).toBe(2);
    const last = await sb0Last();
    expect(past.stderr + past.stdout).toContain(last);
  });
});
