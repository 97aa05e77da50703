/**
 * A fresh clone stays clean: `git clone` of this repository (its last commit) into a temporary
 * directory, the setup the README's commands run (`scripts/ensure.sh`: `npm ci` from the committed
 * lock, which npm must accept as it is and never rewrites), then `npm start` until it serves and
 * SIGTERM; `git status --porcelain` is empty after each, and the private Redis's data directory,
 * the test output and node_modules are there and ignored by .gitignore.
 *
 * `npm ci` runs for real (from npm's cache when it holds the packages, else the registry), so this
 * also proves the committed lock is one `npm ci` accepts.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/topology/redis-server.ts';
import { PROJECT_ROOT } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const run = promisify(execFile);
const dirs: string[] = [];
let started: ChildProcess | undefined;

afterAll(async () => {
  // `npm start` runs in its own process group: take all of it (npm, node, redis-server) along.
  if (started?.pid !== undefined && groupAlive(started.pid)) {
    try {
      process.kill(-started.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** The environment of a user's shell: nothing of the test runner's own configuration. */
function userEnv(more: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    // npm_*: when the suite runs under `npm test`, npm's own settings for this checkout.
    if (/^(VITEST|REDIS_|SWITCHBOARD_TEST_|npm_)|^(PORT|NODE_OPTIONS|TEST|NODE_ENV)$/i.test(k)) delete env[k];
  }
  // npm ci takes the packages from npm's cache when it has them: quicker, same lock check.
  return { ...env, npm_config_prefer_offline: 'true', ...more };
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function porcelain(dir: string, ...more: string[]): Promise<string[]> {
  const { stdout } = await run('git', ['status', '--porcelain', ...more], { cwd: dir });
  return stdout.split('\n').filter((l) => l !== '');
}

// Only from a git checkout: an exported tree has nothing to clone.
describe.skipIf(!existsSync(path.join(PROJECT_ROOT, '.git')))('a fresh clone', () => {
  it('stays clean through the setup, npm start and test output', { timeout: 180_000 }, async () => {
    const parent = await mkdtemp(path.join(os.tmpdir(), 'sb-clone-'));
    dirs.push(parent);
    const dir = path.join(parent, 'switchboard');
    await run('git', ['clone', '--quiet', PROJECT_ROOT, dir]);
    expect(existsSync(path.join(dir, 'node_modules'))).toBe(false);
    expect(await porcelain(dir)).toEqual([]);

    // The setup `npm start` and `npm test` run first.
    const setup = await run('bash', ['scripts/ensure.sh'], {
      cwd: dir,
      env: userEnv(),
      maxBuffer: 16 * 1024 * 1024,
    }).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`scripts/ensure.sh failed: ${err.stderr ?? err.message}`);
    });
    expect(setup.stderr).toContain('installing npm packages');
    expect(existsSync(path.join(dir, 'node_modules', '.bin', 'tsx'))).toBe(true);
    expect(await porcelain(dir)).toEqual([]);

    // `npm start` as the README has it (its private redis-server keeps its AOF under ./data).
    const port = await freePort();
    const child = spawn('npm', ['start'], {
      cwd: dir,
      env: userEnv({ PORT: String(port), LOG_LEVEL: 'warn' }),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    started = child;
    let output = '';
    child.stdout?.on('data', (b: Buffer) => {
      output += b.toString('utf8');
    });
    child.stderr?.on('data', (b: Buffer) => {
      output += b.toString('utf8');
    });
    const exited = new Promise<number | string>((resolve) =>
      child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
    );
    await waitFor(
      'npm start to answer /health',
      async () => {
        if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}: ${output}`);
        const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        return res.status === 200;
      },
      { timeoutMs: 60_000, everyMs: 200 },
    );
    // The README's examples: the admin key the first start stored under ./data, as a bearer token.
    const keyFile = path.join(dir, 'data', 'admin-key');
    await waitFor('npm start to store the admin key', () => existsSync(keyFile), { timeoutMs: 10_000 });
    const key = readFileSync(keyFile, 'utf8').trim();
    const stats = `http://127.0.0.1:${port}/v1/workspaces/default/stats`;
    const withKey = await fetch(stats, { headers: { authorization: `Bearer ${key}` } });
    await withKey.arrayBuffer();
    expect(withKey.status).toBe(200);
    const without = await fetch(stats);
    await without.arrayBuffer();
    expect(without.status).toBe(401);
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
    await waitFor('npm start, Switchboard and its redis-server to exit', () => !groupAlive(child.pid!), {
      timeoutMs: 20_000,
    });
    expect(readdirSync(path.join(dir, 'data')).length).toBeGreaterThan(0);

    // Test output where .ci/run writes it.
    mkdirSync(path.join(dir, '.test-results'), { recursive: true });
    writeFileSync(path.join(dir, '.test-results', 'vitest.json'), '{}');

    expect(await porcelain(dir)).toEqual([]);
    const ignored = await porcelain(dir, '--ignored');
    for (const entry of ['node_modules/', 'data/', '.test-results/'])
      expect(ignored).toContain(`!! ${entry}`);
  });
});
