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
 * - Each Switchboard role is SIGKILLed under a small load (killEachRole below): an API instance,
 *   both projectors, both dispatchers; each is restarted and serves again, no request fails after
 *   its retries and the auditor finds nothing wrong. The time from each kill to the role serving
 *   again is reported.
 * - After each kill, the launcher's own GET /status (--status-port) counts the restart of that
 *   component (its new pid, running, the time of the restart), and <data dir>/status.json says
 *   the same; once the launcher stopped, status.json has every component stopped.
 * - Ctrl-C, then the launcher again on the same data directory: the cluster comes back with its
 *   data (every agent and contact written before, the failover's included, and every workspace's
 *   command and event streams entry for entry up to their last position before); Redis and
 *   HAProxy logs are in files under <data dir>/logs, each Redis node's beginning with the command
 *   line it was started with, which started by hand brings the node up on its port with its data.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { globalKeys, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { haproxyRuntime } from '../../src/topology/haproxy/runtime.ts';
import type { LauncherStatus } from '../../src/topology/status.ts';
import type { ComponentStatus } from '../../src/topology/supervisor.ts';
import { AREAS, auditWorkspace, LANGUAGES, LoadDriver, positionMs } from '../support/audit.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { type LauncherRun, launcherBanner, spawnLauncher, stopLaunchers } from './helpers.ts';

const execFileP = promisify(execFile);
const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

const running: ChildProcess[] = [];
const dirs: string[] = [];

afterAll(async () => {
  await stopLaunchers(running);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}, 60_000);

function startLauncher(dataDir: string, extra: readonly string[] = []) {
  const l = spawnLauncher(
    [
      '--no-vrrp',
      ...['--data-dir', dataDir],
      ...['--http-port', '0', '--tls-port', '0', '--stats-port', '0', '--redis-port', '0'],
      ...['--status-port', '0'],
      // A killed HAProxy is started again after the shortest delay the launcher takes (default 1 s).
      ...['--haproxy-restart-delay', '100'],
      ...extra,
    ],
    { env: { AUTH: 'off' } },
  );
  running.push(l.child);
  return l;
}

const banner = (l: LauncherRun) => launcherBanner(l);

async function stopLauncher(l: ReturnType<typeof startLauncher>): Promise<void> {
  l.child.kill('SIGINT');
  expect(await l.exited, l.output().slice(-3000)).toBe(0);
}

/** Wall time of the checks of the launcher's /status, the streams and the by-hand start (reported). */
const checksMs = { status: 0, streams: 0, byHand: 0 };

/** The launcher's GET /status (its URL is in the banner), by component name. */
async function launcherStatus(statusUrl: string): Promise<Map<string, ComponentStatus>> {
  const r = await fetch(statusUrl, { signal: AbortSignal.timeout(4000) });
  expect(r.status).toBe(200);
  const body = (await r.json()) as LauncherStatus;
  return new Map(body.components.map((c) => [c.name, c]));
}

/**
 * The launcher's count of `name`'s restarts says one more since `since` (ms), the process running
 * with a new pid (`pid` if given), the restart timed after `since`.
 */
async function expectRestartCounted(
  statusUrl: string,
  name: string,
  restarts: number,
  since: number,
  pid?: number,
): Promise<ComponentStatus> {
  const t = Date.now();
  const c = await waitFor(
    `${name} running again in the launcher's /status`,
    async () => {
      const now = (await launcherStatus(statusUrl)).get(name);
      return now?.state === 'running' && now.restarts === restarts ? now : undefined;
    },
    { timeoutMs: 10_000, everyMs: 50 },
  );
  expect(c, name).toMatchObject({ restarts, state: 'running', lastExit: 'SIGKILL' });
  if (pid !== undefined) expect(c.pid, name).toBe(pid);
  expect(Date.parse(c.lastRestartAt ?? ''), name).toBeGreaterThanOrEqual(since - 5);
  expect(Date.parse(c.lastExitAt ?? ''), name).toBeGreaterThanOrEqual(since - 5);
  checksMs.status += Date.now() - t;
  return c;
}

/**
 * Every workspace's command and event streams: their length, last position, and a digest of every
 * entry up to it. After a restart `upTo` reads the same streams only up to those positions (a
 * restarted worker may append more).
 */
async function streamsOf(
  redis: RedisClient,
  upTo?: Record<string, { length: number; last: string }>,
): Promise<Record<string, { length: number; last: string; digest: string }>> {
  const t = Date.now();
  const out: Record<string, { length: number; last: string; digest: string }> = {};
  const workspaces = (await redis.smembers(globalKeys.workspaces)).sort();
  for (const ws of upTo ? new Set(Object.keys(upTo).map((k) => k.split(' ')[0]!)) : workspaces) {
    const k = workspaceKeys(ws);
    for (const [name, key] of [
      ['commands', k.commands],
      ['events', k.events],
    ] as const) {
      const id = `${ws} ${name}`;
      if (upTo && !upTo[id]) continue;
      const entries = (await redis.xrange(key, '-', upTo?.[id]?.last ?? '+')) as [string, string[]][];
      out[id] = {
        length: entries.length,
        last: entries.at(-1)?.[0] ?? '0-0',
        digest: createHash('sha256').update(JSON.stringify(entries)).digest('hex'),
      };
    }
  }
  checksMs.streams += Date.now() - t;
  return out;
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
    const statusUrl = /Launcher status\s+(http:\/\/127\.0\.0\.1:\d+\/status)/.exec(out)?.[1];
    expect(statusUrl, out).toBeDefined();
    expect(out).toContain(`also ${path.join(dataDir, 'status.json')}`);
    // Every supervised process, running, none restarted yet.
    const atStart = await launcherStatus(statusUrl!);
    expect([...atStart.keys()].filter((n) => /^(api|projector|dispatcher)-\d$/.test(n))).toEqual([
      'api-1',
      'api-2',
      'api-3',
      'projector-1',
      'projector-2',
      'dispatcher-1',
      'dispatcher-2',
    ]);
    expect([...atStart.keys()].filter((n) => n.startsWith('redis-server '))).toHaveLength(6);
    expect(atStart.get('HAProxy')).toMatchObject({ kind: 'haproxy', state: 'running', restarts: 0 });
    for (const c of atStart.values()) {
      expect(c, c.name).toMatchObject({ state: 'running', restarts: 0, lastRestartAt: null });
      expect(c.pid, c.name).toBeGreaterThan(0);
    }
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
    // Counted in the launcher's /status, with the pid of the node now running.
    const restartedPid = Number(/process_id:(\d+)/.exec(await cli(victimPort, 'INFO', 'server'))?.[1]);
    await expectRestartCounted(statusUrl!, `redis-server 127.0.0.1:${victimPort}`, 1, killedAt, restartedPid);

    // Every API instance writes to the workspace again before the replica is frozen (HAProxy
    // sends each request to the next of the three): an instance that has sent nothing to the slot
    // since the failover still maps it to the killed node, now the replica about to be frozen, and
    // would time out there (503 redis-unavailable) instead of reaching the master.
    let inARow = 0;
    for (let i = 0; inARow < 6 && i < 40; i++) {
      const id = `c-after-${i}`;
      const r = await call(`${base}/contacts`, 'POST', { id, skills: ['English'] }, `contact-after-${i}`);
      sent.push({ key: `contact-after-${i}`, id, t: Date.now(), status: r.status, body: r.body });
      inARow = r.status === 201 ? inARow + 1 : 0;
    }
    expect(inARow, JSON.stringify(sent.map((s) => s.status))).toBe(6);

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
    const haproxyStatus = await expectRestartCounted(statusUrl!, 'HAProxy', 1, haproxyKilledAt);
    expect(haproxyStatus.pid).not.toBe(haproxyPid);

    // Each Switchboard role SIGKILLed under a small load: restarted, serving again, audited, and
    // each restart counted in /status.
    const roles = await killEachRole(l, out, dataDir, api!, statusUrl!);

    // Every workspace's streams as they are before the restart, and the counts the launcher gives.
    const { app } = JSON.parse(readFileSync(path.join(dataDir, 'redis-credentials.json'), 'utf8')) as {
      app: { user: string; password: string };
    };
    const nodeList = (text: string) =>
      [...text.matchAll(/(?:master|replica) redis:\/\/(127\.0\.0\.1:\d+)/g)].map((m) => m[1]!);
    const before = connectRedis({ clusterNodes: nodeList(out), username: app.user, password: app.password });
    const streamsBefore = await streamsOf(before).finally(() => before.disconnect());
    expect(Object.keys(streamsBefore)).toEqual(expect.arrayContaining([`${ws} commands`, `${ws} events`]));
    expect(Object.keys(streamsBefore).length).toBeGreaterThanOrEqual(4); // ws and the roles' workspace
    // The archiver trims what it moved to disk, so a stream may hold few entries; together they hold some.
    expect(Object.values(streamsBefore).reduce((n, s) => n + s.length, 0)).toBeGreaterThan(0);
    const counted = await launcherStatus(statusUrl!);

    const acknowledged = sent.map((s) => s.id);
    await stopLauncher(l);
    // status.json after the stop: every component stopped, with the counts /status gave.
    const final = JSON.parse(readFileSync(path.join(dataDir, 'status.json'), 'utf8')) as LauncherStatus;
    expect(final.launcher.pid).toBe(l.child.pid);
    expect(final.components.map((c) => [c.name, c.restarts])).toEqual(
      [...counted.values()].map((c) => [c.name, c.restarts]),
    );
    for (const c of final.components) expect(c, c.name).toMatchObject({ state: 'stopped', pid: null });
    expect(l.output()).toMatch(
      new RegExp(
        `restarts during this run: api-1 1, projector-1 1, projector-2 1, dispatcher-1 1, dispatcher-2 1, .*redis-server 127\\.0\\.0\\.1:${victimPort} 1.*HAProxy 1`,
      ),
    );

    // The same data directory again: the cluster kept there, with every workspace's data (one
    // Switchboard process of each role serves it: the data is what is checked here).
    const again = startLauncher(dataDir, ['--api', '1', '--projectors', '1', '--dispatchers', '1']);
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
    // Every workspace's command and event streams, entry for entry, up to their last position before.
    const after = connectRedis({ clusterNodes: nodeList(out2), username: app.user, password: app.password });
    const streamsAfter = await streamsOf(after, streamsBefore).finally(() => after.disconnect());
    expect(streamsAfter).toEqual(streamsBefore);
    expect(
      (await call(`${base2}/contacts`, 'POST', { id: 'after-restart', skills: ['English'] }, 'after')).status,
    ).toBe(201);
    await stopLauncher(again);

    // Logs kept in files: each Redis node's, HAProxy's, with the launcher's notes of restarts.
    const logs = path.join(dataDir, 'logs');
    const victimLog = readFileSync(path.join(logs, `redis-${victimPort}.log`), 'utf8');
    expect(victimLog).toMatch(/\[launcher\] redis-server 127\.0\.0\.1:\d+ restarted/);
    expect(victimLog).toMatch(/Ready to accept connections/);
    // Each start of the node (first launch, its restart, second launch) begins with its command
    // line, the first line of the file; the same each time.
    const commandLines = victimLog
      .split('\n')
      .flatMap((line) => /^\S+ \[launcher\] command line: (.*)$/.exec(line)?.[1] ?? []);
    expect(victimLog.split('\n')[0]).toMatch(/^\S+ \[launcher\] command line: redis-server /);
    expect(commandLines).toHaveLength(3);
    expect(new Set(commandLines).size).toBe(1);
    const commandLine = commandLines[0]!;
    expect(commandLine).toContain(`--port ${victimPort} `);
    expect(commandLine).not.toContain(admin.password);
    // Started by hand as logged, the node comes up on its port with its directory and ACL users.
    const byHandAt = Date.now();
    const byHand = spawn('bash', ['-c', `exec ${commandLine}`], { stdio: 'ignore' });
    try {
      await waitFor(
        'the node started by hand',
        async () => /PONG/.test(await cli(victimPort, 'PING').catch(() => '')),
        {
          timeoutMs: 15_000,
          everyMs: 100,
        },
      );
      expect(await cli(victimPort, 'CONFIG', 'GET', 'dir')).toContain(path.join(dataDir, 'cluster', 'node-'));
      expect(await cli(victimPort, 'CLUSTER', 'MYID')).toMatch(/^[0-9a-f]{40}/);
    } finally {
      byHand.kill('SIGTERM');
      await new Promise((r) => (byHand.exitCode !== null ? r(null) : byHand.once('exit', r)));
    }
    checksMs.byHand = Date.now() - byHandAt;
    expect(readFileSync(path.join(logs, 'haproxy.log'), 'utf8')).toMatch(/\[launcher\] HAProxy restarted/);
    expect(existsSync(path.join(logs, 'api-1.log'))).toBe(true);

    console.log(
      JSON.stringify({
        test: 'topology-supervision',
        victimPort,
        killToFirstReplicated201Ms: firstOkMs,
        killToReplicaLinkUpMs: restartedMs,
        answersDuringFailover: sent
          .filter((s) => s.key !== 'unrepl' && !s.key.startsWith('contact-after-'))
          .reduce<Record<string, number>>((acc, s) => {
            const k = String(s.body.type ?? s.status);
            acc[k] = (acc[k] ?? 0) + 1;
            return acc;
          }, {}),
        answersOnceReplicaBack: sent.filter((s) => s.key.startsWith('contact-after-')).map((s) => s.status),
        haproxyKillToServingMs: haproxyBackMs,
        ...roles,
        addedChecksMs: checksMs,
      }),
    );
  }, 120_000);
});

