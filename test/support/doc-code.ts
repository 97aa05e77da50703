/**
 * The literal examples of the documents, as a user copies them: the commands of their fenced code
 * blocks, their inline code spans, a command line's words, their `npm run` lines, and what a
 * script's `--help` prints. The docs' example suites read the documents through these, so their
 * checks follow the documents as they change.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { CLI_TOOLS, type CliTool, cliEntry, launcherEntry } from './main-build.ts';
import { PROJECT_ROOT } from './processes.ts';

/** A file of the repository (a document, package.json), as text. */
export const readDoc = (doc: string) => readFileSync(path.join(PROJECT_ROOT, doc), 'utf8');

/** The commands of a document's fenced code blocks, a line ending in `\` joined with the next. */
export function fencedCommands(text: string): string[] {
  const out: string[] = [];
  let inBlock = false;
  let pending = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) {
      inBlock = !inBlock;
      pending = '';
      continue;
    }
    if (!inBlock) continue;
    if (line.endsWith('\\')) pending += `${line.slice(0, -1)} `;
    else {
      out.push(pending + line);
      pending = '';
    }
  }
  return out;
}

/** A document's inline code spans (its fenced blocks left out), a span's line breaks as spaces. */
export function inlineCode(text: string): string[] {
  const prose = text.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');
  return [...prose.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\s*\n\s*/g, ' '));
}

/** A command line's words as a POSIX shell splits them (quotes removed), up to a `#` comment. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= '';
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === '#' && word === undefined) break;
    else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** `npm run <script> -- <words>` of a code block or inline code span of a document. */
export interface NpmRun {
  readonly doc: string;
  readonly line: string;
  readonly script: string;
  readonly options: string[];
  /** The words after `--`. */
  readonly args: string[];
}

/** The `npm run` lines of the documents' code blocks and inline code spans. */
export function npmRuns(docs: readonly string[]): NpmRun[] {
  const found: NpmRun[] = [];
  for (const doc of docs) {
    const text = readDoc(doc);
    const inline = inlineCode(text).filter((c) => c.startsWith('npm run '));
    for (const line of [...fencedCommands(text), ...inline]) {
      const m = line.match(/npm run (?:-s )?([\w:-]+)(.*)$/);
      if (!m) continue;
      // A comment and a pipe into another command left out; `[--a X | --b Y]` of a synopsis kept.
      const rest = m[2]!.replace(/\s#.*$/, '').replace(/\s\|\s(?!-).*$/, '');
      const options = [...rest.matchAll(/(?<![\w-])--[a-z][\w-]*/g)].map((o) => o[0]);
      const args = rest
        .replace(/^\s*--\s/, '')
        .trim()
        .split(/\s+/)
        .filter(Boolean);
      found.push({ doc, line, script: m[1]!, options, args });
    }
  }
  return found;
}

/** package.json's scripts. */
export const scripts = (JSON.parse(readDoc('package.json')) as { scripts: Record<string, string> }).scripts;
const helps = new Map<string, Promise<string>>();
/**
 * What `npm run <script> -- [args] --help` prints (its CLI run directly, without ensure.sh: the
 * run's build of it when there is one): a
 * workload's own options with `args` (`npm run bench -- all --help`).
 */
export function help(script: string, args: readonly string[] = []): Promise<string> {
  const key = [script, ...args].join(' ');
  let h = helps.get(key);
  if (h === undefined) {
    const file = scripts[script]!.match(/src\/cli\/([\w-]+)\.ts/)!;
    const tool = file[1]!;
    // The run's build of the tool (test/support/main-build.ts), else its source through tsx.
    const entry =
      tool === 'launch'
        ? launcherEntry()
        : (CLI_TOOLS as readonly string[]).includes(tool)
          ? cliEntry(tool as CliTool)
          : ['--import', 'tsx', file[0]];
    h = promisify(execFile)(process.execPath, [...entry, ...args, '--help'], {
      cwd: PROJECT_ROOT,
      timeout: 60_000,
    }).then(
      (r) => r.stdout + r.stderr,
      (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ''}${e.stderr ?? ''}`,
    );
    helps.set(key, h);
  }
  return h;
}
