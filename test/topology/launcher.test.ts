import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const launcher = new URL('../../src/cli/launch.ts', import.meta.url).pathname;
const dirs: string[] = [];

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('the topology launcher', () => {
  it('starts the cluster, HAProxy and 7 Switchboard processes, serves through HAProxy, and stops everything on Ctrl-C', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-topology-'));
    dirs.push(dataDir);
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        launcher,
        '--data-dir',
        dataDir,
        '--http-port',
        '0',
        '--tls-port',
        '0',
        '--stats-port',
        '0',
        '--redis-port',
        '0',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 90_000;
    while (!out.includes('Ctrl-C stops everything') && Date.now() < deadline && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(out, out).toContain('Ctrl-C stops everything');
    const api = /API through HAProxy\s+(http:\/\/\S+)/.exec(out)?.[1];
    const stats = /HAProxy stats\s+(http:\/\/\S+)/.exec(out)?.[1];
    const instances = /API instances\s+(.+)/.exec(out)?.[1]?.trim().split(/\s+/) ?? [];
    const cluster = [...out.matchAll(/redis:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
    expect(api).toBeDefined();
    expect(instances).toHaveLength(3);

    // Round-robin: requests through HAProxy reach all three instances (each reports its pid).
    const pids = new Set<number>();
    for (let i = 0; i < 9; i++) {
      const s = (await (await fetch(`${api}/status`)).json()) as { pid: number; state: string };
      expect(s.state).toBe('running');
      pids.add(s.pid);
    }
    expect(pids.size).toBe(3);
    const created = await fetch(`${api}/v1/workspaces/default/agents`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'launcher-test', skills: ['English'] }),
    });
    expect(created.status).toBe(201);
    expect((await fetch(stats!)).status).toBe(200);

    child.kill('SIGINT');
    expect(await exited).toBe(0);
    const apiPort = Number(new URL(api!).port);
    for (const port of [apiPort, ...instances.map((u) => Number(new URL(u).port)), ...cluster]) {
      expect(await portOpen(port), `port ${port} still open`).toBe(false);
    }
  }, 120_000);
});
