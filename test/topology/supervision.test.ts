/**
 * The launcher supervises what it starts and keeps the cluster's data (`npm run topology --
 * --no-vrrp`, src/topology/supervisor.ts, src/topology/local/context.ts):
 *
 * - The Redis master of a workspace is SIGKILLed while commands keep coming (one a 150 ms, each
 *   with an Idempotency-Key), and nobody acts: its replica is promoted, the launcher starts the
 *   dead node again once the slots have moved, it rejoins as a replica of the promoted node, and
 *   replicated writes (DURABILITY=replicated, the cluster default) succeed again. Meanwhile
 *   commands answer 503; a `not-replicated` one says the command was appended and may still
 *   apply, and a retry with the same key after the replica is back returns the command's real
 *   outcome. The time from the kill to the first 201 is reported.
 * - HAProxy is SIGKILLed: the launcher starts it again and the API answers through it.
 * - Ctrl-C, then the launcher again on the same data directory: the cluster comes back with its
 *   data (every agent and contact written before, the failover's included); Redis and HAProxy
 *   logs are in files under <data dir>/logs.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { globalKeys, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { sleep, waitFor } from '../support/wait.ts';

const execFileP = promisify(execFile);
const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;
const launcher = new URL('../../src/cli/launch.ts', import.meta.url).pathname;

const running: ChildProcess[] = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const c of running) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    c.kill('SIGINT');
    const done = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 30_000);
      c.once('exit', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    if (!done) c.kill('SIGKILL');
  }
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}, 60_000);

function startLauncher(dataDir: string) {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      launcher,
      '--no-vrrp',
      '--data-dir',
      dataDir,
      ...['--http-port', '0', '--tls-port', '0', '--stats-port', '0', '--redis-port', '0'],
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

async function banner(l: ReturnType<typeof startLauncher>): Promise<string> {
  await waitFor(
    'the banner or an exit',
    () => l.output().includes('Ctrl-C stops everything') || l.child.exitCode !== null,
    {
      timeoutMs: 90_000,
      everyMs: 200,
    },
  ).catch(() => undefined);
  expect(l.output(), l.output()).toContain('Ctrl-C stops everything');
  return l.output();
}

async function stopLauncher(l: ReturnType<typeof startLauncher>): Promise<void> {
  l.child.kill('SIGINT');
  expect(await l.exited, l.output().slice(-3000)).toBe(0);
}

/** Commands and answers of this test: HTTP through HAProxy with a bound. */
async function call(
  url: string,
  method: 'GET' | 'POST',
  body?: unknown,
  key?: string,
): Promise<{ status: number; body: Record<string, unknown>; replayed: boolean }> {
  try {
    const r = await fetch(url, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(key ? { 'idempotency-key': key } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(4000),
    });
    const text = await r.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      /* not JSON */
    }
    return { status: r.status, body: parsed, replayed: r.headers.get('idempotent-replayed') === 'true' };
  } catch (err) {
    return { status: 0, body: { error: (err as Error).message }, replayed: false };
  }
}

