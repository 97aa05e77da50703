/**
 * The commands docs/BENCHMARKS.md, docs/AUDIT.md, docs/ARCHIVE.md and docs/GETTING-STARTED.md give,
 * as written: every `npm run bench -- ...` line of their code blocks is accepted by the bench's
 * parser (placeholder paths replaced by real ones), the audit and rebuild synopses name only
 * options the tools take, and what BENCHMARKS.md says a bench run prints is what it prints: a
 * table unless `--json` is given, and the `seed` figures under the names the section lists.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../../src/cli/bench/options.ts';
import { PROJECT_ROOT } from '../support/processes.ts';
import { runCli } from './run-cli.ts';

const DOCS = ['docs/BENCHMARKS.md', 'docs/AUDIT.md', 'docs/ARCHIVE.md', 'docs/GETTING-STARTED.md'];
const read = (doc: string) => readFileSync(path.join(PROJECT_ROOT, doc), 'utf8');

/** The lines of a doc's code blocks. */
function codeLines(text: string): string[] {
  const lines: string[] = [];
  let inBlock = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) inBlock = !inBlock;
    else if (inBlock) lines.push(line);
  }
  return lines;
}

/** `npm run <tool> -- <args>` of a line, its comment and environment left out. */
function npmRun(line: string): { tool: string; args: string[] } | undefined {
  const m = line.match(/npm run (?:-s )?(\w+) -- (.*)$/);
  if (!m) return undefined;
  const args = m[2]!
    .replace(/\s#.*$/, '')
    .replace(/\|.*$/, '')
    .trim()
    .split(/\s+/)
    .filter(Boolean);
  return { tool: m[1]!, args };
}

/** A placeholder path of the docs replaced by one that exists, as a user's would. */
function realPaths(args: readonly string[]): string[] {
  return args.map((a, i) => {
    if (args[i - 1] === '--switchboard') return PROJECT_ROOT;
    if (args[i - 1] === '--against') return path.join(PROJECT_ROOT, 'src/dispatcher/lua/dispatch-14.lua');
    return a;
  });
}

const ALL_OPTIONS = ['--out', '--full', '--tiny', '--seed', '--redis-url', '--json', '--help'];

describe('the commands the docs give', () => {
  it('every npm run bench line of their code blocks is accepted by the bench', () => {
    let seen = 0;
    for (const doc of DOCS) {
      for (const line of codeLines(read(doc))) {
        const run = npmRun(line);
        if (run?.tool !== 'bench') continue;
        seen++;
        const args = realPaths(run.args);
        if (args[0] === 'all') {
          for (const a of args.filter((x) => x.startsWith('--')))
            expect(ALL_OPTIONS, `${doc}: ${line}`).toContain(a);
        } else expect(() => parseBenchArgs(args), `${doc}: ${line}`).not.toThrow();
      }
    }
    expect(seen).toBeGreaterThan(40);
  });

  it("the audit and rebuild synopses of AUDIT.md name only options of the tools' --help", async () => {
    const lines = codeLines(read('docs/AUDIT.md'))
      .map(npmRun)
      .filter((r) => r !== undefined);
    const tools = new Set(lines.map((r) => r.tool));
    expect([...tools].sort()).toEqual(['audit', 'rebuild']);
    for (const tool of ['audit', 'rebuild'] as const) {
      const help = await runCli(tool, ['--help']);
      expect(help.code, help.stderr).toBe(0);
      const known = new Set(help.stdout.match(/^ {2}--[a-z-]+/gm)?.map((o) => o.trim()));
      for (const r of lines.filter((l) => l.tool === tool))
        for (const o of r.args.join(' ').match(/--[a-z-]+/g) ?? [])
          expect(known, `${tool} ${o}`).toContain(o);
    }
  });

  it("what a bench run prints: a table, and the intro's promise of JSON says --json", async () => {
    const text = read('docs/BENCHMARKS.md');
    const table = await runCli('bench', ['seed', '--agents', '10', '--contacts', '100']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^Switchboard bench: seed\n/);
    expect(() => JSON.parse(table.stdout)).toThrow();
    // The first paragraph, where the output is described, says JSON comes with --json.
    const intro = text.split('\n\n')[1]!;
    if (/JSON/.test(intro)) expect(intro).toMatch(/`--json`/);
  });

  it("seed's figures under the names its section lists", async () => {
    const text = read('docs/BENCHMARKS.md');
    const json = await runCli('bench', ['seed', '--agents', '10', '--contacts', '100', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const figures = Object.keys((JSON.parse(json.stdout) as { figures: object }).figures);
    const section = text.split(/^## /m).find((s) => s.startsWith('`seed`'))!;
    const listed = [...section.matchAll(/^- `([A-Za-z]+)`:/gm)].map((m) => m[1]!);
    expect(listed.length).toBeGreaterThan(0);
    for (const name of listed) expect(figures, `seed's figure \`${name}\``).toContain(name);
  });
  it("bench all --tiny's duration: the doc's comment says what the tool's --help says", async () => {
    const line = codeLines(read('docs/BENCHMARKS.md')).find((l) => /npm run bench -- all --tiny\b/.test(l));
    const help = await runCli('bench', ['all', '--help']);
    expect(help.code, help.stderr).toBe(0);
    const helpSays = help.stdout.match(/^ {2}--tiny .*\((?:.*, )?(~[^)]+)\)/m)?.[1];
    expect(helpSays).toBeDefined();
    expect(line?.match(/\((?:.*; )?(?:.*, )?(~[^);]+)[);]/)?.[1], line).toBe(helpSays);
  });
  it("bench all's quick duration: the comment of its line holds the pasted table's measured time", () => {
    const text = read('docs/BENCHMARKS.md');
    const line = codeLines(text).find((l) => /^npm run bench -- all +#/.test(l))!;
    const measured = Number(
      text.match(/<!-- bench-all:start -->\nMeasured .*\(quick sizes, ([\d.]+) s;/)?.[1],
    );
    expect(measured).toBeGreaterThan(0);
    const range = line.match(/(\d+)(?:-(\d+))? minutes?/);
    expect(range, line).not.toBeNull();
    const [lo, hi] = [Number(range![1]), Number(range![2] ?? range![1])];
    expect(measured / 60, `${line} (the table: ${measured} s)`).toBeGreaterThanOrEqual(lo - 0.5);
    expect(measured / 60, `${line} (the table: ${measured} s)`).toBeLessThanOrEqual(hi + 0.5);
  });
});
