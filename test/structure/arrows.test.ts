/**
 * The folders of src/ and the arrows between them (README, "Layout"): every import (static,
 * dynamic, type-only, re-export) and every file a module loads by `new URL('<relative>',
 * import.meta.url)` must point down.
 *
 *   main.ts ─▶ app ─▶ projections, dispatcher, topology, audit, archive ─▶ adapters ─▶ domain
 *   cli ─▶ anything but main.ts          audit ─▶ archive, adapters, domain
 *   client ─▶ domain (types only: the client runs in browsers too, with no server code)
 *
 * Nothing under adapters/ imports app/, a worker or topology/; the two workers never import each
 * other; domain/ imports no other folder and no impure package (no node: module, no I/O library).
 * Process entries (src/main.ts, src/cli/*.ts) may be named as files to spawn from any folder.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../support/processes.ts';

const SRC = path.join(PROJECT_ROOT, 'src');

type Folder =
  | 'main'
  | 'app'
  | 'domain'
  | 'adapters'
  | 'projections'
  | 'dispatcher'
  | 'audit'
  | 'archive'
  | 'topology'
  | 'client'
  | 'cli';

const FOLDERS: readonly Folder[] = [
  'main',
  'app',
  'domain',
  'adapters',
  'projections',
  'dispatcher',
  'audit',
  'archive',
  'topology',
  'client',
  'cli',
];

/** Which folders each folder may import (its own always). */
const MAY_IMPORT: Record<Folder, readonly Folder[]> = {
  main: ['app'],
  // The composition root wires the audit's replay into the API (GET /state) and the archiver (snapshots).
  app: ['domain', 'adapters', 'projections', 'dispatcher', 'topology', 'audit', 'archive'],
  domain: [],
  adapters: ['domain'],
  projections: ['domain', 'adapters'],
  dispatcher: ['domain', 'adapters'],
  audit: ['domain', 'adapters', 'archive'],
  archive: ['domain', 'adapters'],
  topology: ['domain', 'adapters'],
  // The typed client (the package's ./client entry) uses the domain's types only (checked below).
  client: ['domain'],
  cli: ['app', 'domain', 'adapters', 'projections', 'dispatcher', 'audit', 'archive', 'topology', 'client'],
};

/** Packages the executable specification may use: codecs and fp-ts, nothing that does I/O. */
const PURE_PACKAGES = [/^io-ts(\/|$)/, /^fp-ts(\/|$)/];

/** The folder of a path relative to src/, or undefined when it is not a known one. */
function folderOf(relative: string): Folder | undefined {
  if (relative === 'main.ts') return 'main';
  const top = relative.split('/')[0] as Folder;
  return FOLDERS.includes(top) && top !== 'main' ? top : undefined;
}

function isProcessEntry(relative: string): boolean {
  return relative === 'main.ts' || /^cli\/[^/]+\.ts$/.test(relative);
}

interface Arrow {
  readonly from: string;
  readonly to: string;
  readonly kind: 'import' | 'file';
}

