/**
 * Servers outlive no starter killed outright. A redis-server (Switchboard's private one, the
 * launcher's nodes), an HAProxy and a Switchboard process of the end-to-end suites started by a
 * process that is then SIGKILLed (the OOM killer, a `kill -9`, an aborted test run: no exit hook
 * runs) stop by themselves: they are started with Linux's parent-death signal
 * (src/topology/child-processes.ts, `endingWithThisProcess`; the launcher's keepalived and
 * Switchboard processes too). Before, they ran on, holding their ports and data directories.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.ts';
import { isRunning } from './helpers.ts';

const FIXTURE = fileURLToPath(new URL('./starter-fixture.ts', import.meta.url));
const left: number[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const pid of left.filter(isRunning)) process.kill(pid, 'SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('a starter killed outright', () => {
  it('takes the redis-server, the HAProxy and the Switchboard process it started with it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sb-starter-'));
    dirs.push(dir);
    const starter = spawn(process.execPath, ['--import', 'tsx', FIXTURE, dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    starter.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    starter.stderr.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const line = await waitFor(
      () => `the servers started (the starter said: ${out.slice(-2000)})`,
      () => out.split('\n').find((l) => l.startsWith('{')),
      { timeoutMs: 30_000, everyMs: 50 },
    );
    const pids = JSON.parse(line) as { redis: number; haproxy: number; switchboard: number };
    const started = [pids.redis, pids.haproxy, pids.switchboard];
    left.push(...started);
    expect(started.every(isRunning)).toBe(true);

    starter.kill('SIGKILL');
    await waitFor(
      () =>
        `the servers gone (still running: ${started.filter(isRunning).join(', ')} of ${JSON.stringify(pids)})`,
      () => !started.some(isRunning),
      { timeoutMs: 10_000, everyMs: 50 },
    );
  });
});
