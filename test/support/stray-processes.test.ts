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
  it('leaves alone a process that has taken a kept pid since (its start time differs)', async () => {
    const running = spawn('sleep', ['60']);
    try {
      const strays = new StrayProcesses();
      strays.add(running.pid!);
      // The kept process ended and another took its pid: here, the same pid kept with another start.
      (strays as unknown as { kept: { started: string }[] }).kept[0]!.started = '1';
      strays.killAll();
      await new Promise((r) => setTimeout(r, 200));
      expect(pidAlive(running.pid!)).toBe(true);
    } finally {
      running.kill('SIGKILL');
    }
  });
});
