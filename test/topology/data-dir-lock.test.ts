/**
 * One launcher per data directory (src/topology/local/data-dir-lock.ts). A second
 * `npm run topology` on the data directory of a running one is refused (exit 2, naming the
 * running launcher's pid and the directory) before it touches anything: with --fresh it would
 * otherwise delete the running cluster's data, passwords and admin key and start a second
 * cluster over them, and write its own status.json over the running one's. The claim goes
 * with the launcher (Ctrl-C); one left by a launcher that was killed is taken over.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { claimDataDir, lockFile } from '../../src/topology/local/data-dir-lock.ts';
import { waitFor } from '../support/wait.ts';
import { stopLaunchers, tempDir } from './helpers.ts';

const launcher = new URL('../../src/cli/launch.ts', import.meta.url).pathname;
const dirs: { remove(): Promise<void> }[] = [];
const running: ChildProcess[] = [];
afterAll(async () => {
  await stopLaunchers(running);
  for (const d of dirs) await d.remove();
}, 90_000);

function startLauncher(dataDir: string, extra: string[]) {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      launcher,
      '--no-vrrp',
      '--data-dir',
      dataDir,
      '--api',
      '1',
      '--projectors',
      '1',
      '--dispatchers',
      '1',
      '--http-port',
      '0',
      '--tls-port',
      '0',
      '--stats-port',
      '0',
      '--redis-port',
      '0',
      '--status-port',
      '0',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.push(child);
  let out = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => out };
}

describe('one launcher per data directory', () => {
  it('refuses a second launcher (even with --fresh) on a running one’s data directory, and leaves the running one alone', async () => {
    const d = await tempDir('topology-lock');
    dirs.push(d);
    const first = startLauncher(d.dir, []);
    await waitFor(
      () => `the first launcher's banner (it said: ${first.output().slice(-1500)})`,
      () => first.output().includes('Ctrl-C stops everything') || first.child.exitCode !== null,
      { timeoutMs: 90_000, everyMs: 200 },
    );
    expect(first.output()).toContain('Ctrl-C stops everything');
    const api = /API through HAProxy\s+(http:\/\/\S+)/.exec(first.output())?.[1];
    const kept = {
      manifest: path.join(d.dir, 'cluster', 'cluster.json'),
      credentials: path.join(d.dir, 'redis-credentials.json'),
    };
    await waitFor('the admin key', () => existsSync(path.join(d.dir, 'admin-key')), { timeoutMs: 15_000 });
    const before = {
      manifest: readFileSync(kept.manifest, 'utf8'),
      credentials: readFileSync(kept.credentials, 'utf8'),
      adminKey: readFileSync(path.join(d.dir, 'admin-key'), 'utf8'),
    };

    const second = startLauncher(d.dir, ['--fresh']);
    const code = await Promise.race([
      second.exited,
      new Promise<'still running'>((r) => setTimeout(() => r('still running'), 20_000)),
    ]);
    expect(code, second.output()).toBe(2);
    expect(second.output()).toContain(
      `another launcher (pid ${first.child.pid}) runs on the data directory ${d.dir}`,
    );
    expect(second.output()).not.toContain('--fresh: deleted');

    // The first one's data, passwords and status are untouched, and it still serves.
    expect(readFileSync(kept.manifest, 'utf8')).toBe(before.manifest);
    expect(readFileSync(kept.credentials, 'utf8')).toBe(before.credentials);
    expect(readFileSync(path.join(d.dir, 'admin-key'), 'utf8')).toBe(before.adminKey);
    const status = JSON.parse(readFileSync(path.join(d.dir, 'status.json'), 'utf8')) as {
      launcher: { pid: number };
      components: { state: string }[];
    };
    expect(status.launcher.pid).toBe(first.child.pid);
    expect(status.components.length).toBeGreaterThan(0);
    expect(status.components.every((c) => c.state === 'running')).toBe(true);
    expect((await fetch(`${api}/health`)).status).toBe(200);
    expect(readFileSync(lockFile(d.dir), 'utf8').trim()).toBe(String(first.child.pid));

    // Ctrl-C: the claim goes with the launcher.
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
    expect(existsSync(lockFile(d.dir))).toBe(false);
  }, 150_000);

  it('takes over a claim left by a launcher that was killed, and releases its own', async () => {
    const d = await tempDir('topology-lock-stale');
    dirs.push(d);
    // A pid that runs no launcher: a process that has exited.
    const gone = spawn('true');
    await new Promise((r) => gone.once('exit', r));
    writeFileSync(lockFile(d.dir), `${gone.pid}\n`);
    const claim = claimDataDir(d.dir);
    expect(readFileSync(lockFile(d.dir), 'utf8').trim()).toBe(String(process.pid));
    claim.release();
    expect(existsSync(lockFile(d.dir))).toBe(false);
  });
});