/**
 * The pids of the launcher's Switchboard processes of `role` (its children whose environment says
 * ROLES=<role>): the launcher spawns each member directly, so its children are the members.
 */
function memberPids(launcherPid: number, role: 'api' | 'projector' | 'dispatcher'): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== launcherPid) continue;
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (env.includes(`ROLES=${role}`)) pids.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids.sort((a, b) => a - b);
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * One process of each Switchboard role SIGKILLed while a small load runs through HAProxy
 * (a contact every 100 ms, agents cycling, every command with an Idempotency-Key and retried with
 * the same key; the AssignmentMade feed resuming with `after=`): an API instance, then both
 * projectors, then both dispatchers (one of two would change nothing a client sees: the other
 * takes over; with both gone only the processes the launcher restarts can serve the role). For
 * each: the launcher says it exited and restarts it, and the role serves again: the API, through
 * HAProxy, from the restarted instance; commands applied (201, not 202) by the restarted
 * projectors; contacts assigned by a restarted dispatcher (which holds the workspace's lease).
 * No request fails after its retries, the feed has no gap and no duplicate, and the auditor
 * finds nothing wrong. Returns the times measured, from each kill.
 */
async function killEachRole(
  l: ReturnType<typeof startLauncher>,
  banner: string,
  dataDir: string,
  api: string,
  statusUrl: string,
): Promise<Record<string, unknown>> {
  const partStarted = Date.now();
  const launcherPid = l.child.pid!;
  const { app } = JSON.parse(readFileSync(path.join(dataDir, 'redis-credentials.json'), 'utf8')) as {
    app: { user: string; password: string };
  };
  const nodes = [...banner.matchAll(/(?:master|replica) redis:\/\/(127\.0\.0\.1:\d+)/g)].map((m) => m[1]!);
  const redis = connectRedis({ clusterNodes: nodes, username: app.user, password: app.password });
  const runtime = haproxyRuntime(path.join(dataDir, 'haproxy', 'haproxy.sock'));
  const instances = /API instances\s+(.+)/.exec(banner)?.[1]?.trim().split(/\s+/) ?? [];
  expect(instances, banner).toHaveLength(3);
  const statusOf = async (url: string) => {
    const r = await call(`${url}/status`, 'GET');
    return r.status === 200 ? Number(r.body.pid) : undefined;
  };
  const backendUp = async () =>
    (await runtime.listServers('api').catch(() => []))
      .filter((s) => s.name.startsWith('sb_') && s.status === 'UP')
      .map((s) => s.port);
  // The restarted HAProxy has its three API servers again before anything else is killed.
  await waitFor('3 API servers UP in HAProxy', async () => (await backendUp()).length === 3, {
    timeoutMs: 15_000,
    everyMs: 100,
  });

  try {
    const ws = `roles-${randomUUID().slice(0, 8)}`;
    const k = workspaceKeys(ws);
    const load = new LoadDriver({
      apiUrls: [api],
      ws,
      contacts: 0,
      agents: 12,
      ratePerS: 10,
      deadlineMs: 0,
      maxAttempts: 30,
      retryBudgetMs: 30_000,
      requestTimeoutMs: 4000,
      maxBackoffMs: 500,
    });
    await load.prepare();

    // The load: a contact every 100 ms (bounded: 400), answers noted with when each was first sent.
    const contacts: { id: string; sentAt: number; answeredAt?: number; status?: number }[] = [];
    let loading = true;
    const inFlight = new Set<Promise<void>>();
    const loadLoop = (async () => {
      for (let i = 0; loading && i < 400; i++) {
        const id = `contact-${String(i).padStart(4, '0')}`;
        const c: (typeof contacts)[0] = { id, sentAt: Date.now() };
        contacts.push(c);
        const p = load.client
          .command('/contacts', { id, skills: [LANGUAGES[i % 2]!, AREAS[i % 3]!] }, `queue-${id}`, i)
          .then((r) => {
            c.answeredAt = Date.now();
            c.status = r?.status ?? 0;
            if (r && (r.status === 201 || r.status === 200 || r.status === 202))
              load.acknowledged.set(id, r.status);
            else load.unanswered.push(id);
          });
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        await sleep(100);
      }
    })();
    await sleep(500);

    // An API instance: through HAProxy, answers come from the restarted instance (a new pid on the
    // same port, back in the backend).
    const victimUrl = instances[0]!;
    const victimPort = Number(new URL(victimUrl).port);
    const apiPid = await statusOf(victimUrl);
    expect(memberPids(launcherPid, 'api')).toContain(apiPid);
    const apiKilledAt = Date.now();
    process.kill(apiPid!, 'SIGKILL');
    const newApiPid = await waitFor(
      'the API instance restarted on its port',
      async () => {
        const pid = await statusOf(victimUrl);
        return pid !== undefined && pid !== apiPid ? pid : undefined;
      },
      { timeoutMs: 20_000, everyMs: 100 },
    );
    await waitFor(
      'an answer through HAProxy from the restarted API instance',
      async () => (await statusOf(api)) === newApiPid,
      { timeoutMs: 20_000, everyMs: 50 },
    );
    const apiServingMs = Date.now() - apiKilledAt;
    // In HAProxy's backend and passing its check (a server added back starts unchecked).
    await waitFor(
      'the restarted API instance UP in HAProxy',
      async () => (await backendUp()).includes(victimPort),
      {
        timeoutMs: 10_000,
        everyMs: 100,
      },
    );
    expect(l.output()).toMatch(/api-1 exited \(SIGKILL\); restarting in [\d.]+ s \(attempt 1\)/);
    expect(memberPids(launcherPid, 'api')).toContain(newApiPid);
    await expectRestartCounted(statusUrl, 'api-1', 1, apiKilledAt, newApiPid);

    // Both projectors: nothing applies commands until the launcher's restarts do (202 meanwhile,
    // retried with the same key). Timed to the checkpoint moving on, and to the first command sent
    // after the kill that is answered applied (201).
    const projectorPids = memberPids(launcherPid, 'projector');
    expect(projectorPids).toHaveLength(2);
    await sleep(500);
    const projectorsKilledAt = Date.now();
    for (const pid of projectorPids) process.kill(pid, 'SIGKILL');
    await waitFor('the projectors dead', () => !projectorPids.some(isAlive), {
      timeoutMs: 5000,
      everyMs: 20,
    });
    // Read once they are gone (a step they sent just before may still have run): from here on,
    // only a restarted projector moves the checkpoint or applies a command appended now.
    const projectorsDeadAt = Date.now();
    const appliedBefore = await redis.hget(k.meta, 'applied');
    const appliedAt = await waitFor(
      'a command applied after the projectors were killed',
      async () => ((await redis.hget(k.meta, 'applied')) !== appliedBefore ? Date.now() : undefined),
      { timeoutMs: 20_000, everyMs: 50 },
    );
    const firstApplied = await waitFor(
      'a command sent after the kill answered applied',
      async () => contacts.find((c) => c.sentAt > projectorsDeadAt && (c.status === 201 || c.status === 200)),
      { timeoutMs: 20_000, everyMs: 50 },
    );
    const projectorCheckpointMs = appliedAt - projectorsKilledAt;
    const projectorFirst201Ms = firstApplied.answeredAt! - projectorsKilledAt;
    for (const n of [1, 2])
      expect(l.output()).toMatch(
        new RegExp(`projector-${n} exited \\(SIGKILL\\); restarting in [\\d.]+ s \\(attempt 1\\)`),
      );
    const newProjectors = await waitFor(
      'both projectors restarted',
      () => {
        const pids = memberPids(launcherPid, 'projector');
        return pids.length === 2 && !pids.some((p) => projectorPids.includes(p)) ? pids : undefined;
      },
      { timeoutMs: 20_000, everyMs: 100 },
    );
    expect(newProjectors).toHaveLength(2);
    const projectorsCounted = await Promise.all(
      [1, 2].map((n) => expectRestartCounted(statusUrl, `projector-${n}`, 1, projectorsKilledAt)),
    );
    expect(projectorsCounted.map((c) => c.pid).sort((a, b) => a! - b!)).toEqual(newProjectors);

    // Both dispatchers: no contact is assigned until a restarted one takes the workspace's lease
    // (the killed holder's expires first). Timed to the first assignment after the kill, as the
    // feed delivers it.
    const dispatcherPids = memberPids(launcherPid, 'dispatcher');
    expect(dispatcherPids).toHaveLength(2);
    await sleep(500);
    const dispatchersKilledAt = Date.now();
    for (const pid of dispatcherPids) process.kill(pid, 'SIGKILL');
    await waitFor('the dispatchers dead', () => !dispatcherPids.some(isAlive), {
      timeoutMs: 5000,
      everyMs: 20,
    });
    // Made once they are gone (one they sent just before may still have run): a restarted one's.
    const dispatchersDeadAt = Date.now();
    const seenBefore = load.follower.seen.length;
    await waitFor(
      'an assignment made after the dispatchers were killed',
      () => load.follower.seen.slice(seenBefore).some((e) => positionMs(e.position) > dispatchersDeadAt),
      { timeoutMs: 20_000, everyMs: 20 },
    );
    const dispatcherAssignMs = Date.now() - dispatchersKilledAt;
    const firstAssignment = load.follower.seen.find((e) => positionMs(e.position) > dispatchersDeadAt)!;
    const dispatcherPositionMs = positionMs(firstAssignment.position) - dispatchersKilledAt;
    for (const n of [1, 2])
      expect(l.output()).toMatch(
        new RegExp(`dispatcher-${n} exited \\(SIGKILL\\); restarting in [\\d.]+ s \\(attempt 1\\)`),
      );
    const newDispatchers = memberPids(launcherPid, 'dispatcher');
    const leaseHolder = String(await redis.get(k.lease));
    expect(
      newDispatchers.some((pid) => leaseHolder.includes(`-${pid}-`)),
      `lease holder ${leaseHolder}, dispatchers ${newDispatchers}`,
    ).toBe(true);
    expect(newDispatchers.some((p) => dispatcherPids.includes(p))).toBe(false);
    const dispatchersCounted = await Promise.all(
      [1, 2].map((n) => expectRestartCounted(statusUrl, `dispatcher-${n}`, 1, dispatchersKilledAt)),
    );
    expect(dispatchersCounted.map((c) => c.pid).sort((a, b) => a! - b!)).toEqual(newDispatchers);

    // A little more load on the restarted processes, then quiet, then the audit.
    await sleep(500);
    loading = false;
    await loadLoop;
    await Promise.all(inFlight);
    await load.quiesce(redis, 20_000);
    load.stop();
    const report = await auditWorkspace(redis, ws, load.acknowledged.keys());
    expect(load.client.failures, 'requests that failed or were refused').toEqual([]);
    expect(load.client.failed).toBe(0);
    expect(load.unanswered).toEqual([]);
    expect(load.acknowledged.size).toBe(contacts.length);
    expect(load.follower.duplicates, 'duplicates on the live feed').toBe(0);
    expect(
      load.follower.seen.map((e) => e.position),
      'the feed: no gap',
    ).toEqual(report.assignmentPositions);
    expect(report.unassigned).toBe(0);
    return {
      apiKillToServingThroughHaproxyMs: apiServingMs,
      projectorsKillToCheckpointMovedMs: projectorCheckpointMs,
      projectorsKillToFirst201Ms: projectorFirst201Ms,
      dispatchersKillToFirstAssignmentSeenMs: dispatcherAssignMs,
      dispatchersKillToFirstAssignmentPositionMs: dispatcherPositionMs,
      rolesPartMs: Date.now() - partStarted,
      rolesLoad: {
        contacts: contacts.length,
        statuses: load.client.statuses,
        retries: load.client.retries,
        accepted202: load.client.accepted202,
        wsReconnects: load.follower.reconnects,
        assignments: report.assignments,
        commands: report.commands,
      },
    };
  } finally {
    redis.disconnect();
  }
}
