/**
 * The main command and its DATA_DIR, where the private redis-server keeps its AOF: a second
 * `npm start` on a DATA_DIR whose first still runs is refused (it would start a second
 * redis-server on the same AOF, and on its stop remove the first's private-redis.json), naming
 * DATA_DIR and the process that holds it; the claim goes with the process that held it, even one
 * killed outright. A DATA_DIR that cannot be made is named too, without a stack trace.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SwitchboardClient } from 'switchboard/client';
import { afterAll, describe, expect, it } from 'vitest';
import {
  childProcesses,
  type ExitResult,
  killAllProcesses,
  pidAlive,
  StrayProcesses,
  type SwitchboardProcess,
  startProcess,
} from '../support/processes.ts';
import { startTestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const ROLES = 'api,projector,dispatcher';
const strays = new StrayProcesses();
const dirs: string[] = [];

afterAll(async () => {
  await killAllProcesses();
  strays.killAll();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Its exit code, or 'still running' when it has not exited within `ms`. */
function exitWithin(sb: SwitchboardProcess, ms: number): Promise<ExitResult | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    sb.exited,
    new Promise<'still running'>((resolve) => {
      timer = setTimeout(() => resolve('still running'), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The private redis-server a main command runs as its child (kept to be killed if a test fails). */
function privateRedisOf(sb: SwitchboardProcess): { pid: number } | undefined {
  const child = childProcesses(sb.pid).find((c) => c.comm.startsWith('redis-server'));
  if (child) strays.add(child.pid);
  return child;
}

const stderrOf = (sb: SwitchboardProcess) =>
  sb.logs
    .filter((l) => l.includes(' err] '))
    .map((l) => l.slice(l.indexOf(' err] ') + 6))
    .join('\n');

/** A file `not-a-directory` in a new temporary folder: where a directory must be, a file. */
async function aFile(prefix: string): Promise<string> {
  const parent = await mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.push(parent);
  const file = path.join(parent, 'not-a-directory');
  writeFileSync(file, 'a file\n');
  return file;
}

/** The start ends with exit 1 and one line on stderr matching `message`, no stack trace. */
async function expectStartRefused(sb: SwitchboardProcess, message: RegExp): Promise<void> {
  const code = await exitWithin(sb, 20_000);
  await sb.stop();
  expect(code, sb.logText()).toBe(1);
  expect(stderrOf(sb)).toMatch(message);
  expect(stderrOf(sb)).not.toMatch(/^\s+at /m);
}

describe('the main command and its DATA_DIR', () => {
  it('refuses a second start on a DATA_DIR whose private redis-server runs, naming DATA_DIR and the pid: exit 1, the first untouched; the claim goes with the first, even killed outright', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-claim-'));
    dirs.push(dataDir);
    const first = await startProcess({ roles: ROLES, env: { DATA_DIR: dataDir }, name: 'first' });
    const firstRedis = privateRedisOf(first);
    expect(firstRedis, `a redis-server child of ${first.pid}`).toBeDefined();
    const record = readFileSync(path.join(dataDir, 'private-redis.json'), 'utf8');

    const second = await startProcess({
      roles: ROLES,
      env: { DATA_DIR: dataDir },
      waitReady: false,
      name: 'second',
    });
    const code = await exitWithin(second, 20_000);
    const secondRedis = privateRedisOf(second);
    await second.stop();
    expect(code, second.logText()).toBe(1);
    expect(secondRedis, 'no second redis-server on the same AOF').toBeUndefined();
    expect(stderrOf(second)).toMatch(
      new RegExp(
        `^switchboard: could not start: DATA_DIR: .* is in use by another Switchboard \\(pid ${first.pid}\\)`,
      ),
    );
    expect(stderrOf(second)).not.toMatch(/^\s+at /m);
    // The first serves on, and the tools still find its Redis where it said.
    expect(readFileSync(path.join(dataDir, 'private-redis.json'), 'utf8')).toBe(record);
    const client = new SwitchboardClient({ url: first.url!, retries: 0 });
    expect((await client.registerAgent({ id: 'ana', skills: ['English'] })).status).toBe(201);

    // Stopped, it hands DATA_DIR on: a new start there runs, with the data.
    expect(await first.stop(), first.logText()).toBe(0);
    const third = await startProcess({ roles: ROLES, env: { DATA_DIR: dataDir }, name: 'third' });
    const thirdRedis = privateRedisOf(third);
    expect(thirdRedis).toBeDefined();
    expect((await new SwitchboardClient({ url: third.url!, retries: 0 }).getAgent('ana')).id).toBe('ana');

    // Killed outright, it leaves its claim behind; the next start takes it over.
    third.kill('SIGKILL');
    await third.exited;
    await waitFor('the private redis-server to end', () => !pidAlive(thirdRedis!.pid), { timeoutMs: 5_000 });
    const fourth = await startProcess({ roles: ROLES, env: { DATA_DIR: dataDir }, name: 'fourth' });
    privateRedisOf(fourth);
    expect((await new SwitchboardClient({ url: fourth.url!, retries: 0 }).getAgent('ana')).id).toBe('ana');
    expect(await fourth.stop(), fourth.logText()).toBe(0);
  }, 120_000);

  it('names DATA_DIR when it cannot be made (a file where a directory must be): exit 1, no stack trace', async () => {
    const file = await aFile('sb-claim-file-');
    const sb = await startProcess({
      roles: ROLES,
      env: { DATA_DIR: path.join(file, 'data') },
      waitReady: false,
      name: 'unmakeable',
    });
    await expectStartRefused(
      sb,
      /^switchboard: could not start: DATA_DIR: .*not-a-directory\/data cannot be made/m,
    );
  }, 40_000);

  it('names DATA_DIR under /proc, where mkdir answers ENOENT with its parent there: exit 1, where the start used to hang', async () => {
    const sb = await startProcess({
      roles: ROLES,
      env: { DATA_DIR: `/proc/switchboard-${process.pid}` },
      waitReady: false,
      name: 'under-proc',
    });
    await expectStartRefused(
      sb,
      /^switchboard: could not start: DATA_DIR: \/proc\/switchboard-\d+ cannot be made \(ENOENT.*; give a directory/m,
    );
  }, 40_000);

  it('names ARCHIVE_DIR when the archiver cannot make it: exit 1, where the archiver used to retry for ever', async () => {
    const file = await aFile('sb-claim-archive-');
    const redis = await startTestRedis();
    try {
      const sb = await startProcess({
        roles: 'archiver',
        redis,
        env: { ARCHIVE_DIR: path.join(file, 'archive'), DATA_DIR: path.dirname(file) },
        waitReady: false,
        name: 'archiver',
      });
      await expectStartRefused(
        sb,
        /^switchboard: could not start: ARCHIVE_DIR: .*not-a-directory\/archive cannot be made or written \(ENOTDIR/m,
      );
    } finally {
      await redis.stop();
    }
  }, 40_000);
});
