/**
 * The harness's stray processes: killed after a suite only while their pid is still the process
 * kept (a pid reused by another suite's process is left alone).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { pidAlive, StrayProcesses } from './processes.ts';

describe('StrayProcesses', () => {
  it('kills a kept process that still runs, and passes over one that ended', async () => {
    const running = spawn('sleep', ['60']);
    const ended = spawn('sleep', ['0']);
    const strays = new StrayProcesses();
    strays.add(running.pid!);
    strays.add(ended.pid!);
    await once(ended, 'exit');
    const killed = once(running, 'exit');
    expect(() => strays.killAll()).not.toThrow();
    expect(await killed).toEqual([null, 'SIGKILL']);
    expect(pidAlive(running.pid!)).toBe(false);
  });
});
