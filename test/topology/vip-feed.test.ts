/**
 * A live feed through the keepalived VIP, across two VIP moves (`npm run topology -- --vrrp`, in
 * network namespaces the launcher creates; LIVE_HEARTBEAT_MS=1000):
 *
 *   this process ── 127.0.0.1:<port> ── forwarder (app namespace) ── VIP ── HAProxy lb1 | lb2 ── API
 *
 * The typed client (src/client/live.ts) follows the AssignmentMade events of a fresh workspace
 * while a load runs through the same port: a contact queued every 100 ms, and each assignment
 * the feed hands on completed by its agent 50 ms later (so agents cycle only while the feed
 * follows); every command has an Idempotency-Key and is retried with it. The MASTER's HAProxy
 * (lb1) is SIGKILLed and the launcher starts it again 7 s later: the VIP moves to lb2 (move 1),
 * then back to lb1 once the restarted HAProxy passes keepalived's check (move 2, preemption: the
 * killed component is back by itself and the pair is redundant again). A poll of both lb
 * namespaces every 20 ms times each move.
 *
 * Checked: the feed notices each dead path within 2 heartbeat intervals of the VIP moving (move
 * 1: the dying HAProxy closes its connections, before the VIP moves; move 2: lb2's HAProxy lives
 * on but the VIP left it, so the path goes silent with no close, and only the heartbeat rule can
 * tell), it resumes each time, and what it handed on is exactly the AssignmentMade events of the
 * workspace's stream in Redis, in order: no gap, no duplicate (read inside the app namespace by
 * test/support/audit-cli.ts, whose event-log audit must pass too). The test never reopens the
 * feed itself. The measured times are printed as one JSON line. 31-41 s here: the launcher's
 * start-up (8-15 s) and the two moves (12-14 s after the kill) take most of it.
 *
 * Also: the launcher's VRRP password is random, kept owner-only in the data directory and
 * rendered into both keepalived configurations.
 *
 * Needs root and `ip netns` (plus haproxy and keepalived); skipped otherwise, with the reason.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { type EventEnvelope, SwitchboardClient } from 'switchboard/client';
import { afterAll, describe, expect, it } from 'vitest';
import { deleteNamespaceSync, probeNetns } from '../../src/topology/netns.ts';
import { AREAS, LANGUAGES, RetryingClient, registerAvailable } from '../support/audit.ts';
import { launcherEntry } from '../support/main-build.ts';
import { PROJECT_ROOT } from '../support/processes.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { stopLaunchers } from './helpers.ts';

const execFileP = promisify(execFile);
const auditCli = new URL('../support/audit-cli.ts', import.meta.url).pathname;
const EVERY_MS = 1000;
/** A dead HAProxy is started again after this long: the VIP has moved to the BACKUP by then (5-7.6 s). */
const HAPROXY_RESTART_MS = 7000;
/** Late timers on a loaded machine, and the 20 ms VIP poll. */
const SLACK_MS = 500;
/**
 * How soon the feed must be open again after it noticed a move. A connection attempt sent while the
 * VIP changes hands can go unanswered (its SYN to the old holder) until the client's handshake
 * timeout (10 s, src/client/live.ts) ends it; then one backoff (400 ms here). Alone, it reopens within
 * 0.4 s of move 1 and 2.1 s of move 2 (closes every 2 s on the silent path); a CI run with the other
 * VRRP suites beside it once took over 5 s.
 */
const RESUME_MS = 10_000 + 400 + SLACK_MS;

const netns = probeNetns({ binaries: ['haproxy', 'keepalived'] });
const running: ChildProcess[] = [];
const dirs: string[] = [];
let runId: string | undefined;

afterAll(async () => {
  await stopLaunchers(running);
  if (runId) for (const ns of namespacesOf(runId)) deleteNamespaceSync(ns);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}, 60_000);

function namespacesOf(id: string): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.includes(`-${id}-`));
}

async function holds(ns: string, vip: string): Promise<boolean> {
  const { stdout } = await execFileP('ip', ['-n', ns, '-4', '-o', 'addr', 'show'], { timeout: 5000 });
  return stdout.includes(`inet ${vip}/`);
}

type Holder = 'lb1' | 'lb2' | 'both' | 'none';