/** Why an arrow points the wrong way, or undefined when it is allowed. */
function wrongWay(arrow: Arrow): string | undefined {
  const from = folderOf(arrow.from);
  if (from === undefined) return `${arrow.from} is in no known folder of src/ (${FOLDERS.join(', ')})`;
  if (!arrow.to.startsWith('src/')) {
    // A package (or a node: module).
    if (from !== 'domain') return undefined;
    return PURE_PACKAGES.some((p) => p.test(arrow.to))
      ? undefined
      : `domain/ imports nothing impure; ${arrow.from} imports '${arrow.to}'`;
  }
  const target = arrow.to.slice('src/'.length);
  if (arrow.kind === 'file' && isProcessEntry(target)) return undefined;
  const to = folderOf(target);
  if (to === undefined) return `${arrow.from} -> ${arrow.to}: the target is in no known folder of src/`;
  if (to === from || MAY_IMPORT[from].includes(to)) return undefined;
  return `${from}/ may use only ${[from, ...MAY_IMPORT[from]].join(', ')}; ${arrow.from} -> ${target}`;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

/** Every import and every `new URL('<relative>', import.meta.url)` of one file, targets as 'src/…' or a package. */
function arrowsOf(file: string, text: string): Arrow[] {
  const from = path.relative(SRC, file).split(path.sep).join('/');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const arrows: Arrow[] = [];
  const add = (specifier: string, kind: Arrow['kind']) => {
    if (!specifier.startsWith('.')) {
      if (kind === 'import') arrows.push({ from, to: specifier, kind });
      return;
    }
    const resolved = path.relative(PROJECT_ROOT, path.resolve(path.dirname(file), specifier));
    const to = resolved.split(path.sep).join('/');
    // Files outside src/ (package.json, infra/) are data, not code.
    if (to.startsWith('src/')) arrows.push({ from, to, kind });
  };
  const visit = (node: ts.Node) => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      add(node.moduleSpecifier.text, 'import');
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      add(node.arguments[0].text, 'import');
    } else if (
      ts.isNewExpression(node) &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === 'URL' &&
      node.arguments?.length === 2 &&
      ts.isStringLiteralLike(node.arguments[0]!) &&
      node.arguments[1]!.getText(source) === 'import.meta.url'
    ) {
      add(node.arguments[0].text, 'file');
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return arrows;
}

describe('the arrows between the folders of src/', () => {
  const files = sourceFiles(SRC);
  const arrows = files.flatMap((f) => arrowsOf(f, readFileSync(f, 'utf8')));

  it('reads the imports of every file under src/', () => {
    expect(files.length).toBeGreaterThan(50);
    // Every folder is found, and so are the arrows the composition root draws.
    for (const f of FOLDERS)
      expect(
        files.some((file) => folderOf(path.relative(SRC, file)) === f),
        f,
      ).toBe(true);
    const fromRoot = arrows.filter((a) => a.from === 'app/composition-root.ts').map((a) => a.to);
    expect(fromRoot).toContain('src/projections/projector.ts');
    expect(fromRoot).toContain('src/dispatcher/dispatcher.ts');
  });

  it('point down only', () => {
    const wrong = arrows.map(wrongWay).filter((w) => w !== undefined);
    expect(wrong, wrong.join('\n')).toEqual([]);
  });

  it('would catch an arrow pointing the wrong way', () => {
    const at = (from: string) => path.join(SRC, from);
    const check = (from: string, text: string) => arrowsOf(at(from), text).map(wrongWay);
    expect(
      check('adapters/redis/x.ts', "import type { Y } from '../../app/workspace-runner.ts';")[0],
    ).toMatch(/adapters\/ may use only adapters, domain/);
    expect(check('adapters/x.ts', "export { y } from '../dispatcher/leases.ts';")[0]).toBeDefined();
    expect(
      check('adapters/x.ts', "const f = new URL('../projections/lua/p.lua', import.meta.url);")[0],
    ).toBeDefined();
    expect(
      check('projections/x.ts', "const m = await import('../dispatcher/dispatcher.ts');")[0],
    ).toBeDefined();
    expect(check('dispatcher/x.ts', "import { P } from '../projections/projector.ts';")[0]).toBeDefined();
    expect(check('adapters/x.ts', "import { t } from '../topology/netns.ts';")[0]).toBeDefined();
    expect(check('domain/x.ts', "import { readFileSync } from 'node:fs';")[0]).toMatch(/nothing impure/);
    expect(check('domain/x.ts', "import type { Redis } from 'ioredis';")[0]).toMatch(/nothing impure/);
    expect(check('domain/x.ts', "import { Left } from 'fp-ts/lib/Either.js';")).toEqual([undefined]);
    expect(check('app/x.ts', "import { P } from '../projections/projector.ts';")).toEqual([undefined]);
    expect(check('topology/x.ts', "const main = new URL('../main.ts', import.meta.url);")).toEqual([
      undefined,
    ]);
    expect(check('topology/x.ts', "import '../main.ts';")[0]).toBeDefined();
    expect(check('elsewhere/x.ts', "import 'io-ts';")[0]).toMatch(/no known folder/);
    expect(check('archive/x.ts', "import { A } from '../audit/auditor.ts';")[0]).toBeDefined();
    expect(check('audit/x.ts', "import { L } from '../archive/log-reader.ts';")).toEqual([undefined]);
  });

  it('the client carries no server code: its imports of src/ are type-only, and of packages only ws (loaded when used)', () => {
    const bad: string[] = [];
    for (const file of files.filter((f) => folderOf(path.relative(SRC, f)) === 'client')) {
      const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
      for (const node of source.statements) {
        if (!ts.isImportDeclaration(node) && !ts.isExportDeclaration(node)) continue;
        const spec =
          node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier) ? node.moduleSpecifier.text : '';
        const typeOnly = ts.isImportDeclaration(node)
          ? node.importClause?.isTypeOnly === true
          : node.isTypeOnly;
        if (spec.startsWith('./')) continue;
        if (!typeOnly) bad.push(`${path.relative(SRC, file)}: ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
