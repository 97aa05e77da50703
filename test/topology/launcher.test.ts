/**
 * The topology launcher (src/cli/launch.ts), both shapes:
 *
 * - `--no-vrrp`: one HAProxy on loopback in front of the cluster and the 7 Switchboard processes.
 *   Ctrl-C during start-up (SIGINT to the launcher's process group, as a terminal sends it), while
 *   the cluster is being made and once the Switchboard processes run: the launcher exits 0 and
 *   nothing it started is left running.
 * - `--vrrp`: the HAProxy pair with keepalived in network namespaces the launcher creates, reached
 *   from the host through the forwarded 127.0.0.1 port (forwarder -> VIP -> HAProxy holding it).
 *   The MASTER's HAProxy is SIGKILLed under load: a LoadDriver (test/support/audit.ts) queues
 *   contacts on a fresh workspace while agents cycle, every command with an Idempotency-Key and
 *   retried with the same key, its AssignmentMade WebSocket resuming with `after=`, all through
 *   the forwarded port; a GET /health every 100 ms times the failover. Requests through the same
 *   port must succeed again once the VIP has moved to the BACKUP, no request may fail after its
 *   retries, and the event-log audit (nothing lost, nothing doubled, every acknowledged command
 *   applied exactly once) must pass; it runs inside the app namespace, where the Redis Cluster
 *   is, through test/support/audit-cli.ts. Failover time, failed and retried requests and the
 *   audit summary are printed as one JSON line. The feed keeps the client's heartbeat rule
 *   (LIVE_HEARTBEAT_MS=1000): when the VIP moves back to the restarted MASTER while the load still
 *   runs, its connection through the BACKUP goes silent with no close. Then supervision: the killed HAProxy is started
 *   again and the VIP comes back to the MASTER; the BACKUP's keepalived SIGKILLed comes back
 *   BACKUP with the VIP untouched; the MASTER's keepalived SIGKILLed: the VIP moves to the BACKUP,
 *   keepalived is started again and the VIP comes back to the MASTER (redundant again); the same
 *   with its whole process group killed (no handoff: the BACKUP takes over on its timer, the
 *   restarted keepalived drops lb1's stale VIP, then takes it back); the times are printed as one
 *   JSON line. Ctrl-C must then stop everything and delete every namespace of
 *   the run.
 */
import { type ChildProcess, execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SwitchboardClient } from 'switchboard/client';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILD_DIR } from '../../src/topology/local/main-build.ts';
import { deleteNamespaceSync, probeNetns } from '../../src/topology/netns.ts';
import { LoadDriver, trafficGap } from '../support/audit.ts';
import { PROJECT_ROOT } from '../support/processes.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { childrenOf, execFileP, httpGet, launcherBanner, spawnLauncher, stopLaunchers } from './helpers.ts';

const auditCli = new URL('../support/audit-cli.ts', import.meta.url).pathname;
// The --vrrp test's load (bounded): contacts at a rate, agents cycling; the kill comes mid-load.
const CONTACTS = 300;
const AGENTS = 20;
const RATE_PER_S = 40;
const LOAD_DEADLINE_MS = 30_000;
const KILL_AT_MS = 2_500;

/** The one JSON line of test/support/audit-cli.ts. */
interface AuditCliResult {
  readonly ok: boolean;
  readonly error?: string;
  readonly settled?: boolean;
  readonly report?: Record<string, unknown> & { readonly assignmentPositions: string[] };
}
const dirs: string[] = [];
const running: ChildProcess[] = [];
const runIds: string[] = [];

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

/** Start the launcher with all four ports on 0 (free ports) and collect its output. */
function startLauncher(dataDir: string, extra: string[], env: Record<string, string> = {}, detached = false) {
  const l = spawnLauncher(
    [
      ...['--data-dir', dataDir],
      ...['--http-port', '0', '--tls-port', '0', '--stats-port', '0', '--redis-port', '0'],
      ...extra,
    ],
    { env, detached },
  );
  running.push(l.child);
  return l;
}

const waitForBanner = launcherBanner;

function namespacesOf(id: string): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.includes(`-${id}-`));
}

function vipOn(ns: string, vip: string): boolean {
  const out = execFileSync('ip', ['-n', ns, '-4', '-o', 'addr', 'show'], { encoding: 'utf8' });
  return out.includes(`inet ${vip}/`);
}

