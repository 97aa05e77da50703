/**
 * The terminal `npm run topology -- --no-vrrp` runs in is closed (a window, an SSH session): its
 * process group gets SIGHUP. The launcher stops everything it started, as on Ctrl-C, and exits 0;
 * the Redis nodes and HAProxy, which run in process groups of their own and get no SIGHUP, must
 * not be left running on the cluster's ports.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockFile } from '../../src/topology/local/data-dir-lock.ts';
import { waitFor } from '../support/wait.ts';
import { stopLaunchers, tempDir } from './helpers.ts';

const launcher = new URL('../../src/cli/launch.ts', import.meta.url).pathname;
const dirs: { remove(): Promise<void> }[] = [];
const running: ChildProcess[] = [];
/** Every process the launcher started (pid: command line): killed after the test if left. */
const started = new Map<number, string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by its parent) is not running.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '');
  } catch {
    return false;
  }
}

/** The processes whose parent is `pid`, with their command lines. */
function childrenOf(pid: number): { pid: number; cmd: string }[] {
  const found: { pid: number; cmd: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== pid) continue;
      found.push({
        pid: Number(entry),
        cmd: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim(),
      });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

afterAll(async () => {
  await stopLaunchers(running);
  // What a launcher that did not stop left behind (only processes it started).
  for (const pid of started.keys()) if (alive(pid)) process.kill(pid, 'SIGKILL');
  for (const d of dirs) await d.remove();
}, 60_000);

describe('the launcher on SIGHUP', () => {
  it('stops everything it started when its terminal closes (SIGHUP to its process group)', async () => {
    const d = await tempDir('topology-hangup');
    dirs.push(d);
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        launcher,
        '--no-vrrp',
        '--data-dir',
        d.dir,
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
      ],
      // A process group of its own, as a terminal's foreground job.
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
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
    await waitFor(
      () => `the banner (the launcher said: ${out.slice(-1500)})`,
      () => out.includes('Ctrl-C stops everything') || child.exitCode !== null,
      { timeoutMs: 90_000, everyMs: 200 },
    );
    expect(out).toContain('Ctrl-C stops everything');
    for (const c of childrenOf(child.pid!)) started.set(c.pid, c.cmd);
    const kinds = [...started.values()];
    expect(kinds.filter((c) => c.startsWith('redis-server'))).toHaveLength(6);
    expect(kinds.some((c) => c.startsWith('haproxy'))).toBe(true);

    process.kill(-child.pid!, 'SIGHUP');
    const code = await Promise.race([
      exited,
      new Promise<'still running'>((r) => setTimeout(() => r('still running'), 40_000)),
    ]);
    await waitFor(
      () =>
        `nothing the launcher started left running (still: ${[...started]
          .filter(([pid]) => alive(pid))
          .map(([pid, cmd]) => `${pid} ${cmd}`)
          .join('; ')})`,
      () => [...started.keys()].every((pid) => !alive(pid)),
      { timeoutMs: 15_000, everyMs: 100 },
    );
    // Stopped as on Ctrl-C, not killed by the signal.
    expect(code, out.slice(-2000)).toBe(0);
    expect(existsSync(lockFile(d.dir))).toBe(false);
    const status = JSON.parse(readFileSync(path.join(d.dir, 'status.json'), 'utf8')) as {
      components: { name: string; state: string }[];
    };
    for (const c of status.components) expect(c.state, c.name).toBe('stopped');
  }, 150_000);
});
