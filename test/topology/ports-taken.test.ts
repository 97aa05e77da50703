/**
 * A second `npm run topology -- --no-vrrp` (another data directory) on the ports of a running one
 * is refused before it starts anything, naming the port and its option; the running one keeps
 * every connection on its port. (HAProxy sets SO_REUSEPORT by default: a second HAProxy on the
 * same port started fine and the kernel split the connections between two topologies.)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/topology/redis-server.ts';
import { waitFor } from '../support/wait.ts';
import { httpGet, stopLaunchers, tempDir } from './helpers.ts';

const launcher = new URL('../../src/cli/launch.ts', import.meta.url).pathname;
const dirs: { remove(): Promise<void> }[] = [];
const running: ChildProcess[] = [];
afterAll(async () => {
  await stopLaunchers(running);
  for (const d of dirs) await d.remove();
}, 90_000);

function startLauncher(dataDir: string, ports: readonly number[]) {
  const [http, tls, stats, redis] = ports.map(String) as [string, string, string, string];
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
      http,
      '--tls-port',
      tls,
      '--stats-port',
      stats,
      '--redis-port',
      redis,
      '--status-port',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AUTH: 'off' } },
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

describe('a launcher on the ports of a running one', () => {
  it('is refused, naming the port and its option, and the running one keeps every connection', async () => {
    const a = await tempDir('topology-ports-a');
    const b = await tempDir('topology-ports-b');
    dirs.push(a, b);
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
    const first = startLauncher(a.dir, ports);
    await waitFor(
      () => `the first launcher's banner (it said: ${first.output().slice(-1500)})`,
      () => first.output().includes('Ctrl-C stops everything') || first.child.exitCode !== null,
      { timeoutMs: 90_000, everyMs: 200 },
    );
    expect(first.output()).toContain('Ctrl-C stops everything');
    const firstPid = async () => {
      const r = await httpGet('127.0.0.1', ports[0]!, '/status');
      return (JSON.parse(r.body) as { pid: number }).pid;
    };
    const owner = await firstPid();

    const second = startLauncher(b.dir, ports);
    const code = await Promise.race([
      second.exited,
      new Promise<'still running'>((r) => setTimeout(() => r('still running'), 30_000)),
    ]);
    // Every request on the port, during and after the second launch, reached the first one.
    for (let i = 0; i < 12; i++) expect(await firstPid()).toBe(owner);
    expect(code, second.output()).toBe(1);
    expect(second.output()).toContain(`127.0.0.1:${ports[0]} (--http-port) is taken`);
    // Refused before anything started: no cluster was made in its data directory.
    expect(second.output()).not.toContain('starting a Redis Cluster');

    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
  }, 150_000);
});
