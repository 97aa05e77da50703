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
 * SWITCHBOARD_TEST_MAIN=tsx makes `startProcess` use tsx instead (no build).
 */
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { BUILD_DIR, buildMain } from '../../src/topology/local/main-build.ts';

/** Where the bundle is written; `startProcess` runs it when it is there. */
export const MAIN_BUNDLE = path.join(BUILD_DIR, 'test', 'main.mjs');

/** The bundle this run wrote (its inode), so teardown removes only its own. */
let written: number | undefined;

export async function setup(): Promise<void> {
  if (process.env.SWITCHBOARD_TEST_MAIN === 'tsx') {
    await rm(MAIN_BUNDLE, { force: true });
    return;
  }
  await buildMain(MAIN_BUNDLE);
  written = (await stat(MAIN_BUNDLE)).ino;
}

export async function teardown(): Promise<void> {
  const now = await stat(MAIN_BUNDLE).catch(() => undefined);
  if (now && now.ino === written) await rm(MAIN_BUNDLE, { force: true });
}
