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
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILD_DIR, buildEntry, buildMain } from '../../src/topology/local/main-build.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where the bundle is written; `startProcess` runs it when it is there. */
export const MAIN_BUNDLE = path.join(BUILD_DIR, 'test', 'main.mjs');

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
const cliBundle = (name: CliTool) => path.join(BUILD_DIR, 'test', 'cli', `${name}.mjs`);

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
const LAUNCHER_BUNDLE = path.join(BUILD_DIR, 'test', 'cli', 'launch.mjs');

/** `node <these> <args>` runs the launcher: the run's build when there is one, else tsx. */
export function launcherEntry(): string[] {
  return existsSync(LAUNCHER_BUNDLE) ? [LAUNCHER_BUNDLE] : ['--import', 'tsx', LAUNCHER_SOURCE];
}

/** The bundles this run wrote (their inodes), so teardown removes only its own. */
const written = new Map<string, number>();
const bundles = () => [MAIN_BUNDLE, LAUNCHER_BUNDLE, ...CLI_TOOLS.map(cliBundle)];

export async function setup(): Promise<void> {
  if (process.env.SWITCHBOARD_TEST_MAIN === 'tsx') {
    await Promise.all(bundles().map((b) => rm(b, { force: true })));
    return;
  }
  await Promise.all([
    buildMain(MAIN_BUNDLE),
    buildEntry(LAUNCHER_SOURCE, LAUNCHER_BUNDLE),
    ...BUILT.map((name) => buildEntry(path.join(ROOT, 'src', 'cli', `${name}.ts`), cliBundle(name))),
  ]);
  for (const b of [MAIN_BUNDLE, LAUNCHER_BUNDLE, ...BUILT.map(cliBundle)])
    written.set(b, (await stat(b)).ino);
}

export async function teardown(): Promise<void> {
  for (const b of bundles()) {
    const now = await stat(b).catch(() => undefined);
    if (now && now.ino === written.get(b)) await rm(b, { force: true });
  }
}
