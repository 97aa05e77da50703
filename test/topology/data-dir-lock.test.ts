/**
 * One launcher per data directory (src/topology/local/data-dir-lock.ts). A second
 * `npm run topology` on the data directory of a running one is refused (exit 2, naming the
 * running launcher's pid and the directory) before it touches anything: with --fresh it would
 * otherwise delete the running cluster's data, passwords and admin key and start a second
 * cluster over them, and write its own status.json over the running one's. The claim goes
 * with the launcher; one left by a launcher that was killed is taken over.
 *
 * The same running launcher also shows two more things, so that one topology is started for all
 * three: a second launcher (another data directory) on its ports is refused before it starts
 * anything, naming the port and its option, while the running one keeps every connection (HAProxy
 * sets SO_REUSEPORT by default: a second HAProxy on the same port started, and the kernel split
 * the connections between two topologies); and the terminal it runs in closing (SIGHUP to its
 * process group) stops everything it started, as Ctrl-C does, the Redis nodes and HAProxy too,
 * which run in process groups of their own and get no SIGHUP.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { claimDataDir, lockFile } from '../../src/topology/local/data-dir-lock.ts';
import { deleteNamespaceSync, listNamespaces, probeNetns } from '../../src/topology/netns.ts';
import { freePort } from '../../src/topology/redis-server.ts';
import { waitFor } from '../support/wait.ts';
import {
  childrenOf,
  httpGet,
  isRunning,
  oneOfEachArgs,
  processState,
  spawnLauncher,
  stopLaunchers,
  tempDir,
} from './helpers.ts';

const dirs: { remove(): Promise<void> }[] = [];
const running: ChildProcess[] = [];
/** Run ids of --vrrp launches: their namespaces are deleted after the tests, should any be left. */
const runIds: string[] = [];
/** Processes a killed launcher left to stop by themselves: killed after the tests if still there. */
const orphans: number[] = [];
/** What the first test's launcher started (pid: command line): killed after the tests if left. */
const started = new Map<number, string>();
afterAll(async () => {
  await stopLaunchers(running);
  for (const pid of [...orphans, ...[...started.keys()].filter(isRunning)]) {
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

/**
 * A launcher of one API instance, projector and dispatcher. `ports`: its --http-port, --tls-port,
 * --stats-port and --redis-port (default: free ones it picks). `detached`: in a process group of
 * its own, as a terminal's foreground job.
 */
function startLauncher(
  dataDir: string,
  extra: string[],
  mode = '--no-vrrp',
  { ports = [0, 0, 0, 0], detached = false }: { ports?: readonly number[]; detached?: boolean } = {},
) {
  const l = spawnLauncher([mode, '--data-dir', dataDir, ...oneOfEachArgs(ports), ...extra], { detached });
  running.push(l.child);
  return l;
}

describe('one launcher per data directory', () => {
  it('refuses a second launcher on a running one’s data directory (even with --fresh) or on its ports before it touches anything; SIGHUP stops everything', async () => {
    const d = await tempDir('topology-lock');
    const other = await tempDir('topology-ports');
    dirs.push(d, other);
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
    const first = startLauncher(d.dir, [], '--no-vrrp', { ports, detached: true });
    await waitFor(
      () => `the first launcher's banner (it said: ${first.output().slice(-1500)})`,
      () => first.output().includes('Ctrl-C stops everything') || first.child.exitCode !== null,
      { timeoutMs: 90_000, everyMs: 200 },
    );
    expect(first.output()).toContain('Ctrl-C stops everything');
    for (const c of childrenOf(first.child.pid!)) started.set(c.pid, c.cmd);
    const kinds = [...started.values()];
    expect(kinds.filter((c) => c.startsWith('redis-server'))).toHaveLength(6);
    expect(kinds.some((c) => c.startsWith('haproxy'))).toBe(true);
    const api = /API through HAProxy\s+(http:\/\/\S+)/.exec(first.output())?.[1];
    expect(Number(new URL(api!).port)).toBe(ports[0]);
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

    // Two more launchers at once, each refused: on its data directory, even with --fresh; and on
    // its ports, from another data directory (below).
    const firstPid = async () => {
      const r = await httpGet('127.0.0.1', ports[0]!, '/status');
      return (JSON.parse(r.body) as { pid: number }).pid;
    };
    const owner = await firstPid();
    const second = startLauncher(d.dir, ['--fresh']);
    const third = startLauncher(other.dir, [], '--no-vrrp', { ports });
    const [code, thirdCode] = await Promise.all([
      Promise.race([
        second.exited,
        new Promise<'still running'>((r) => setTimeout(() => r('still running'), 20_000)),
      ]),
      Promise.race([
        third.exited,
        new Promise<'still running'>((r) => setTimeout(() => r('still running'), 30_000)),
      ]),
    ]);

    // On its data directory, even with --fresh: refused (2), naming the running launcher.
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

    // On its ports, from another data directory: refused (1) before anything starts, naming the
    // port and its option; every request on the port, during and after, reached the first one.
    for (let i = 0; i < 12; i++) expect(await firstPid()).toBe(owner);
    expect(thirdCode, third.output()).toBe(1);
    expect(third.output()).toContain(`127.0.0.1:${ports[0]} (--http-port) is taken`);
    expect(third.output()).not.toContain('starting a Redis Cluster');

    // Its terminal closes: SIGHUP to its process group stops everything, as Ctrl-C does, and the
    // claim goes with it.
    process.kill(-first.child.pid!, 'SIGHUP');
    const stopped = await Promise.race([
      first.exited,
      new Promise<'still running'>((r) => setTimeout(() => r('still running'), 40_000)),
    ]);
    await waitFor(
      () =>
        `nothing the launcher started left running (still: ${[...started]
          .filter(([pid]) => isRunning(pid))
          .map(([pid, cmd]) => `${pid} ${cmd}`)
          .join('; ')})`,
      () => [...started.keys()].every((pid) => !isRunning(pid)),
      { timeoutMs: 15_000, everyMs: 100 },
    );
    // Stopped as on Ctrl-C, not killed by the signal.
    expect(stopped, first.output().slice(-2000)).toBe(0);
    expect(existsSync(lockFile(d.dir))).toBe(false);
    const after = JSON.parse(readFileSync(path.join(d.dir, 'status.json'), 'utf8')) as {
      components: { name: string; state: string }[];
    };
    for (const c of after.components) expect(c.state, c.name).toBe('stopped');
  }, 200_000);

  it('a launcher killed outright takes what it started with it; launched again on its directory, the kept cluster serves its data', async () => {
    const d = await tempDir('topology-killed');
    dirs.push(d);
    const banner = (l: ReturnType<typeof startLauncher>, which: string) =>
      waitFor(
        () => `the ${which} launcher's banner (it said: ${l.output().slice(-1500)})`,
        () => l.output().includes('Ctrl-C stops everything') || l.child.exitCode !== null,
        { timeoutMs: 90_000, everyMs: 200 },
      );
    const first = startLauncher(d.dir, []);
    await banner(first, 'first');
    expect(first.output()).toContain('Ctrl-C stops everything');
    const children = childrenOf(first.child.pid!);
    orphans.push(...children.map((c) => c.pid));
    expect(children.filter((c) => c.cmd.startsWith('redis-server'))).toHaveLength(6);
    expect(children.some((c) => c.cmd.startsWith('haproxy'))).toBe(true);
    expect(children.filter((c) => c.cmd.includes('main')).length).toBeGreaterThanOrEqual(3);
    await waitFor('the admin key', () => existsSync(path.join(d.dir, 'admin-key')), { timeoutMs: 15_000 });
    const auth = { authorization: `Bearer ${readFileSync(path.join(d.dir, 'admin-key'), 'utf8').trim()}` };
    const apiOf = (out: string) => /API through HAProxy\s+(http:\/\/\S+)/.exec(out)?.[1];
    const made = await fetch(`${apiOf(first.output())}/v1/workspaces/default/agents`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'kept-agent', skills: ['s'] }),
    });
    expect(made.status).toBe(201);

    // kill -9: no exit hook of the launcher runs. Everything it started stops by itself (the
    // parent-death signal: SIGTERM, so the Redis nodes flush their AOF).
    first.child.kill('SIGKILL');
    await waitFor(
      () =>
        `everything the killed launcher started stopped (still running: ${children
          .filter((c) => isRunning(c.pid))
          .map((c) => `${c.pid} ${c.cmd} [${processState(c.pid)}]`)
          .join('; ')})`,
      () => children.every((c) => !isRunning(c.pid)),
      { timeoutMs: 30_000, everyMs: 100 },
    );

    // Launched again on the directory: its claim taken over, the kept cluster on its ports again.
    const again = startLauncher(d.dir, []);
    await banner(again, 'second');
    expect(again.output()).toContain('Ctrl-C stops everything');
    expect(again.output()).toContain('starting the Redis Cluster kept in');
    const read = await fetch(`${apiOf(again.output())}/v1/workspaces/default/agents/kept-agent`, {
      headers: auth,
    });
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ id: 'kept-agent' });
    await stopLaunchers([again.child]);
  }, 240_000);

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