/** Polls which lb holds the VIP every 20 ms; keeps each change with its time. */
function watchVip(lbs: { lb1: string; lb2: string }, vip: string) {
  /**
   * Each change as a poll saw it: `at` when that poll ended, `after` when the poll before it began
   * (the change came after that one looked, so no earlier than this: on a loaded machine a poll,
   * two `ip` processes, can take a while).
   */
  const changes: { at: number; after: number; holder: Holder }[] = [];
  let on = true;
  const done = (async () => {
    let previousStart = Date.now();
    // Bounded: at most 3 000 polls (about a minute).
    for (let i = 0; i < 3000 && on; i++) {
      const start = Date.now();
      const [a, b] = await Promise.all([holds(lbs.lb1, vip), holds(lbs.lb2, vip)]).catch(() => [
        false,
        false,
      ]);
      const holder: Holder = a && b ? 'both' : a ? 'lb1' : b ? 'lb2' : 'none';
      if (changes.at(-1)?.holder !== holder) changes.push({ at: Date.now(), after: previousStart, holder });
      previousStart = start;
      await sleep(20);
    }
  })();
  return {
    changes,
    /** The first time `lb` held the VIP (alone or not) after `since`. */
    firstOn(lb: 'lb1' | 'lb2', since: number): number | undefined {
      return changes.find((c) => c.at >= since && (c.holder === lb || c.holder === 'both'))?.at;
    },
    /** The earliest the change `firstOn` found can have come (the start of the poll before it). */
    earliestOn(lb: 'lb1' | 'lb2', since: number): number | undefined {
      return changes.find((c) => c.at >= since && (c.holder === lb || c.holder === 'both'))?.after;
    },
    /** The first time only `lb` held the VIP after `since`. */
    aloneOn(lb: 'lb1' | 'lb2', since: number): number | undefined {
      return changes.find((c) => c.at >= since && c.holder === lb)?.at;
    },
    holder: () => changes.at(-1)?.holder,
    stop: async () => {
      on = false;
      await done;
    },
  };
}

