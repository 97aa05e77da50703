/**
 * Two starts on one DATA_DIR, each alone in a PID namespace (`unshare --pid`: pid 1 in both), as
 * two containers on one volume are. The second found `switchboard.pid` holding pid 1, its own pid,
 * took it for a file left by an earlier run of its container and took the claim over: a second
 * private redis-server ran on the same AOF, and private-redis.json was the second's. Now the claim
 * says which PID namespace wrote it and its holder refreshes it: a start that cannot see the holder
 * watches the claim, and is refused while it is refreshed, naming DATA_DIR and what to do; one
 * left by a container killed outright is taken over once it is no longer refreshed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/topology/redis-server.ts';
import { PROJECT_ROOT } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const dirs: string[] = [];
const started: ChildProcess[] = [];
afterAll(async () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

interface Start {
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: () => string;
  readonly exited: Promise<number | string>;
}

/** `npm start` (api) on `dataDir`, as pid 1 of a PID namespace of its own; killed with it. */
async function startAlone(dataDir: string): Promise<Start> {
  const port = await freePort();
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  for (const k of ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'NODE_OPTIONS', 'VITEST', 'VITEST_WORKER_ID'])
    delete env[k];
  Object.assign(env, {
    ROLES: 'api,projector,dispatcher',
    HOST: '127.0.0.1',
    PORT: String(port),
    AUTH: 'off',
    LB_DRAIN_MS: '0',
    LOG_LEVEL: 'warn',
    DATA_DIR: dataDir,
  });
  const child = spawn(
    'unshare',
    ['--pid', '--kill-child', process.execPath, '--import', 'tsx', 'src/main.ts'],
    { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  started.push(child);
  let text = '';
  child.stdout?.on('data', (b: Buffer) => {
    text += b.toString();
  });
  child.stderr?.on('data', (b: Buffer) => {
    text += b.toString();
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return { child, url: `http://127.0.0.1:${port}`, output: () => text, exited };
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/health`)).ok;
  } catch {
    return false;
  }
}

async function ready(s: Start): Promise<void> {
  await waitFor('the start to answer', () => s.child.exitCode === null && answers(s.url), {
    timeoutMs: 40_000,
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${s.output()}`);
  });
}

function exitWithin(s: Start, ms: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    s.exited,
    new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve('still running'), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

describe('two starts on one DATA_DIR in PID namespaces of their own (containers on one volume)', () => {
  it('refuses the second while the first runs, naming DATA_DIR; takes over the claim of one killed outright', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-data-dir-ns-'));
    dirs.push(dataDir);
    const first = await startAlone(dataDir);
    await ready(first);
    const record = readFileSync(path.join(dataDir, 'private-redis.json'), 'utf8');

    const second = await startAlone(dataDir);
    const code = await exitWithin(second, 30_000);
    if (code === 'still running') second.child.kill('SIGKILL');
    expect(code, second.output()).toBe(1);
    expect(second.output()).toMatch(
      /^switchboard: could not start: DATA_DIR: .* is in use by another Switchboard .*another PID namespace/m,
    );
    expect(second.output()).not.toMatch(/^\s+at /m);
    // The first serves on, and the tools still find its Redis where it said.
    expect(readFileSync(path.join(dataDir, 'private-redis.json'), 'utf8')).toBe(record);
    expect(await answers(first.url)).toBe(true);

    // Killed outright (its namespace with it, its redis-server too): the claim is taken over.
    first.child.kill('SIGKILL');
    await first.exited;
    expect(existsSync(path.join(dataDir, 'switchboard.pid'))).toBe(true);
    const third = await startAlone(dataDir);
    await ready(third);
    // unshare does not pass SIGTERM on: killed with its namespace.
    third.child.kill('SIGKILL');
    await third.exited;
  }, 120_000);
});
