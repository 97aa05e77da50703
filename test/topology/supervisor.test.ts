/**
 * The launcher's supervisor and log files (src/topology/supervisor.ts, src/topology/log-file.ts):
 * a process that exits is started again with a doubling back-off, each exit and restart said and
 * noted in its log; none after stop(); the back-off starts over after a process ran long enough,
 * not after a restart that failed; its state (pid, running/restarting/stopped, restarts) is what
 * the launcher's /status serves and writes to status.json; a log file past its cap is renamed
 * `.1` and begun again.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { onSpawnError, stopChild } from '../../src/topology/child-processes.ts';
import { RotatingLog } from '../../src/topology/log-file.ts';
import { DEFAULT_STATUS_PORT, serveStatus, statusFile, trackStatus } from '../../src/topology/status.ts';
import {
  type ComponentStatus,
  onSupervisorChange,
  type SupervisedHandle,
  Supervisor,
} from '../../src/topology/supervisor.ts';
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
      kind: 'redis',
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

describe('a process that could not be spawned', () => {
  it('is taken for one that exited, said as such, and started again (a launcher member, keepalived)', async () => {
    const said: string[] = [];
    let tries = 0;
    /** What spawnMember does when the spawn itself fails (ENOENT here; EAGAIN on a full machine). */
    const unspawnable = (): SupervisedHandle => {
      const p = spawn('/nonexistent/switchboard-member', [], { stdio: 'ignore' });
      onSpawnError(p, () => undefined);
      return { process: p, stop: async () => void (await stopChild(p, { graceMs: 1000 })) };
    };
    const sup = new Supervisor(unspawnable(), {
      name: 'api-1',
      kind: 'switchboard',
      say: (line) => said.push(line),
      stopping: () => false,
      firstDelayMs: 100,
      restart: async () => (++tries < 2 ? unspawnable() : child(30)),
    });
    try {
      await waitFor('running after two restarts', () => sup.restarts === 2 && sup.status().pid !== null, {
        timeoutMs: 5000,
        everyMs: 20,
      });
      expect(said.filter((l) => /restarting in/.test(l))).toEqual([
        'api-1 exited (could not be started: ENOENT); restarting in 0.1 s (attempt 1)',
        'api-1 exited (could not be started: ENOENT); restarting in 0.2 s (attempt 2)',
      ]);
      expect(sup.status()).toMatchObject({ state: 'running', lastExit: 'could not be started: ENOENT' });
    } finally {
      await sup.stop();
    }
  });
});

