/**
 * src/main.ts built into one ES module, for the Switchboard processes the launcher starts (and
 * starts again when one dies).
 *
 * Through tsx, a process spends about 1.7 s of CPU before it serves: tsx compiles and loads the
 * TypeScript modules one at a time through its loader thread. Built once by esbuild (the compiler
 * tsx itself uses), the same code starts in about 0.5 s: on 2 cores, seven members come up sooner,
 * and a member the supervisor restarts serves again sooner.
 *
 * The packages are bundled too (but esbuild and tsx, which locate files of their own): loaded from
 * node_modules one by one, each CommonJS package scanned for its exports by Node's ES module
 * loader, they took about 0.35 s of the 0.87 s of CPU a Switchboard process spends before it
 * answers /health (0.52 s bundled), and half of a command-line tool's start. The module still lies
 * inside the project, where a `require` left in a package (an optional one, in a try) resolves.
 * Each source file keeps its own `import.meta.url`, and each package file its own `__dirname` and
 * `__filename`, so what a module reads beside itself (the Lua steps, the pages, a package.json) is
 * read from where it lies, as under tsx.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { processExists } from '../child-processes.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = path.join(ROOT, 'src', 'main.ts');

/**
 * A directory for built modules, inside the project (ignored by git with node_modules/): the
 * launcher's builds, `main-<its pid>.mjs`, and the test run's, under `test/`.
 */
export const BUILD_DIR = path.join(ROOT, 'node_modules', '.cache', 'switchboard');

/**
 * Bundles src/main.ts into `outfile` (under the project root). Written aside and renamed into
 * place: a process started meanwhile reads the old module or the new one, never half of one.
 */
export function buildMain(outfile: string): Promise<void> {
  return buildEntry(MAIN, outfile);
}

/** Bundles the module `entry` (a path under src/) into `outfile`, as buildMain does src/main.ts. */
export async function buildEntry(entry: string, outfile: string): Promise<void> {
  await mkdir(path.dirname(outfile), { recursive: true });
  // Loaded only when a build is asked for.
  const { build } = await import('esbuild');
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // esbuild finds its binary, and tsx its loader, beside their own files.
    external: ['esbuild', 'tsx', 'tsx/*'],
    // The packages' CommonJS `require`s of Node's modules (and optional packages), in an ES module.
    // (The bundle's own URL written in parts: this file's text is rewritten when it is built.)
    banner: {
      js: `import { createRequire as __sbRequire } from 'node:module';\nconst require = __sbRequire(${['import', 'meta', 'url'].join('.')});`,
    },
    outfile,
    write: false,
    logLevel: 'silent',
    plugins: [
      {
        name: 'own-dirname',
        setup(b) {
          b.onLoad({ filter: /[\\/]node_modules[\\/].*\.(?:js|cjs|mjs)$/ }, async (args) => {
            const source = await readFile(args.path, 'utf8');
            if (!/\b__(?:dirname|filename)\b/.test(source)) return undefined;
            // Declared in the package file's own scope (CommonJS files are each wrapped in a function).
            const own = `var __filename = ${JSON.stringify(args.path)}, __dirname = ${JSON.stringify(path.dirname(args.path))};\n`;
            return { contents: own + source, loader: 'js', resolveDir: path.dirname(args.path) };
          });
        },
      },
      {
        name: 'own-import-meta-url',
        setup(b) {
          b.onLoad({ filter: /\.ts$/ }, async (args) => {
            const source = await readFile(args.path, 'utf8');
            const own = JSON.stringify(pathToFileURL(args.path).href);
            // A pattern, not the plain text: this file's own text is rewritten too when it is
            // built (bench builds what it starts), and a plain 'import.meta.url' here would become
            // this file's URL, leaving the modules of that nested build with the bundle's.
            return { contents: source.replace(/import\.meta\.url/g, own), loader: 'ts' };
          });
        },
      },
    ],
  });
  const aside = `${outfile}.${process.pid}`;
  await writeFile(aside, out.outputFiles[0]!.contents);
  await rename(aside, outfile);
}

/** How to start src/main.ts: `node <args>`, and what to do when no more starts are coming. */
export interface MainCommand {
  readonly args: readonly string[];
  dispose(): Promise<void>;
}

/**
 * A build of src/main.ts of this process's own (removed by `dispose`), or, when it cannot be
 * made, the sources through tsx; `onError` hears why.
 */
export function mainCommand(onError: (err: Error) => void): Promise<MainCommand> {
  return entryCommand(MAIN, 'main', onError);
}

/** Where entryCommand writes the build `name` of this process. */
export const builtPath = (name: string): string => path.join(BUILD_DIR, `${name}-${process.pid}.mjs`);

/**
 * Removes the builds `<name>-<pid>.mjs` of processes that no longer exist, and the half-written
 * ones (`<name>-<pid>.mjs.<writer's pid>`, buildEntry) of writers that no longer exist: a launcher
 * killed outright (kill -9) could not remove its own, and each would stay for good.
 */
async function removeBuildsOfGone(name: string): Promise<void> {
  const files = await readdir(BUILD_DIR).catch(() => [] as string[]);
  const own = new RegExp(`^${name}-(\\d+)\\.mjs(?:\\.(\\d+))?$`);
  await Promise.all(
    files.map(async (f) => {
      const m = own.exec(f);
      // A whole build is its process's; one half-written, its writer's.
      const pid = Number(m?.[2] ?? m?.[1]);
      if (pid > 0 && !processExists(pid)) await rm(path.join(BUILD_DIR, f), { force: true });
    }),
  );
}

/**
 * The same for any module of src/ (`entry`, a path): built into `<name>-<this pid>.mjs`, or run
 * through tsx when the build fails.
 */
export async function entryCommand(
  entry: string,
  name: string,
  onError: (err: Error) => void,
): Promise<MainCommand> {
  const outfile = builtPath(name);
  await removeBuildsOfGone(name);
  try {
    await buildEntry(entry, outfile);
  } catch (err) {
    onError(err as Error);
    return { args: ['--import', 'tsx', entry], dispose: async () => {} };
  }
  return { args: [outfile], dispose: () => rm(outfile, { force: true }) };
}