describe('a live feed through the keepalived VIP', () => {
  it.skipIf(!netns.ok)(
    `notices each VIP move within two heartbeat intervals and resumes with no gap and no duplicate${netns.ok ? '' : ` (skipped: ${netns.reason})`}`,
    async () => {
      const started = Date.now();
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-vip-feed-'));
      dirs.push(dataDir);
      const child = spawn(
        process.execPath,
        [
          ...launcherEntry(),
          '--vrrp',
          ...['--api', '1', '--projectors', '1', '--dispatchers', '1'],
          ...['--haproxy-restart-delay', String(HAPROXY_RESTART_MS)],
          ...['--data-dir', dataDir],
          ...['--http-port', '0', '--tls-port', '0', '--stats-port', '0', '--redis-port', '0'],
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, AUTH: 'off', LIVE_HEARTBEAT_MS: String(EVERY_MS) },
        },
      );
      running.push(child);
      let out = '';
      for (const s of [child.stdout, child.stderr]) s.on('data', (b: Buffer) => (out += b.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      await waitFor(
        'the banner or an exit',
        () => out.includes('Ctrl-C stops everything') || child.exitCode !== null,
        {
          timeoutMs: 60_000,
          everyMs: 100,
        },
      ).catch(() => undefined);
      expect(out, out).toContain('Ctrl-C stops everything');
      const startupMs = Date.now() - started;
      runId = /run ([0-9a-z]+):/.exec(out)?.[1];
      const api = /API through HAProxy\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      const vip = /forwarded to the VIP http:\/\/([\d.]+):8000/.exec(out)?.[1];
      const lb = Object.fromEntries(
        [...out.matchAll(/HAProxy (lb\d) (?:MASTER|BACKUP)\s+namespace (\S+), .*pidfile (\S+)/g)].map((m) => [
          m[1]!,
          { ns: m[2]!, pidfile: m[3]! },
        ]),
      ) as Record<'lb1' | 'lb2', { ns: string; pidfile: string }>;
      expect([runId, api, vip, lb.lb1?.ns, lb.lb2?.ns].every(Boolean), out).toBe(true);
      // keepalived's VRRP password: random, kept (owner-only) in the data directory, the same on both.
      const vrrpFile = path.join(dataDir, 'vrrp-password');
      expect(out).toContain(`VRRP password         ${vrrpFile}`);
      expect(statSync(vrrpFile).mode & 0o777).toBe(0o600);
      const vrrpPassword = readFileSync(vrrpFile, 'utf8').trim();
      expect(vrrpPassword).toMatch(/^[A-Za-z0-9_-]{8}$/);
      for (const name of ['lb1', 'lb2'])
        expect(readFileSync(path.join(dataDir, name, 'keepalived.conf'), 'utf8')).toContain(
          `auth_pass ${vrrpPassword}\n`,
        );
      const vipWatch = watchVip({ lb1: lb.lb1.ns, lb2: lb.lb2.ns }, vip!);

      // The load on a workspace of its own, through the same port: contacts queued every 100 ms, and
      // each assignment the feed under test hands on completed 50 ms later (so the agents cycle only
      // while the feed follows). Every command has an Idempotency-Key and is retried with it.
      const ws = `vipfeed-${randomUUID().slice(0, 8)}`;
      const client = new RetryingClient([api!], ws, {
        maxAttempts: 60,
        retryBudgetMs: 30_000,
        requestTimeoutMs: 2_000,
        maxBackoffMs: 400,
      });
      const agents = Array.from({ length: 12 }, (_, i) => `agent-${String(i).padStart(2, '0')}`);
      const acknowledged = new Set<string>();
      const pending = new Set<Promise<unknown>>();
      const track = (p: Promise<unknown>) => {
        pending.add(p);
        void p.finally(() => pending.delete(p));
      };
      let loading = true;
      let queued = 0;
      const queueLoop = async () => {
        // Bounded: at most 600 contacts (60 s).
        for (let i = 0; loading && i < 600; i++) {
          const id = `contact-${String(i).padStart(4, '0')}`;
          const skills = [LANGUAGES[i % 2]!, AREAS[Math.floor(i / 2) % AREAS.length]!];
          queued++;
          track(
            client.command('/contacts', { id, skills }, `queue-${id}`, i).then((r) => {
              if (r && r.status >= 200 && r.status < 300) acknowledged.add(id);
            }),
          );
          await sleep(100);
        }
      };

      // The feed under test: the typed client, from the start of the workspace's log.
      const feed = new SwitchboardClient({ url: api!, workspace: ws });
      const got: EventEnvelope[] = [];
      const closes: { at: number; code: number; reason: string }[] = [];
      const opens: number[] = [];
      const sub = feed.subscribe(
        {
          after: '0-0',
          types: ['AssignmentMade'],
          heartbeatMs: EVERY_MS,
          retryFirst: true,
          backoffMs: 100,
          maxBackoffMs: 400,
          onOpen: () => opens.push(Date.now()),
          onClose: (c) => closes.push({ at: Date.now(), code: c.code, reason: c.reason }),
        },
        (e) => {
          got.push(e);
          const contactId = String((e.data as { contactId: string }).contactId);
          track(
            sleep(50).then(() =>
              client.command(
                `/contacts/${contactId}/complete`,
                undefined,
                `complete-${contactId}-${e.position}`,
                0,
              ),
            ),
          );
        },
      );
      let loaded: Promise<void> = Promise.resolve();
      try {
        await sub.ready;
        const openedAt = Date.now();
        await registerAvailable(client, agents);
        // Quiet for over 2 heartbeat intervals: the heartbeats cross the VIP, nothing is taken for dead.
        await sleep(Math.max(0, openedAt + 2.5 * EVERY_MS - Date.now()));
        expect(closes, 'no close while the path is alive').toEqual([]);
        expect(vipWatch.holder()).toBe('lb1');

        loaded = queueLoop();
        await waitFor('assignments on the feed', () => got.length >= 5, {
          timeoutMs: 10_000,
          everyMs: 20,
        }).catch(async (err: Error) => {
          const get = async (p: string) =>
            (await fetch(`${api}/v1/workspaces/${ws}${p}`)).text().catch(String);
          const logs = ['dispatcher-1', 'projector-1']
            .map(
              (n) => `--- ${n}\n${readFileSync(path.join(dataDir, 'logs', `${n}.log`), 'utf8').slice(-3000)}`,
            )
            .join('\n');
          throw new Error(
            `${err.message}: ${JSON.stringify({ got: got.length, statuses: client.statuses, closes })}\n${await get('/contacts/contact-0000')}\n${await get('/agents/agent-00')}\n${logs}`,
          );
        });

        // SIGKILL the MASTER's HAProxy (the master process of its pidfile; its worker follows).
        const pid = Number(readFileSync(lb.lb1.pidfile, 'utf8').trim());
        expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('haproxy');
        const killedAt = Date.now();
        process.kill(pid, 'SIGKILL');

        // Move 1: the VIP to lb2; the feed resumes there.
        const move1 = await waitFor('the VIP on lb2', () => vipWatch.firstOn('lb2', killedAt), {
          timeoutMs: 12_000,
          everyMs: 20,
        });
        const close1 = closes.find((c) => c.at >= killedAt);
        expect(close1, 'the feed noticed move 1').toBeDefined();
        const since = (t: number) => ({
          closes: closes.filter((c) => c.at >= t).map((c) => ({ ...c, at: c.at - killedAt })),
          vipChanges: vipWatch.changes.map((c) => `${c.holder}@${c.at - killedAt}`),
        });
        const resumed1 = await waitFor(
          () => `the feed open through lb2 (since the kill: ${JSON.stringify(since(killedAt))})`,
          () => opens.find((t) => t >= move1),
          { timeoutMs: RESUME_MS, everyMs: 20 },
        );
        const seenBefore2 = got.length;
        await waitFor('assignments through lb2', () => got.length > seenBefore2, {
          timeoutMs: 10_000,
          everyMs: 20,
        });

        // Move 2: HAProxy lb1 is started again, passes keepalived's check, and lb1 takes the VIP back.
        // How late this process's timers ran until the feed notices it (the client's watchdog is one
        // of them): on a loaded machine (a CI run with a browser suite beside it) a timer once ran
        // 1.2 s late, and the feed's silence was read that much after it passed two heartbeats.
        const loopDelay = monitorEventLoopDelay({ resolution: 20 });
        loopDelay.enable();
        const onlyLb2 = await waitFor('the VIP on lb2 only', () => vipWatch.aloneOn('lb2', killedAt), {
          timeoutMs: 5_000,
          everyMs: 20,
        });
        const move2 = await waitFor('the VIP back on lb1', () => vipWatch.firstOn('lb1', onlyLb2), {
          timeoutMs: 20_000,
          everyMs: 20,
        });
        await waitFor('lb2 without the VIP', () => vipWatch.holder() === 'lb1', {
          timeoutMs: 5_000,
          everyMs: 20,
        });
        // Between the moves the path through lb2 was alive: nothing was taken for dead. Move 2 may
        // have come before the poll that saw it (up to the start of the poll before), and a close
        // it caused (a reset from lb1, which does not know the connection) with it.
        const move2From = vipWatch.earliestOn('lb1', onlyLb2)!;
        expect(
          closes.filter((c) => c.at > resumed1 && c.at < move2From),
          `no close between the moves (since the kill: ${JSON.stringify(since(killedAt))}, move 2 at ${move2From - killedAt} - ${move2 - killedAt})`,
        ).toEqual([]);
        const close2 = await waitFor(
          'the feed to notice move 2',
          () => closes.find((c) => c.at >= move2From),
          {
            timeoutMs: 2 * EVERY_MS + 5_000,
            everyMs: 10,
          },
        );
        loopDelay.disable();
        const timersLateMs = Math.round(loopDelay.max / 1e6);
        const resumed2 = await waitFor(
          () => `the feed open again (since move 2: ${JSON.stringify(since(move2))})`,
          () => opens.find((t) => t >= close2.at),
          { timeoutMs: RESUME_MS, everyMs: 20 },
        );
        const seenAfter2 = got.length;
        await waitFor('assignments through lb1 again', () => got.length >= seenAfter2 + 5, {
          timeoutMs: 10_000,
          everyMs: 20,
        });
        expect(out).toMatch(/HAProxy lb1 restarted \(restart 1\)/);
        expect(Number(readFileSync(lb.lb1.pidfile, 'utf8').trim())).not.toBe(pid);

        // The load stops; every acknowledged contact is assigned (on the feed) and completed.
        loading = false;
        await loaded;
        await waitFor(
          () => `every request answered and every acknowledged contact assigned (${pending.size} pending)`,
          async () => {
            const assigned = new Set(got.map((e) => String((e.data as { contactId: string }).contactId)));
            return pending.size === 0 && [...acknowledged].every((id) => assigned.has(id));
          },
          { timeoutMs: 15_000, everyMs: 50 },
        );

        // The event stream in Redis, read (and audited) inside the app namespace.
        const { app } = JSON.parse(readFileSync(path.join(dataDir, 'redis-credentials.json'), 'utf8')) as {
          app: { user: string; password: string };
        };
        const seeds = [...out.matchAll(/master redis:\/\/([\d.]+:\d+)/g)].map(
          (m) => `${app.user}:${app.password}@${m[1]!}`,
        );
        const ackedFile = path.join(dataDir, 'acked.json');
        writeFileSync(ackedFile, JSON.stringify([...acknowledged]));
        const audited = await execFileP(
          'ip',
          [
            'netns',
            'exec',
            `sb-${runId}-app`,
            process.execPath,
            ...['--import', 'tsx', auditCli],
            ...['--nodes', seeds.join(','), '--ws', ws, '--acked', ackedFile],
          ],
          { cwd: PROJECT_ROOT, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
        ).catch((err: { stdout?: string; stderr?: string }) => ({
          stdout: err.stdout ?? '',
          stderr: err.stderr ?? '',
        }));
        let audit: { ok?: boolean; error?: string; report?: { assignmentPositions: string[] } } = {};
        try {
          audit = JSON.parse(audited.stdout.trim().split('\n').at(-1) ?? '');
        } catch {
          throw new Error(`audit-cli printed no JSON line:\n${audited.stdout}\n${audited.stderr}`);
        }
        expect(audit.ok, `audit: ${audit.error}\n${audited.stderr}`).toBe(true);
        const stream = audit.report!.assignmentPositions;
        // The feed caught up with the stream (bounded), then: exactly the stream, in order.
        await waitFor('the feed at the end of the stream', () => got.length >= stream.length, {
          timeoutMs: 5_000,
          everyMs: 20,
        }).catch(() => undefined);
        const positions = got.map((e) => e.position);
        expect(new Set(positions).size, 'no duplicate').toBe(positions.length);
        expect(positions, 'the AssignmentMade events of the stream, each once, in order').toEqual(stream);

        const detection1Ms = close1!.at - move1;
        const detection2Ms = close2.at - move2;
        console.log(
          JSON.stringify({
            test: 'vip-feed',
            heartbeatMs: EVERY_MS,
            startupMs,
            killToVipOnLb2Ms: move1 - killedAt,
            move1: {
              detectionMs: detection1Ms,
              reason: close1!.reason || `code ${close1!.code}`,
              resumedAfterMoveMs: resumed1 - move1,
            },
            killToVipBackOnLb1Ms: move2 - killedAt,
            move2: {
              detectionMs: detection2Ms,
              timersLateMs,
              reason: close2.reason || `code ${close2.code}`,
              resumedAfterMoveMs: resumed2 - move2,
            },
            vipChanges: vipWatch.changes.map((c) => `${c.holder}@${c.at - killedAt}`),
            closes: closes.length,
            reconnects: sub.reconnects,
            assignments: positions.length,
            queued,
            acknowledged: acknowledged.size,
            requests: client.requests,
            retries: client.retries,
            statuses: client.statuses,
          }),
        );
        // Within two heartbeat intervals of each move (move 1: the close comes before the VIP moves).
        expect(detection1Ms).toBeLessThanOrEqual(2 * EVERY_MS + SLACK_MS);
        expect(detection2Ms).toBeLessThanOrEqual(2 * EVERY_MS + SLACK_MS + timersLateMs);
        expect(client.failures, 'requests that failed after their retries').toEqual([]);
        expect(acknowledged.size).toBe(queued);
        // lb2 took the VIP, then went back to BACKUP when lb1 took it back.
        expect(out.slice(out.indexOf('keepalived lb2: MASTER'))).toContain('keepalived lb2: BACKUP');
        expect(vipWatch.holder(), 'the VIP on the MASTER again').toBe('lb1');
      } finally {
        loading = false;
        sub.close();
        await loaded.catch(() => undefined);
        await vipWatch.stop();
      }

      // Ctrl-C: everything stops and every namespace of the run is deleted.
      child.kill('SIGINT');
      expect(await exited, out.slice(-3000)).toBe(0);
      expect(namespacesOf(runId!)).toEqual([]);
      console.log(JSON.stringify({ test: 'vip-feed', wallMs: Date.now() - started }));
    },
    90_000,
  );
});