afterAll(async () => {
  // A failed test may leave a launcher running: stop it, then remove whatever it left behind.
  await stopLaunchers(running);
  for (const id of runIds) {
    for (const ns of namespacesOf(id)) deleteNamespaceSync(ns);
  }
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}, 60_000);

// Namespaces, veth pairs, keepalived's VRRP and moving the VIP need root with CAP_SYS_ADMIN and
// CAP_NET_ADMIN and a working `ip netns add` (plus haproxy and keepalived): the VRRP test is
// skipped without them, as the launcher itself then falls back to a single HAProxy.
const netns = probeNetns({ binaries: ['haproxy', 'keepalived'] });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the topology launcher', () => {
  it('starts the cluster, HAProxy and 7 Switchboard processes, serves through HAProxy, and stops everything on Ctrl-C', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-topology-'));
    dirs.push(dataDir);
    const l = startLauncher(dataDir, ['--no-vrrp']);
    const out = await waitForBanner(l, 90_000);
    const api = /API through HAProxy\s+(http:\/\/\S+)/.exec(out)?.[1];
    const stats = /HAProxy stats\s+(http:\/\/\S+)/.exec(out)?.[1];
    const instances = /API instances\s+(.+)/.exec(out)?.[1]?.trim().split(/\s+/) ?? [];
    const cluster = [...out.matchAll(/redis:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
    expect(api).toBeDefined();
    expect(instances).toHaveLength(3);
    expect(out).not.toContain('namespace');

    // Round-robin: requests through HAProxy reach all three instances (each reports its pid), and
    // each reports `running`. An instance reports `paused` while its once-a-second PING of Redis
    // has not answered within 1 s (or has not answered yet, just after start): on a loaded machine
    // that can happen in the first seconds, so each instance is given until it reports running.
    const running = new Set<number>();
    const seen: string[] = [];
    await waitFor(
      () => `three instances running through HAProxy (seen: ${seen.slice(-6).join('; ')})`,
      async () => {
        const s = (await (await fetch(`${api}/status`)).json()) as {
          pid: number;
          state: string;
          reason?: string;
        };
        seen.push(`${s.pid} ${s.state}${s.reason ? ` (${s.reason})` : ''}`);
        if (s.state === 'running') running.add(s.pid);
        return running.size === 3;
      },
      { timeoutMs: 20_000, everyMs: 50 },
    );
    const pids = new Set<number>();
    for (let i = 0; i < 9; i++) {
      const s = (await (await fetch(`${api}/status`)).json()) as { pid: number; state: string };
      expect(s.state).toBe('running');
      pids.add(s.pid);
    }
    expect(pids.size).toBe(3);
    // API keys on: the first API instance stored the admin key of default in the data directory.
    const keyFile = path.join(dataDir, 'admin-key');
    expect(out).toContain(keyFile);
    await waitFor('the admin key', () => existsSync(keyFile), { timeoutMs: 10_000 });
    const key = readFileSync(keyFile, 'utf8').trim();
    const refused = await fetch(`${api}/v1/workspaces/default/stats`);
    expect(refused.status).toBe(401);
    const created = await new SwitchboardClient({
      url: api!,
      workspace: 'default',
      key,
      retries: 0,
    }).registerAgent({
      id: 'launcher-test',
      skills: ['English'],
    });
    expect(created.status).toBe(201);
    expect((await fetch(stats!)).status).toBe(200);
    // The banner's example request, run as printed (a shell, the admin key read from its file).
    const example = /Try it\s+(curl .+)$/m.exec(out)?.[1];
    expect(example, out).toContain(`${api}/v1/workspaces/default/agents`);
    const tried = await execFileP('bash', ['-c', `${example} -s -o /dev/null -w '%{http_code}'`]);
    expect(tried.stdout).toBe('201');
    // The launcher's /status: every supervised process, running.
    // On the default port (8099, or the next free one up to 8119: other launchers may run).
    const statusUrl = /Launcher status\s+(http:\/\/127\.0\.0\.1:\d+\/status)/.exec(out)?.[1];
    expect(Number(new URL(statusUrl!).port)).toBeGreaterThanOrEqual(8099);
    expect(Number(new URL(statusUrl!).port)).toBeLessThanOrEqual(8119);
    const launcherStatus = (await (await fetch(statusUrl!)).json()) as {
      components: { name: string; kind: string; state: string; pid: number }[];
    };
    expect(launcherStatus.components.map((c) => c.name)).toEqual(
      expect.arrayContaining(['api-1', 'api-2', 'api-3', 'projector-1', 'dispatcher-2', 'HAProxy']),
    );
    expect(launcherStatus.components.every((c) => c.state === 'running' && c.pid > 0)).toBe(true);
    // The members run src/main.ts as the launcher built it once (main-build.ts), not through tsx.
    const builds = new Set(
      launcherStatus.components
        .filter((c) => c.kind === 'switchboard')
        .map((c) => readFileSync(`/proc/${c.pid}/cmdline`, 'utf8').split('\0')[1] ?? ''),
    );
    expect([...builds]).toEqual([path.join(BUILD_DIR, `main-${l.child.pid}.mjs`)]);
    expect(existsSync([...builds][0]!)).toBe(true);

    l.child.kill('SIGINT');
    expect(await l.exited).toBe(0);
    // Its build goes with it.
    expect(existsSync([...builds][0]!)).toBe(false);
    const apiPort = Number(new URL(api!).port);
    for (const port of [apiPort, ...instances.map((u) => Number(new URL(u).port)), ...cluster]) {
      expect(await portOpen(port), `port ${port} still open`).toBe(false);
    }
  }, 120_000);

  it('Ctrl-C during start-up stops what was started: while the cluster is made, and once the Switchboard processes run', async () => {
    // The two launches at once: each has its own data directory and process group.
    const stopDuring = async (
      phase: 'the Redis Cluster being made' | 'the Switchboard processes started',
    ) => {
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-topology-ctrl-c-'));
      dirs.push(dataDir);
      const l = startLauncher(
        dataDir,
        ['--no-vrrp', '--api', '1', '--projectors', '1', '--dispatchers', '1'],
        {},
        true,
      );
      const pid = l.child.pid!;
      // Every process the launcher starts, as it starts them (looked up every 20 ms in /proc).
      const started = new Map<number, string>();
      // A process that has exited but is not yet reaped reads an empty command line: keep the
      // last one it had (a redis-server that ended on the SIGINT is still a redis-server).
      const note = (c: { pid: number; cmd: string }) => {
        if (c.cmd !== '' || !started.has(c.pid)) started.set(c.pid, c.cmd);
      };
      const ready = (c: { cmd: string }) =>
        phase === 'the Redis Cluster being made'
          ? c.cmd.startsWith('redis-server')
          : /main-\d+\.mjs/.test(c.cmd);
      await waitFor(
        () => `${phase} (the launcher said: ${l.output().slice(-1000)})`,
        () => {
          const now = childrenOf(pid);
          for (const c of now) note(c);
          return now.some(ready);
        },
        { timeoutMs: 30_000, everyMs: 20 },
      );
      expect(l.output(), phase).not.toContain('topology is up');
      // As a terminal's Ctrl-C: SIGINT to the launcher's whole process group.
      process.kill(-pid, 'SIGINT');
      const watching = setInterval(() => {
        for (const c of childrenOf(pid)) note(c);
      }, 20);
      const code = await l.exited;
      clearInterval(watching);
      expect(code, `${phase}: ${l.output().slice(-2000)}`).toBe(0);
      expect(l.output(), phase).toContain('stopping ...');
      expect(l.output(), phase).not.toContain('topology is up');
      await waitFor(
        () =>
          `${phase}: nothing the launcher started left running (still: ${[...started]
            .filter(([p]) => alive(p))
            .map(([p, cmd]) => `${p} ${cmd}`)
            .join('; ')})`,
        () => [...started.keys()].every((p) => !alive(p)),
        { timeoutMs: 15_000, everyMs: 100 },
      );
      expect(
        [...started.values()].some((cmd) => cmd.startsWith('redis-server')),
        phase,
      ).toBe(true);
    };
    const stopped = await Promise.allSettled([
      stopDuring('the Redis Cluster being made'),
      stopDuring('the Switchboard processes started'),
    ]);
    for (const r of stopped) if (r.status === 'rejected') throw r.reason;
  }, 120_000);

  it.skipIf(!netns.ok)(
    `--vrrp: serves through the VIP, survives the MASTER's HAProxy being killed, and deletes its namespaces on Ctrl-C${netns.ok ? '' : ` (skipped: ${netns.reason})`}`,
    async () => {
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-topology-vrrp-'));
      dirs.push(dataDir);
      const started = Date.now();
      // The load below uses a workspace of its own, with no key: this test is about the failover.
      // A dead HAProxy is started again after 8 s: the VIP moves to the BACKUP first (5-7 s), then
      // back once the restarted MASTER passes keepalived's check (both paths are exercised).
      const l = startLauncher(dataDir, ['--vrrp', '--haproxy-restart-delay', '8000'], {
        AUTH: 'off',
        // The VIP's move back to the restarted MASTER leaves the feed's connection through lb2
        // silent with no close: the follower tells by the heartbeat, within two intervals.
        LIVE_HEARTBEAT_MS: '1000',
      });
      const out = await waitForBanner(l, 100_000);
      const startupMs = Date.now() - started;
      const id = /run ([0-9a-z]+):/.exec(out)?.[1];
      expect(id, out).toBeDefined();
      runIds.push(id!);
      const url = (label: string, scheme: string) =>
        new URL(new RegExp(`${label}\\s+(${scheme}://127\\.0\\.0\\.1:\\d+)`).exec(out)?.[1] ?? 'x://invalid');
      const api = url('API through HAProxy', 'http');
      const forwarded = [
        api,
        url('API over TLS', 'https'),
        url('HAProxy stats', 'http'),
        url('Redis through HAProxy', 'redis'),
      ].map((u) => Number(u.port));
      expect(
        forwarded.every((p) => p > 0),
        out,
      ).toBe(true);
      const vip = /forwarded to the VIP http:\/\/([\d.]+):8000/.exec(out)?.[1];
      expect(vip, out).toBeDefined();
      expect(out).toContain(`ip netns exec sb-${id}-app curl http://${vip}:8000/health`);
      const lbs = [...out.matchAll(/HAProxy (lb\d) (MASTER|BACKUP)\s+namespace (\S+), .*pidfile (\S+)/g)].map(
        (m) => ({ name: m[1]!, role: m[2]!, ns: m[3]!, pidfile: m[4]! }),
      );
      expect(lbs.map((x) => `${x.name} ${x.role}`)).toEqual(['lb1 MASTER', 'lb2 BACKUP']);
      const [master, backup] = lbs as [(typeof lbs)[0], (typeof lbs)[0]];
      expect(namespacesOf(id!).sort()).toEqual([
        `sb-${id}-app`,
        `sb-${id}-br`,
        `sb-${id}-lb1`,
        `sb-${id}-lb2`,
      ]);
      expect(vipOn(master.ns, vip!)).toBe(true);
      expect(vipOn(backup.ns, vip!)).toBe(false);

      // Through the forwarded port, the VIP and the MASTER's HAProxy: round-robin over 3 instances.
      const port = Number(api.port);
      const pids = new Set<number>();
      for (let i = 0; i < 9; i++) {
        const r = await httpGet('127.0.0.1', port, '/status');
        expect(r.status).toBe(200);
        pids.add((JSON.parse(r.body) as { pid: number }).pid);
      }
      expect(pids.size).toBe(3);
      const created = await new SwitchboardClient({
        url: api.origin,
        workspace: 'default',
        retries: 0,
      }).registerAgent({ id: 'launcher-vrrp-test', skills: ['English'] });
      expect(created.status).toBe(201);

      // The load, through the forwarded port: agents cycling and contacts queued at a bounded rate,
      // every command with an Idempotency-Key and retried with the same key; the AssignmentMade
      // feed over a WebSocket through the same port, resuming with `after=` when it is cut.
      const ws = `vrrp-${randomUUID().slice(0, 8)}`;
      const load = new LoadDriver({
        apiUrls: [api.origin],
        ws,
        contacts: CONTACTS,
        agents: AGENTS,
        ratePerS: RATE_PER_S,
        deadlineMs: LOAD_DEADLINE_MS,
        maxAttempts: 20,
        retryBudgetMs: 30_000,
        requestTimeoutMs: 3_000,
        maxBackoffMs: 1_000,
      });
      const { client, follower } = load;

      // The failover timing: GET /health every 100 ms through the forwarded port (bounded: 900),
      // each given the load's own request timeout (3 s): on a busy 2-core machine an answer can
      // take over a second without anything having failed over.
      const results: { t: number; ok: boolean; err?: string }[] = [];
      let probing = true;
      const loop = (async () => {
        for (let i = 0; i < 900 && probing; i++) {
          const t = Date.now();
          try {
            const r = await httpGet('127.0.0.1', port, '/health', 3000);
            results.push({
              t,
              ok: r.status === 200,
              ...(r.status === 200 ? {} : { err: `HTTP ${r.status}` }),
            });
          } catch (err) {
            results.push({
              t,
              ok: false,
              err: (err as NodeJS.ErrnoException).code ?? (err as Error).message,
            });
          }
          await sleep(100);
        }
      })();
      await waitFor('requests through the VIP', async () => results.filter((r) => r.ok).length >= 5, {
        timeoutMs: 10_000,
      });
      await load.prepare();
      const loadRun = load.run();
      await sleep(KILL_AT_MS);

      // SIGKILL the MASTER's HAProxy (the master process named in its pidfile; its worker follows).
      const pid = Number(readFileSync(master.pidfile, 'utf8').trim());
      expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('haproxy');
      const t0 = Date.now();
      process.kill(pid, 'SIGKILL');

      const firstFail = await waitFor(
        'a failed request',
        async () => results.find((r) => r.t >= t0 && !r.ok),
        { timeoutMs: 5000, everyMs: 50 },
      );
      const recovered = await waitFor(
        'requests through the forwarded port to succeed again',
        async () => results.find((r) => r.t > firstFail.t && r.ok),
        { timeoutMs: 15_000, everyMs: 50 },
      );
      const failoverMs = recovered.t - t0;
      // The VIP is on the BACKUP now, and only there.
      expect(vipOn(backup.ns, vip!)).toBe(true);
      expect(vipOn(master.ns, vip!)).toBe(false);
      const { queued, loadMs } = await loadRun;
      await sleep(Math.max(0, recovered.t + 1500 - Date.now())); // stays healthy
      probing = false;
      await loop;

      // Quiet: every acknowledged contact assigned (agents keep cycling) and every completion
      // answered; bounded, and not fatal here: the audit says what is wrong.
      await waitFor(
        'the load to be quiet',
        async () => load.pendingCompletions === 0 && follower.seen.length >= load.acknowledged.size,
        { timeoutMs: 30_000, everyMs: 100 },
      ).catch(() => undefined);
      await sleep(300);
      load.stop();

      // The audit, inside the app namespace (the cluster is not reachable from here).
      // As the Switchboard ACL user, whose password the launcher keeps in the data directory.
      const { app } = JSON.parse(readFileSync(path.join(dataDir, 'redis-credentials.json'), 'utf8')) as {
        app: { user: string; password: string };
      };
      const seeds = [...out.matchAll(/master redis:\/\/([\d.]+:\d+)/g)].map(
        (m) => `${app.user}:${app.password}@${m[1]!}`,
      );
      expect(seeds.length, out).toBeGreaterThan(0);
      const ackedFile = path.join(dataDir, `acked-${ws}.json`);
      writeFileSync(ackedFile, JSON.stringify([...load.acknowledged.keys()]));
      // Run while the supervision part below goes on: it reads the cluster, which that part leaves alone.
      const auditing = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(
          'ip',
          [
            'netns',
            'exec',
            `sb-${id}-app`,
            process.execPath,
            '--import',
            'tsx',
            auditCli,
            '--nodes',
            seeds.join(','),
            '--ws',
            ws,
            '--acked',
            ackedFile,
          ],
          { cwd: PROJECT_ROOT, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
          (err, stdout, stderr) =>
            resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });

      // Supervision (src/topology/supervisor.ts): the killed HAProxy is started again, keepalived's
      // check on it passes, and the MASTER takes the VIP back (preemption): redundant again.
      await waitFor('HAProxy lb1 restarted', () => /HAProxy lb1 restarted/.test(l.output()), {
        timeoutMs: 20_000,
        everyMs: 100,
      });
      const haproxyBackMs = Date.now() - t0;
      expect(Number(readFileSync(master.pidfile, 'utf8').trim())).not.toBe(pid);
      await waitFor('the VIP back on the MASTER', () => vipOn(master.ns, vip!), {
        timeoutMs: 20_000,
        everyMs: 100,
      });
      const vipBackMs = Date.now() - t0;
      expect(vipOn(backup.ns, vip!)).toBe(false);
      // The BACKUP's keepalived SIGKILLed: started again, BACKUP again, and the API still answers.
      const kaPidfile = path.join(dataDir, 'lb2', 'keepalived.pid');
      const kaPid = Number(readFileSync(kaPidfile, 'utf8').trim());
      expect(kaPid).toBeGreaterThan(0);
      const kaKilledAt = Date.now();
      process.kill(kaPid, 'SIGKILL');
      await waitFor('keepalived lb2 restarted', () => /keepalived lb2 restarted/.test(l.output()), {
        timeoutMs: 20_000,
        everyMs: 100,
      });
      await waitFor(
        'keepalived lb2 BACKUP again',
        () =>
          l
            .output()
            .slice(l.output().lastIndexOf('keepalived lb2 restarted'))
            .includes('keepalived lb2: BACKUP'),
        { timeoutMs: 20_000, everyMs: 100 },
      );
      const keepalivedBackMs = Date.now() - kaKilledAt;
      expect(vipOn(master.ns, vip!)).toBe(true);
      expect((await httpGet('127.0.0.1', port, '/health')).status).toBe(200);
      expect(readFileSync(path.join(dataDir, 'logs', 'haproxy-lb1.log'), 'utf8')).toMatch(
        /\[launcher\] HAProxy lb1 restarted/,
      );

      // The MASTER's keepalived SIGKILLed: its VRRP child goes with it, the BACKUP takes the VIP
      // (the API still answers through it), the launcher starts keepalived again and the MASTER
      // takes the VIP back (preemption): redundant again.
      const masterKaPid = Number(readFileSync(path.join(dataDir, 'lb1', 'keepalived.pid'), 'utf8').trim());
      expect(readFileSync(`/proc/${masterKaPid}/comm`, 'utf8').trim()).toBe('keepalived');
      const restartsBefore = l.output().split('keepalived lb1 restarted').length - 1;
      const masterKaKilledAt = Date.now();
      process.kill(masterKaPid, 'SIGKILL');
      await waitFor('the VIP on the BACKUP only', () => vipOn(backup.ns, vip!) && !vipOn(master.ns, vip!), {
        timeoutMs: 15_000,
        everyMs: 50,
      });
      const masterKaVipMovedMs = Date.now() - masterKaKilledAt;
      expect((await httpGet('127.0.0.1', port, '/health')).status).toBe(200);
      await waitFor(
        'keepalived lb1 restarted',
        () => l.output().split('keepalived lb1 restarted').length - 1 > restartsBefore,
        { timeoutMs: 20_000, everyMs: 100 },
      );
      expect(l.output()).toMatch(/keepalived lb1 exited \(SIGKILL\)/);
      await waitFor(
        'the VIP back on the MASTER only',
        () => vipOn(master.ns, vip!) && !vipOn(backup.ns, vip!),
        {
          timeoutMs: 20_000,
          everyMs: 50,
        },
      );
      const masterKaVipBackMs = Date.now() - masterKaKilledAt;
      await waitFor(
        'keepalived lb2 BACKUP again',
        () => {
          const o = l.output();
          return o.slice(o.lastIndexOf('keepalived lb2: MASTER')).includes('keepalived lb2: BACKUP');
        },
        { timeoutMs: 10_000, everyMs: 100 },
      );
      expect(Number(readFileSync(path.join(dataDir, 'lb1', 'keepalived.pid'), 'utf8').trim())).not.toBe(
        masterKaPid,
      );
      expect((await httpGet('127.0.0.1', port, '/health')).status).toBe(200);

      // The MASTER's whole keepalived (its process group: the parent and its VRRP child) SIGKILLed,
      // as a crash would: no priority-0 advert, and nobody removes the VIP from lb1's interface.
      // The BACKUP takes the VIP when its master-down timer expires; the restarted keepalived
      // (2 s: the second restart within a minute) removes lb1's stale copy when it enters BACKUP,
      // then takes the VIP back by preemption. A poll every 50 ms records who holds it.
      const groupPid = Number(readFileSync(path.join(dataDir, 'lb1', 'keepalived.pid'), 'utf8').trim());
      expect(readFileSync(`/proc/${groupPid}/comm`, 'utf8').trim()).toBe('keepalived');
      const groupKilledAt = Date.now();
      process.kill(-groupPid, 'SIGKILL');
      const holders: { t: number; lb1: boolean; lb2: boolean }[] = [];
      await waitFor(
        'the VIP on the BACKUP, then back on the MASTER only',
        () => {
          holders.push({
            t: Date.now() - groupKilledAt,
            lb1: vipOn(master.ns, vip!),
            lb2: vipOn(backup.ns, vip!),
          });
          const took = holders.findIndex((h) => h.lb2);
          return took >= 0 && holders.slice(took).some((h) => h.lb1 && !h.lb2);
        },
        { timeoutMs: 25_000, everyMs: 50 },
      );
      const groupVipBackMs = Date.now() - groupKilledAt;
      const groupVipOnBackupMs = holders.find((h) => h.lb2)!.t;
      // Both held the VIP (lb1's stale copy) for about this long, as the 50 ms poll saw it.
      const bothHeld = holders.filter((h) => h.lb1 && h.lb2);
      const groupBothHeldMs = bothHeld.length === 0 ? 0 : bothHeld.at(-1)!.t - bothHeld[0]!.t + 50;
      expect(l.output()).toMatch(/keepalived lb1 restarted \(restart 2\)/);
      await waitFor(
        'keepalived lb2 BACKUP again',
        () => {
          const o = l.output();
          return o.slice(o.lastIndexOf('keepalived lb2: MASTER')).includes('keepalived lb2: BACKUP');
        },
        { timeoutMs: 10_000, everyMs: 100 },
      );
      expect(vipOn(backup.ns, vip!)).toBe(false);
      expect((await httpGet('127.0.0.1', port, '/health')).status).toBe(200);

      // The launcher's /status, served in the root namespace from what the app namespace's
      // process reports: each restart above counted, every component running.
      const statusUrl = /Launcher status\s+(http:\/\/127\.0\.0\.1:\d+\/status)/.exec(out)?.[1];
      expect(statusUrl, out).toBeDefined();
      const launcherStatus = (await (await fetch(statusUrl!)).json()) as {
        launcher: { pid: number; appNamespacePid: number; mode: string };
        components: {
          name: string;
          kind: string;
          state: string;
          pid: number;
          restarts: number;
          lastExit: string;
        }[];
      };
      expect(launcherStatus.launcher).toMatchObject({ pid: l.child.pid, mode: 'vrrp' });
      const byName = new Map(launcherStatus.components.map((c) => [c.name, c]));
      const kaLines = l
        .output()
        .split('\n')
        .filter((x) => /^keepalived lb\d (exited|restarted|did not)/.test(x))
        .join('\n');
      expect(byName.get('HAProxy lb1')).toMatchObject({ kind: 'haproxy', restarts: 1, lastExit: 'SIGKILL' });
      expect(byName.get('HAProxy lb1')?.pid).toBe(Number(readFileSync(master.pidfile, 'utf8').trim()));
      expect(byName.get('HAProxy lb2')).toMatchObject({ restarts: 0 });
      expect(byName.get('keepalived lb2'), kaLines).toMatchObject({
        kind: 'keepalived',
        restarts: 1,
        lastExit: 'SIGKILL',
      });
      expect(byName.get('keepalived lb1'), kaLines).toMatchObject({
        kind: 'keepalived',
        restarts: 2,
        lastExit: 'SIGKILL',
      });
      expect([...byName.keys()].filter((n) => n.startsWith('redis-server '))).toHaveLength(6);
      expect(launcherStatus.components.every((c) => c.state === 'running' && c.pid > 0)).toBe(true);
      // The banner's example request, run as printed, through the VIP.
      const example = /Try it\s+(curl .+)$/m.exec(out)?.[1];
      expect(example, out).toContain(`${api.origin}/v1/workspaces/default/agents`);
      const tried = await execFileP('bash', ['-c', `${example} -s -o /dev/null -w '%{http_code}'`]);
      expect(tried.stdout).toBe('201');
      // Each Redis node's log begins with its command line, entering the app namespace.
      const node = /master redis:\/\/[\d.]+:(\d+)/.exec(out)?.[1];
      const nodeLog = readFileSync(path.join(dataDir, 'logs', `redis-${node}.log`), 'utf8');
      expect(nodeLog.split('\n')[0]).toMatch(
        new RegExp(
          `^\\S+ \\[launcher\\] command line: ip netns exec sb-${id}-app redis-server .*--port ${node} `,
        ),
      );
      console.log(
        JSON.stringify({
          test: 'launcher-vrrp-supervision',
          haproxyBackMs,
          vipBackMs,
          keepalivedBackMs,
          masterKaVipMovedMs,
          masterKaVipBackMs,
          groupVipOnBackupMs,
          groupBothHeldMs,
          groupVipBackMs,
        }),
      );

      // The failover under load: the audit, the requests, the feed.
      const audited = await auditing;
      const auditLine = audited.stdout.trim().split('\n').at(-1) ?? '';
      let audit: AuditCliResult;
      try {
        audit = JSON.parse(auditLine) as AuditCliResult;
      } catch {
        throw new Error(
          `audit-cli printed no JSON (exit ${audited.code}): ${audited.stdout}\n${audited.stderr}`,
        );
      }
      const after = results.filter((r) => r.t >= t0);
      const failed = after.filter((r) => !r.ok);
      // From the first success to the restart of the MASTER's HAProxy, nothing moves: no request
      // may fail. After the restart the MASTER takes the VIP back (preemption, a few seconds later),
      // a second, planned move: new connections can time out while the neighbours learn the VIP's
      // new address. A slow machine stretches the load into that move; it is reported, not held
      // to zero (the load's own requests, retried with their keys, must all succeed: above).
      const restartedAt = l.saidAt(/HAProxy lb1 restarted/) ?? Number.POSITIVE_INFINITY;
      const failedAfterRecovery = after.filter((r) => !r.ok && r.t > recovered.t && r.t < restartedAt);
      const failedAfterRestart = after.filter((r) => !r.ok && r.t >= restartedAt);
      const gap = trafficGap(client.okAt, t0, t0 + 15_000);
      const { assignmentPositions: _positions, ...auditSummary } = audit.report ?? {};
      console.log(
        JSON.stringify({
          test: 'launcher-vrrp-failover',
          startupMs,
          failoverMs,
          loadFirstOkAfterKillMs: gap.firstOkAfterMs,
          loadLongestGapMs: gap.longestGapMs,
          healthRequestsAfterKill: after.length,
          healthFailedRequests: failed.length,
          healthFailedAfterRecovery: failedAfterRecovery.length,
          lb1RestartedAfterKillMs: restartedAt - t0,
          healthFailedAfterRestart: failedAfterRestart.map((r) => ({ afterKillMs: r.t - t0, err: r.err })),
          healthErrors: [...new Set(failed.map((f) => f.err))],
          killAtMs: t0 - load.loadStart,
          queued,
          loadMs,
          failedRequests: client.failed,
          retriedRequests: client.retriedRequests,
          retries: client.retries,
          networkErrors: client.networkErrors,
          accepted202: client.accepted202,
          statuses: client.statuses,
          acknowledged: load.acknowledged.size,
          completed: load.completedOk.size,
          wsReconnects: follower.reconnects,
          wsDeadPaths: follower.deadPaths,
          wsGapsMs: follower.gapsMs,
          wsDuplicates: follower.duplicates,
          auditOk: audit.ok,
          auditSettled: audit.settled,
          audit: audit.ok ? auditSummary : audit.error,
        }),
      );
      expect(audit.ok, `audit: ${audit.error}\n${audited.stderr}`).toBe(true);
      expect(client.failures, 'requests that failed or were refused').toEqual([]);
      expect(client.failed, 'failed client requests after retries').toBe(0);
      expect(load.unanswered).toEqual([]);
      expect(load.acknowledged.size).toBe(CONTACTS);
      expect(follower.duplicates, 'duplicates on the live feed').toBe(0);
      expect(follower.reconnects, 'the feed was cut by the kill and reconnected').toBeGreaterThan(0);
      expect(
        follower.seen.map((e) => e.position),
        'the feed resumed with no gap',
      ).toEqual(audit.report?.assignmentPositions);
      expect(failoverMs).toBeLessThan(10_000);
      expect(
        failedAfterRecovery.map((r) => ({ afterKillMs: r.t - t0, err: r.err })),
        `health requests that failed after the first success at +${failoverMs} ms and before HAProxy lb1 restarted; the launcher said:\n${l.saidSince(t0)}`,
      ).toEqual([]);
      expect(l.output()).toMatch(/keepalived lb2: MASTER/);

      // Ctrl-C: exit 0, every forwarded port closed, every namespace of the run gone.
      const backupPid = Number(readFileSync(backup.pidfile, 'utf8').trim());
      l.child.kill('SIGINT');
      expect(await l.exited, l.output().slice(-3000)).toBe(0);
      for (const p of forwarded) expect(await portOpen(p), `port ${p} still open`).toBe(false);
      expect(namespacesOf(id!)).toEqual([]);
      expect(() => process.kill(backupPid, 0), 'backup HAProxy still running').toThrow();
    },
    120_000,
  );
});