describe('the supervisor back-off and status', () => {
  it('starts the back-off over after a process ran past resetAfterMs (not after a failed start), and reports each state', async () => {
    const d = await tempDir('supervisor-reset');
    dirs.push(d);
    const said: string[] = [];
    const seen: ComponentStatus[] = [];
    // Ran 1.3 s (past 1 s): attempt 1; the restart fails: attempt 2 (no reset); crashes at once
    // (well within 1 s, even on a loaded machine): attempt 3; runs 1.3 s again: attempt 1; then
    // stays up.
    const plan: (number | 'fail')[] = ['fail', 0, 1.3, 30];
    let attempts = 0;
    const current = trackStatus({ pid: process.pid, mode: 'single', startedAt: 'now', dataDir: d.dir });
    const served = await serveStatus(current, 0);
    const sup = new Supervisor(child(1.3), {
      name: 'reset-sleeper',
      kind: 'switchboard',
      say: (line) => said.push(line),
      stopping: () => false,
      firstDelayMs: 50,
      resetAfterMs: 1000,
      restart: async () => {
        const next = plan[attempts++];
        if (next === 'fail' || next === undefined) throw new Error('boom');
        return child(next);
      },
    });
    const off = onSupervisorChange(() => {
      const s = sup.status();
      if (s.name === 'reset-sleeper') seen.push(s);
    });
    try {
      await waitFor('three restarts up', () => sup.restarts === 3, { timeoutMs: 8000, everyMs: 20 });
      expect(said.filter((l) => /restarting in/.test(l))).toEqual([
        'reset-sleeper exited (0); restarting in 0.1 s (attempt 1)',
        'reset-sleeper did not start (boom); restarting in 0.1 s (attempt 2)',
        'reset-sleeper exited (0); restarting in 0.2 s (attempt 3)',
        'reset-sleeper exited (0); restarting in 0.1 s (attempt 1)',
      ]);
      const restarting = seen.filter((s) => s.state === 'restarting');
      expect(restarting.length).toBeGreaterThanOrEqual(3);
      expect(restarting.every((s) => s.pid === null && s.lastExit === '0')).toBe(true);
      const now = sup.status();
      expect(now).toMatchObject({
        name: 'reset-sleeper',
        kind: 'switchboard',
        state: 'running',
        pid: sup.current.process.pid,
        restarts: 3,
        lastExit: '0',
      });
      expect(Date.now() - Date.parse(now.lastRestartAt ?? '')).toBeLessThan(5000);
      // Served over HTTP and written to status.json, the same.
      const r = await fetch(`http://127.0.0.1:${served.port}/status`);
      expect(r.status).toBe(200);
      const body = (await r.json()) as { launcher: { pid: number }; components: ComponentStatus[] };
      expect(body.launcher.pid).toBe(process.pid);
      expect(body.components.find((c) => c.name === 'reset-sleeper')).toEqual(now);
      const file = JSON.parse(readFileSync(statusFile(d.dir), 'utf8')) as { components: ComponentStatus[] };
      expect(file.components.find((c) => c.name === 'reset-sleeper')).toEqual(now);
      await sup.stop();
      expect(sup.status()).toMatchObject({ state: 'stopped', pid: null, restarts: 3 });
      const after = JSON.parse(readFileSync(statusFile(d.dir), 'utf8')) as { components: ComponentStatus[] };
      expect(after.components.find((c) => c.name === 'reset-sleeper')?.state).toBe('stopped');
    } finally {
      off();
      await sup.stop();
      await served.close();
    }
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

describe('a first delay longer than the longest', () => {
  it('is kept, not cut to the longest (a --haproxy-restart-delay of 45 s waits 45 s, not 30)', async () => {
    const said: string[] = [];
    const starts: number[] = [];
    const exitedAt: number[] = [];
    const first = child(0);
    first.process.once('exit', () => exitedAt.push(Date.now()));
    const sup = new Supervisor(first, {
      name: 'slow-restart',
      kind: 'haproxy',
      say: (line) => said.push(line),
      stopping: () => false,
      firstDelayMs: 600,
      maxDelayMs: 200,
      restart: async () => {
        starts.push(Date.now());
        return child(30);
      },
    });
    await waitFor('the restart', () => sup.restarts === 1, { timeoutMs: 5000, everyMs: 20 });
    expect(said[0]).toBe('slow-restart exited (0); restarting in 0.6 s (attempt 1)');
    expect(starts[0]! - exitedAt[0]!).toBeGreaterThanOrEqual(550);
    await sup.stop();
  });
});

describe("the launcher's /status port", () => {
  it('passes over the ports given for what the launcher starts after it, in its scan from 8099', async () => {
    // 8099 held here (or by someone else): the scan goes on to 8100, which the launcher was given
    // for HAProxy's HTTP frontend; the status server must leave it for HAProxy.
    const holder = http.createServer();
    await new Promise<void>((resolve) => {
      holder.once('error', () => resolve());
      holder.listen({ host: '127.0.0.1', port: DEFAULT_STATUS_PORT, exclusive: true }, () => resolve());
    });
    const served = await serveStatus(() => undefined, undefined, [DEFAULT_STATUS_PORT + 1]);
    try {
      expect(served.port).toBeGreaterThan(DEFAULT_STATUS_PORT + 1);
      expect(served.port).toBeLessThanOrEqual(DEFAULT_STATUS_PORT + 20);
    } finally {
      await served.close();
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });
});

describe("the launcher's /status errors", () => {
  it('answers problem+json with a documented type: 404 off its route, 503 before anything started; HEAD as GET', async () => {
    let status: ReturnType<ReturnType<typeof trackStatus>> | undefined;
    const served = await serveStatus(() => status, 0);
    const base = `http://127.0.0.1:${served.port}`;
    try {
      const starting = await fetch(`${base}/status`);
      expect(starting.status).toBe(503);
      expect(starting.headers.get('content-type')).toBe('application/problem+json');
      expect(starting.headers.get('retry-after')).toBe('1');
      expect(await starting.json()).toMatchObject({ type: '/problems/starting', status: 503 });
      for (const [method, url] of [
        ['GET', '/nothing'],
        ['POST', '/status'],
        ['DELETE', '/'],
      ] as const) {
        const r = await fetch(`${base}${url}`, { method });
        expect(r.status, `${method} ${url}`).toBe(404);
        expect(r.headers.get('content-type'), `${method} ${url}`).toBe('application/problem+json');
        const body = (await r.json()) as { type: string; detail: string };
        expect(body.type).toBe('/problems/no-route');
        expect(body.detail).toContain('GET /status');
      }
      const d = await tempDir('status-errors');
      dirs.push(d);
      status = trackStatus({ pid: process.pid, mode: 'single', startedAt: 'now', dataDir: d.dir })();
      const head = await fetch(`${base}/status`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-type')).toBe('application/json');
    } finally {
      await served.close();
    }
  });
});
