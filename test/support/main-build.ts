/**
 * The main command built once per test run, for the Switchboard processes the suites start.
 *
 * `startProcess` (processes.ts) starts `src/main.ts`; through tsx, each start spends about a
 * second of CPU loading the TypeScript modules one by one through its loader thread, and the suite
 * starts a hundred or more of them on 2 cores. This global setup bundles `src/main.ts` with
 * esbuild (the compiler tsx itself uses), packages left external, into one ES module under
 * node_modules/.cache, and `startProcess` runs that. Each source file keeps its own
 * `import.meta.url`, so what a module reads beside itself (the Lua steps, the pages) is read from
 * src/ as under tsx. The commands users run (npm start, the launcher, the CLIs) still go through
 * tsx, and their own suites start them that way (fresh-clone, getting-started, topology).
 *
 * SWITCHBOARD_TEST_MAIN=tsx makes `startProcess` use tsx instead (no build).
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where the bundle is written; `startProcess` runs it when it is there. */
export const MAIN_BUNDLE = path.join(ROOT, 'node_modules', '.cache', 'switchboard-test', 'main.mjs');

/** The bundle this run wrote (its inode), so teardown removes only its own. */
let written: number | undefined;

export async function setup(): Promise<void> {
  if (process.env.SWITCHBOARD_TEST_MAIN === 'tsx') {
    await rm(MAIN_BUNDLE, { force: true });
    return;
  }
  await mkdir(path.dirname(MAIN_BUNDLE), { recursive: true });
  // Imported here: the suites import this file for MAIN_BUNDLE alone.
  const { build } = await import('esbuild');
  const out = await build({
    entryPoints: [path.join(ROOT, 'src', 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile: MAIN_BUNDLE,
    write: false,
    logLevel: 'warning',
    plugins: [
      {
        name: 'own-import-meta-url',
        setup(b) {
          b.onLoad({ filter: /\.ts$/ }, async (args) => {
            const source = await readFile(args.path, 'utf8');
            const own = JSON.stringify(pathToFileURL(args.path).href);
            return { contents: source.replaceAll('import.meta.url', own), loader: 'ts' };
          });
        },
      },
    ],
  });
  // Written aside and renamed into place: another run starting a process meanwhile reads the old
  // bundle or the new one, never half of one.
  const aside = `${MAIN_BUNDLE}.${process.pid}`;
  await writeFile(aside, out.outputFiles[0]!.contents);
  await rename(aside, MAIN_BUNDLE);
  written = (await stat(MAIN_BUNDLE)).ino;
}

export async function teardown(): Promise<void> {
  const now = await stat(MAIN_BUNDLE).catch(() => undefined);
  if (now && now.ino === written) await rm(MAIN_BUNDLE, { force: true });
}
