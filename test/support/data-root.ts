/**
 * Global setup: one folder for the DATA_DIR of every Switchboard process the suites start
 * (processes.ts), made before the workers start (they inherit SWITCHBOARD_TEST_DATA_ROOT) and
 * removed when the run ends. Without it those processes would use ./data, the checkout's own.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const DATA_ROOT_ENV = 'SWITCHBOARD_TEST_DATA_ROOT';
let made: string | undefined;

export async function setup(): Promise<void> {
  made = await mkdtemp(path.join(os.tmpdir(), 'sb-processes-'));
  process.env[DATA_ROOT_ENV] = made;
}

export async function teardown(): Promise<void> {
  if (made) await rm(made, { recursive: true, force: true });
}