describe('the topology launcher supervises what it starts and keeps the data', () => {
  it('brings a killed Redis master back as a replica and a killed HAProxy back, unattended, and keeps every workspace across a restart', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-supervision-'));
    dirs.push(dataDir);
    const l = startLauncher(dataDir);
    const out = await banner(l);
    const api = /API through HAProxy\s+(http:\/\/\S+)/.exec(out)?.[1];
    expect(api, out).toBeDefined();
    const masters = [...out.matchAll(/master redis:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
    expect(masters, out).toHaveLength(3);
    const { admin } = JSON.parse(readFileSync(path.join(dataDir, 'redis-credentials.json'), 'utf8')) as {
      admin: { password: string };
    };
    const cli = async (port: number, ...args: string[]) =>
      (
        await execFileP('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
          timeout: 5000,
          env: { ...process.env, REDISCLI_AUTH: admin.password },
        })
      ).stdout;

    // The victim: a master holding none of the global keys the topology uses (the instance
    // registry, the dispatchers' leases, the workspace lists; the archivers' key is unused here),
    // and a workspace whose slot it holds.
    const slotsOf = async (port: number) =>
      (await cli(port, 'CLUSTER', 'NODES'))
        .split('\n')
        .find((line) => line.includes('myself'))!
        .trim()
        .split(' ')
        .slice(8)
        .map((r) => r.split('-').map(Number) as [number, number?]);
    const holds = (ranges: [number, number?][], slot: number) =>
      ranges.some(([from, to]) => slot >= from && slot <= (to ?? from));
    const { archivers: _unused, ...used } = globalKeys;
    const globalSlots = Object.values(used).map(keySlot);
    let victimPort = 0;
    for (const port of masters) {
      const ranges = await slotsOf(port);
      if (!globalSlots.some((s) => holds(ranges, s))) victimPort = port;
    }
    expect(victimPort).toBeGreaterThan(0);
    const victimSlots = await slotsOf(victimPort);
    let ws = '';
    for (let i = 0; i < 100_000 && !ws; i++) {
      if (holds(victimSlots, keySlot(workspaceKeys(`sup-${i}`).commands))) ws = `sup-${i}`;
    }
    const base = `${api}/v1/workspaces/${ws}`;
    expect(
      (await call(`${base}/agents`, 'POST', { id: 'kept-agent', skills: ['English'] }, 'agent-1')).status,
    ).toBe(201);

    // SIGKILL the master, commands keep coming; nobody restarts anything.
    const pid = Number(/process_id:(\d+)/.exec(await cli(victimPort, 'INFO', 'server'))?.[1]);
    expect(pid).toBeGreaterThan(0);
    const sent: { key: string; id: string; t: number; status: number; body: Record<string, unknown> }[] = [];
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    let firstOkMs: number | undefined;
    for (let i = 0; firstOkMs === undefined && Date.now() - killedAt < 40_000; i++) {
      const id = `c-${i}`;
      const t = Date.now();
      const r = await call(`${base}/contacts`, 'POST', { id, skills: ['English'] }, `contact-${i}`);
      sent.push({ key: `contact-${i}`, id, t, status: r.status, body: r.body });
      if (r.status === 201) firstOkMs = Date.now() - killedAt;
      else await sleep(150);
    }
    expect(firstOkMs, JSON.stringify(sent.map((s) => s.status))).toBeDefined();
    await waitFor(
      'the killed node back as a replica, its link up',
      async () =>
        /^slave/.test(await cli(victimPort, 'ROLE').catch(() => '')) &&
        /master_link_status:up/.test(await cli(victimPort, 'INFO', 'replication')),
      { timeoutMs: 20_000, everyMs: 100 },
    );
    const restartedMs = Date.now() - killedAt;
    expect(l.output()).toMatch(new RegExp(`redis-server 127\\.0\\.0\\.1:${victimPort} exited \\(SIGKILL\\)`));
    expect(l.output()).toMatch(
      new RegExp(`redis-server 127\\.0\\.0\\.1:${victimPort} restarted \\(restart 1\\)`),
    );

    // No replica confirms (the slot's replica, the node just restarted, frozen with SIGSTOP): 503
    // not-replicated, which says the command was appended and may still apply. Once the replica
    // answers again, the same request with the same key returns the command's real outcome.
    const replicaPid = Number(/process_id:(\d+)/.exec(await cli(victimPort, 'INFO', 'server'))?.[1]);
    process.kill(replicaPid, 'SIGSTOP');
    let unreplicated: Awaited<ReturnType<typeof call>>;
    try {
      unreplicated = await call(
        `${base}/contacts`,
        'POST',
        { id: 'unreplicated', skills: ['English'] },
        'unrepl',
      );
    } finally {
      process.kill(replicaPid, 'SIGCONT');
    }
    expect(unreplicated.status, JSON.stringify(unreplicated.body)).toBe(503);
    expect(unreplicated.body).toMatchObject({
      type: '/problems/not-replicated',
      applied: 'unknown',
      appended: true,
      commandId: expect.any(String),
      position: expect.stringMatching(/^\d+-\d+$/),
      detail: expect.stringMatching(/WAS appended.*may still be applied.*same Idempotency-Key/),
    });
    const outcome = await call(
      `${base}/contacts`,
      'POST',
      { id: 'unreplicated', skills: ['English'] },
      'unrepl',
    );
    expect(outcome.status, JSON.stringify(outcome.body)).toBe(201);
    expect(outcome.replayed).toBe(true);
    expect(outcome.body).toMatchObject({ id: 'unreplicated', state: expect.any(String) });
    sent.push({ key: 'unrepl', id: 'unreplicated', t: Date.now(), status: 201, body: outcome.body });

    // The 503s during the failover said what they were; a retry with the same key learns the real outcome.
    const notReplicated = sent.filter((s) => s.body.type === '/problems/not-replicated');
    for (const s of notReplicated) {
      expect(s.body).toMatchObject({ status: 503, applied: 'unknown', appended: true });
      expect(s.body.commandId).toEqual(expect.any(String));
      expect(s.body.position).toMatch(/^\d+-\d+$/);
      expect(s.body.detail).toMatch(/WAS appended.*same Idempotency-Key/);
    }
    for (const s of sent.filter((x) => x.status !== 201)) {
      const again = await call(`${base}/contacts`, 'POST', { id: s.id, skills: ['English'] }, s.key);
      expect(again.status, `${s.key}: ${JSON.stringify(again.body)}`).toBe(201);
      expect(again.body.id).toBe(s.id);
      if (s.body.type === '/problems/not-replicated') {
        expect(again.replayed, `${s.key} was appended once, before`).toBe(true);
        expect(again.body).not.toHaveProperty('applied');
      }
    }

    // HAProxy SIGKILLed: started again with its configuration, and serving.
    const info = await new Promise<string>((resolve, reject) => {
      const c = net.createConnection(path.join(dataDir, 'haproxy', 'haproxy.sock'));
      let text = '';
      c.on('connect', () => c.write('show info\n'));
      c.on('data', (b) => {
        text += b.toString();
      });
      c.on('close', () => resolve(text));
      c.on('error', reject);
    });
    const haproxyPid = Number(/^Pid: (\d+)/m.exec(info)?.[1]);
    expect(haproxyPid).toBeGreaterThan(0);
    const haproxyKilledAt = Date.now();
    process.kill(haproxyPid, 'SIGKILL');
    await waitFor('HAProxy restarted', () => /HAProxy restarted \(restart 1\)/.test(l.output()), {
      timeoutMs: 20_000,
      everyMs: 100,
    });
    await waitFor(
      'the API through HAProxy again',
      async () => (await call(`${api}/health`, 'GET')).status === 200,
      {
        timeoutMs: 20_000,
        everyMs: 100,
      },
    );
    const haproxyBackMs = Date.now() - haproxyKilledAt;

    const acknowledged = sent.map((s) => s.id);
    await stopLauncher(l);
    expect(l.output()).toMatch(
      new RegExp(`restarts during this run: .*redis-server 127\\.0\\.0\\.1:${victimPort} 1.*HAProxy 1`),
    );

    // The same data directory again: the cluster kept there, with every workspace's data.
    const again = startLauncher(dataDir);
    const out2 = await banner(again);
    expect(out2).toContain(`starting the Redis Cluster kept in ${path.join(dataDir, 'cluster')}`);
    const nodePorts = (text: string) =>
      [...text.matchAll(/(?:master|replica) redis:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])).sort();
    expect(nodePorts(out2)).toEqual(nodePorts(out));
    const api2 = /API through HAProxy\s+(http:\/\/\S+)/.exec(out2)?.[1];
    const base2 = `${api2}/v1/workspaces/${ws}`;
    expect((await call(`${base2}/agents/kept-agent`, 'GET')).status).toBe(200);
    for (const id of acknowledged)
      expect((await call(`${base2}/contacts/${id}`, 'GET')).status, id).toBe(200);
    expect(
      (await call(`${base2}/contacts`, 'POST', { id: 'after-restart', skills: ['English'] }, 'after')).status,
    ).toBe(201);
    await stopLauncher(again);

    // Logs kept in files: each Redis node's, HAProxy's, with the launcher's notes of restarts.
    const logs = path.join(dataDir, 'logs');
    const victimLog = readFileSync(path.join(logs, `redis-${victimPort}.log`), 'utf8');
    expect(victimLog).toMatch(/\[launcher\] redis-server 127\.0\.0\.1:\d+ restarted/);
    expect(victimLog).toMatch(/Ready to accept connections/);
    expect(readFileSync(path.join(logs, 'haproxy.log'), 'utf8')).toMatch(/\[launcher\] HAProxy restarted/);
    expect(existsSync(path.join(logs, 'api-1.log'))).toBe(true);

    console.log(
      JSON.stringify({
        test: 'topology-supervision',
        victimPort,
        killToFirstReplicated201Ms: firstOkMs,
        killToReplicaLinkUpMs: restartedMs,
        answersDuringFailover: sent
          .filter((s) => s.key !== 'unrepl')
          .reduce<Record<string, number>>((acc, s) => {
            const k = String(s.body.type ?? s.status);
            acc[k] = (acc[k] ?? 0) + 1;
            return acc;
          }, {}),
        haproxyKillToServingMs: haproxyBackMs,
      }),
    );
  }, 120_000);
});
