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
import { endingWith } from '../../src/topology/child-processes.ts';
import { StrayProcesses } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';
import { isRunning } from './helpers.ts';

const FIXTURE = fileURLToPath(new URL('./starter-fixture.ts', import.meta.url));
const left = new StrayProcesses();
const dirs: string[] = [];
afterAll(async () => {
  left.killAll();
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
    for (const pid of started) left.add(pid);
    expect(started.every(isRunning)).toBe(true);

    starter.kill('SIGKILL');
    await waitFor(
      () =>
        `the servers gone (still running: ${started.filter(isRunning).join(', ')} of ${JSON.stringify(pids)})`,
      () => !started.some(isRunning),
      { timeoutMs: 10_000, everyMs: 50 },
    );
  });

  it('takes a server it started the instant before it was killed', async () => {
    // The signal is set by setpriv after the spawn: a starter killed in between is never signalled.
    // A shell starter makes that window wide: it forks the command and kills itself at once,
    // without waiting for the exec (Node's spawn waits for it, and a dying Node process takes long
    // enough to tear down that it is rarely hit there). Without the check of the starter that
    // follows the signal, every round left its server running.
    const starter = 'echo $$; read -r line; eval "$line" </dev/null >/dev/null 2>&1 & echo $!; kill -9 $$';
    const quote = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
    const startAndDie = async (round: number): Promise<number> => {
      const p = spawn('/bin/sh', ['-c', starter], { stdio: ['pipe', 'pipe', 'inherit'] });
      let text = '';
      const closed = new Promise((r) => p.once('close', r));
      p.stdout.on('data', (b: Buffer) => {
        text += b.toString();
        const [starterPid] = text.split('\n');
        if (text.includes('\n') && p.stdin.writable) {
          const argv = endingWith(Number(starterPid), ['sleep', '30']);
          p.stdin.end(`exec ${argv.map(quote).join(' ')}\n`);
        }
      });
      await closed;
      const pid = Number(text.split('\n')[1]);
      expect(pid, `round ${round}: the starter said ${JSON.stringify(text)}`).toBeGreaterThan(0);
      left.add(pid);
      return pid;
    };
    const pids: number[] = [];
    for (let round = 0; round < 10; round++) pids.push(await startAndDie(round));
    await waitFor(
      () => `the servers gone (still running: ${pids.filter(isRunning).join(', ')})`,
      () => !pids.some(isRunning),
      { timeoutMs: 5_000, everyMs: 50 },
    );
  });
});
