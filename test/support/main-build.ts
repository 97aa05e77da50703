/**
 * The main command built once per test run, for the Switchboard processes the suites start.
 *
 * `startProcess` (processes.ts) starts `src/main.ts`; through tsx, each start spends about a
 * second of CPU loading the TypeScript modules one by one through its loader thread, and the suite
 * starts a hundred or more of them on 2 cores. This global setup builds `src/main.ts` once, as the
 * launcher does for its members (src/topology/local/main-build.ts), into node_modules/.cache, and
 * `startProcess` runs that. The commands users run directly (npm start, the CLIs) still go through
 * tsx, and their own suites start them that way (fresh-clone, getting-started, the CLI suites).
 *
 * SWITCHBOARD_TEST_MAIN=tsx makes `startProcess` and `cliEntry` use tsx instead (no build).
 */
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processExists } from '../../src/topology/child-processes.ts';
import { BUILD_DIR, buildEntry, buildMain } from '../../src/topology/local/main-build.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The run's own directory of bundles, `test-<pid of vitest's main process>`: the global setup sets
 * it before the forks start, and they inherit it. Two runs in one checkout at once (a suite run
 * beside the whole suite) each start their own builds: one ending removes only its own, never the
 * module the other's processes are about to start.
 */
const RUN_DIR = 'SWITCHBOARD_TEST_BUILD_DIR';
const runDir = (): string => process.env[RUN_DIR] ?? path.join(BUILD_DIR, `test-${process.pid}`);

/** Where the bundle is written; `startProcess` runs it when it is there. */
export const MAIN_BUNDLE = path.join(runDir(), 'main.mjs');

/**
 * The command-line tools the suites run as child processes, built the same way. Through tsx each
 * start spends about 1.3 s of CPU (measured: `audit --help`, 1.0 – 1.2 s user and 0.3 s system),
 * and the suites start a hundred or so on 2 cores, whose CPU a run keeps 79 % busy on average:
 * that time was much of the run's length. The tools' own commands (`npm run audit`, ...) still go through tsx where a suite
 * runs them as a user does (getting-started, fresh-clone) and in `cliEntry`'s own suite.
 */
export const CLI_TOOLS = ['audit', 'rebuild', 'keys', 'simulate', 'bench'] as const;
export type CliTool = (typeof CLI_TOOLS)[number];
/**
 * The tools built: all of them. bench builds the processes it starts itself
 * (src/cli/bench/http.ts), and loads another checkout's TypeScript through tsx's loader (steps).
 */
const BUILT: readonly CliTool[] = CLI_TOOLS;
const cliBundle = (name: CliTool) => path.join(runDir(), 'cli', `${name}.mjs`);

/**
 * `node <these> <args>` runs the tool `name` from the project root: the run's build of
 * src/cli/<name>.ts when the global setup made one, else the source through tsx.
 */
export function cliEntry(name: CliTool): string[] {
  const bundle = cliBundle(name);
  return BUILT.includes(name) && existsSync(bundle)
    ? [bundle]
    : ['--import', 'tsx', path.join(ROOT, 'src', 'cli', `${name}.ts`)];
}

/**
 * The topology launcher (src/cli/launch.ts, `npm run topology`), built too: the topology suites
 * start it a score of times. The launcher builds what it starts itself (its members, and with
 * --vrrp its own part in the app namespace).
 */
const LAUNCHER_SOURCE = path.join(ROOT, 'src', 'cli', 'launch.ts');
const launcherBundle = () => path.join(runDir(), 'cli', 'launch.mjs');

/** `node <these> <args>` runs the launcher: the run's build when there is one, else tsx. */
export function launcherEntry(): string[] {
  const bundle = launcherBundle();
  return existsSync(bundle) ? [bundle] : ['--import', 'tsx', LAUNCHER_SOURCE];
}

/** The directories of runs whose vitest has ended without its teardown (killed): removed. */
async function sweep(): Promise<void> {
  const names = await readdir(BUILD_DIR).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((n) => n === 'test' || (/^test-\d+$/.test(n) && !processExists(Number(n.slice(5)))))
      .map((n) => rm(path.join(BUILD_DIR, n), { recursive: true, force: true })),
  );
}

export async function setup(): Promise<void> {
  process.env[RUN_DIR] = path.join(BUILD_DIR, `test-${process.pid}`);
  if (process.env.SWITCHBOARD_TEST_MAIN === 'tsx') return;
  await sweep();
  const main = path.join(runDir(), 'main.mjs');
  await Promise.all([
    buildMain(main),
    buildEntry(LAUNCHER_SOURCE, launcherBundle()),
    ...BUILT.map((name) => buildEntry(path.join(ROOT, 'src', 'cli', `${name}.ts`), cliBundle(name))),
  ]);
}

export async function teardown(): Promise<void> {
  await rm(runDir(), { recursive: true, force: true });
}
