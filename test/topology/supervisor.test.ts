/**
 * The launcher's supervisor and log files (src/topology/supervisor.ts, src/topology/log-file.ts):
 * a process that exits is started again with a doubling back-off, each exit and restart said and
 * noted in its log; none after stop(); a log file past its cap is renamed `.1` and begun again.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stopChild } from '../../src/topology/child-processes.ts';
import { RotatingLog } from '../../src/topology/log-file.ts';
import { type SupervisedHandle, Supervisor } from '../../src/topology/supervisor.ts';
import { waitFor } from '../support/wait.ts';
import { tempDir } from './helpers.ts';

const dirs: { remove(): Promise<void> }[] = [];
afterAll(async () => {
  for (const d of dirs) await d.remove();
});

/** A child that lives `seconds` (a short-lived one plays a crashing server). */
function child(seconds: number): SupervisedHandle {
  const p = spawn('sleep', [String(seconds)], { stdio: 'ignore', detached: true });
  return { process: p, stop: async () => void (await stopChild(p, { graceMs: 1000 })) };
}

describe('the supervisor', () => {
  it('restarts a process that exits, with a doubling back-off, and stops restarting on stop()', async () => {
    const d = await tempDir('supervisor');
    dirs.push(d);
    const log = new RotatingLog(path.join(d.dir, 'x.log'));
    const said: { t: number; line: string }[] = [];
    const starts: number[] = [];
    const sup = new Supervisor(child(0), {
      name: 'sleeper',
      say: (line) => said.push({ t: Date.now(), line }),
      stopping: () => false,
      log,
      firstDelayMs: 100,
      restart: async () => {
        starts.push(Date.now());
        // The first two restarts crash again at once; the third stays up.
        return child(starts.length < 3 ? 0 : 30);
      },
    });
    await waitFor('three restarts', () => sup.restarts === 3, { timeoutMs: 5000, everyMs: 20 });
    const gaps = said.filter((s) => /restarting in/.test(s.line)).map((s) => s.line);
    expect(gaps).toEqual([
      'sleeper exited (0); restarting in 0.1 s (attempt 1)',
      'sleeper exited (0); restarting in 0.2 s (attempt 2)',
      'sleeper exited (0); restarting in 0.4 s (attempt 3)',
    ]);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(350);
    const current = sup.current.process;
    await sup.stop();
    expect(current.exitCode !== null || current.signalCode !== null).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(sup.restarts).toBe(3);
    expect(readFileSync(log.file, 'utf8')).toMatch(/\[launcher\] sleeper restarted \(restart 3\)/);
  });
});

describe('a rotating log file', () => {
  it('is renamed .1 past its cap and begun again', async () => {
    const d = await tempDir('log-file');
    dirs.push(d);
    const file = path.join(d.dir, 'redis-1.log');
    const log = new RotatingLog(file, 1000);
    for (let i = 0; i < 25; i++) log.write(`${'x'.repeat(99)}\n`);
    log.close();
    expect(existsSync(`${file}.1`)).toBe(true);
    expect(statSync(`${file}.1`).size).toBe(1000);
    expect(statSync(file).size).toBe(500);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});
