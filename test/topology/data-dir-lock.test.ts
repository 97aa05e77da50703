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
import { deleteNamespaceSync, listNamespaces, probeNetns } from '../../src/topology/netns.ts';
import { waitFor } from '../support/wait.ts';
import { stopLaunchers, tempDir } from './helpers.ts';

const launcher = new URL('../../src/cli/launch.ts', import.meta.url).pathname;
const dirs: { remove(): Promise<void> }[] = [];
const running: ChildProcess[] = [];
/** Run ids of --vrrp launches: their namespaces are deleted after the tests, should any be left. */
const runIds: string[] = [];
/** Processes a killed launcher left to stop by themselves: killed after the tests if still there. */
const orphans: number[] = [];
afterAll(async () => {
  await stopLaunchers(running);
  for (const pid of orphans) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  const left = await listNamespaces().catch(() => []);
  for (const id of runIds)
    for (const ns of left.filter((n) => n.includes(`-${id}-`))) deleteNamespaceSync(ns);
  for (const d of dirs) await d.remove();
}, 90_000);

const netns = probeNetns({ binaries: ['haproxy', 'keepalived'] });

function startLauncher(dataDir: string, extra: string[], mode = '--no-vrrp') {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      launcher,
      mode,
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

  it.skipIf(!netns.ok)(
    `--vrrp: a launcher killed outright leaves its claim to its part in the app namespace until that has stopped everything${netns.ok ? '' : ` (skipped: ${netns.reason})`}`,
    async () => {
      const d = await tempDir('topology-lock-vrrp');
      dirs.push(d);
      const first = startLauncher(d.dir, [], '--vrrp');
      await waitFor(
        () => `the first launcher's banner (it said: ${first.output().slice(-1500)})`,
        () => first.output().includes('Ctrl-C stops everything') || first.child.exitCode !== null,
        { timeoutMs: 120_000, everyMs: 200 },
      );
      expect(first.output()).toContain('Ctrl-C stops everything');
      const id = /run ([0-9a-z]+):/.exec(first.output())?.[1];
      expect(id).toBeDefined();
      runIds.push(id!);
      const status = JSON.parse(readFileSync(path.join(d.dir, 'status.json'), 'utf8')) as {
        launcher: { pid: number; appNamespacePid: number };
      };
      const inApp = status.launcher.appNamespacePid;
      expect(status.launcher.pid).toBe(first.child.pid);
      orphans.push(inApp);

      // Killed outright (the OOM killer, kill -9): its part in the app namespace stops everything.
      first.child.kill('SIGKILL');
      await first.exited;
      const second = startLauncher(d.dir, [], '--vrrp');
      const code = await Promise.race([
        second.exited,
        new Promise<'still running'>((r) => setTimeout(() => r('still running'), 20_000)),
      ]);
      const secondId = /namespaces sb-([0-9a-z]+)-br/.exec(second.output())?.[1];
      if (secondId) runIds.push(secondId);
      expect(code, second.output()).toBe(2);
      expect(second.output()).toContain(
        `another launcher (pid ${inApp}) runs on the data directory ${d.dir}`,
      );

      // Once it has stopped: its namespaces gone, the claim released.
      await waitFor(
        'the app namespace process to stop everything and exit',
        () => {
          try {
            process.kill(inApp, 0);
            return false;
          } catch {
            return true;
          }
        },
        { timeoutMs: 60_000, everyMs: 200 },
      );
      expect((await listNamespaces()).filter((n) => n.includes(`-${id}-`))).toEqual([]);
      expect(existsSync(lockFile(d.dir))).toBe(false);
    },
    200_000,
  );
});
