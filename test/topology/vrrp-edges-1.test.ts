/**
 * VRRP when the MASTER's HAProxy is dead and no API instance is up anywhere. The check was one
 * vrrp_script (HAProxy alive and its /ready 200) with one weight (-20): the MASTER (101 -> 81)
 * kept the VIP over the BACKUP (100 -> 80, /ready 503 with no server up), so clients got
 * "connection refused" on the VIP instead of the BACKUP HAProxy's 503
 * `/problems/no-instance-available`. Now the liveness check weighs -50 and /ready -20: a host whose
 * HAProxy is dead loses to one whose HAProxy answers, and the VIP goes to the BACKUP.
 *
 *   sbtest-cl-XXXX (client 10.232.0.50) ──┐
 *   sbtest-lb1-XXXX (10.232.0.11) ────────┼── br0 in sbtest-br-XXXX, VIP 10.232.0.100/24
 *   sbtest-lb2-XXXX (10.232.0.12) ────────┘
 *
 * Each lb namespace runs HAProxy (master-worker, no API server) and keepalived rendered as the
 * launcher renders it (probe http://127.0.0.1:8404/ready); nothing restarts the killed HAProxy.
 * Addresses exist only inside these namespaces. Requires root and `ip netns` (skipped otherwise).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSelfSignedCert, writeHaproxyConfig } from '../../src/topology/haproxy/config.ts';
import { type HaproxyHandle, startHaproxy } from '../../src/topology/haproxy/process.ts';
import {
  keepalivedArgs,
  newVrrpPassword,
  writeKeepalivedConfig,
} from '../../src/topology/keepalived/config.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { execFileP, tempDir } from './helpers.ts';

function canRun(): { ok: boolean; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'not Linux' };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not root (ip netns / VRRP need CAP_NET_ADMIN)' };
  for (const bin of ['ip', 'haproxy', 'keepalived']) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    } catch {
      return { ok: false, reason: `${bin} not installed` };
    }
  }
  const probe = `sbtest-probe-${randomBytes(3).toString('hex')}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore' });
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  } catch {
    return { ok: false, reason: '`ip netns add` does not work here' };
  }
  return { ok: true, reason: '' };
}

const env = canRun();
const suffix = randomBytes(3).toString('hex');
const NS = {
  br: `sbtest-br-${suffix}`,
  lb1: `sbtest-lb1-${suffix}`,
  lb2: `sbtest-lb2-${suffix}`,
  cl: `sbtest-cl-${suffix}`,
};
const VIP = '10.232.0.100';
const ADDR = { lb1: '10.232.0.11', lb2: '10.232.0.12', cl: '10.232.0.50' } as const;

let tmp: { dir: string; remove(): Promise<void> } | undefined;
const children: ChildProcess[] = [];
const haproxies: Partial<Record<'lb1' | 'lb2', HaproxyHandle>> = {};
const createdNs: string[] = [];
const logs: Record<'lb1' | 'lb2', string[]> = { lb1: [], lb2: [] };

async function ip(...args: string[]): Promise<string> {
  const { stdout } = await execFileP('ip', args, { timeout: 10_000 });
  return stdout;
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

async function vipOn(ns: string): Promise<boolean> {
  const out = await ip('-n', ns, '-4', '-o', 'addr', 'show', 'dev', 'eth0');
  return out.includes(`inet ${VIP}/`);
}

const dump = () =>
  `\n--- keepalived lb1 ---\n${logs.lb1.join('').slice(-3000)}\n--- keepalived lb2 ---\n${logs.lb2.join('').slice(-3000)}`;

/** One request from the client namespace to the VIP: status, content type and body, or the error. */
async function requestVip(): Promise<{ status?: number; type?: string; body?: string; err?: string }> {
  const js = `
const http = require('node:http');
const req = http.get(process.argv[1], { agent: false, timeout: 2000 }, (res) => {
  let body = '';
  res.on('data', (c) => { body += c; });
  res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, type: res.headers['content-type'], body })));
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (e) => console.log(JSON.stringify({ err: String(e.code || e.message) })));
`;
  const { stdout } = await execFileP(
    'ip',
    [
      'netns',
      'exec',
      NS.cl,
      process.execPath,
      '-e',
      js,
      `http://${VIP}:8000/v1/workspaces/vrrp-edges/agents`,
    ],
    { timeout: 10_000 },
  );
  return JSON.parse(stdout.trim()) as { status?: number; type?: string; body?: string; err?: string };
}

function cleanupSync(): void {
  for (const c of children) killGroup(c);
  for (const ns of createdNs) {
    try {
      const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
      for (const pid of pids.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      /* already removed */
    }
  }
}

async function cleanup(): Promise<void> {
  for (const h of Object.values(haproxies)) h?.kill('SIGKILL');
  for (const c of children) killGroup(c);
  for (const ns of createdNs) {
    const pids = await ip('netns', 'pids', ns).catch(() => '');
    for (const pid of pids.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  await sleep(200);
  for (const ns of createdNs) await ip('netns', 'del', ns).catch(() => undefined);
  createdNs.length = 0;
  await tmp?.remove();
}

describe('VRRP with no API instance up: a dead HAProxy loses to a live one', () => {
  beforeAll(async () => {
    if (!env.ok) return;
    process.once('exit', cleanupSync);
    tmp = await tempDir('vrrp-edges');
    try {
      for (const ns of Object.values(NS)) {
        await ip('netns', 'add', ns);
        createdNs.push(ns);
        await ip('-n', ns, 'link', 'set', 'lo', 'up');
      }
      await ip('-n', NS.br, 'link', 'add', 'br0', 'type', 'bridge');
      await ip('-n', NS.br, 'link', 'set', 'br0', 'up');
      for (const key of ['lb1', 'lb2', 'cl'] as const) {
        const ns = NS[key];
        const port = `p-${key}`;
        await ip('-n', NS.br, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
        await ip('-n', NS.br, 'link', 'set', port, 'master', 'br0');
        await ip('-n', NS.br, 'link', 'set', port, 'up');
        await ip('-n', ns, 'addr', 'add', `${ADDR[key]}/24`, 'dev', 'eth0');
        await ip('-n', ns, 'link', 'set', 'eth0', 'up');
      }
      const pem = await ensureSelfSignedCert(path.join(tmp.dir, 'certs'));
      const vrrpPassword = newVrrpPassword();
      for (const [key, role, self, peer] of [
        ['lb1', 'MASTER', ADDR.lb1, ADDR.lb2],
        ['lb2', 'BACKUP', ADDR.lb2, ADDR.lb1],
      ] as const) {
        const ns = NS[key];
        const dir = path.join(tmp.dir, key);
        // No API server: /ready answers 503 and the API frontends 503 no-instance-available.
        const configPath = await writeHaproxyConfig({
          runDir: dir,
          tlsPem: pem,
          redisCheckPassword: 'unused',
          bindAddress: '0.0.0.0',
          statsBindAddress: '127.0.0.1',
        });
        haproxies[key] = await startHaproxy({
          configPath,
          socket: path.join(dir, 'haproxy.sock'),
          prefix: ['ip', 'netns', 'exec', ns],
          args: ['-W'],
        });
        const pidfile = path.join(dir, 'haproxy.pid');
        await waitFor(
          `${key} haproxy pidfile`,
          async () => existsSync(pidfile) && (await readFile(pidfile, 'utf8')).trim() !== '',
        );
        // As src/topology/local/load-balancers.ts renders it.
        const kaConf = await writeKeepalivedConfig(
          {
            role,
            interface: 'eth0',
            vip: `${VIP}/24`,
            unicastSrcIp: self,
            unicastPeers: [peer],
            haproxyPidfile: pidfile,
            haproxyProbe: 'http://127.0.0.1:8404/ready',
            routerId: `sb_edges_${key}`,
            authPass: vrrpPassword,
          },
          path.join(dir, 'keepalived.conf'),
        );
        const ka = spawn('ip', ['netns', 'exec', ns, ...keepalivedArgs(kaConf, dir)], {
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.push(ka);
        const keep = (b: Buffer) => {
          logs[key].push(b.toString());
          if (logs[key].length > 400) logs[key].shift();
        };
        ka.stdout?.on('data', keep);
        ka.stderr?.on('data', keep);
      }
    } catch (err) {
      await cleanup();
      throw err;
    }
  });

  afterAll(async () => {
    if (!env.ok) return;
    await cleanup();
    const left = (await ip('netns', 'list').catch(() => '')).split('\n').filter((l) => l.includes(suffix));
    expect(left, 'namespaces removed').toEqual([]);
  });

  it.skipIf(!env.ok)(
    `the MASTER's HAProxy killed, no API instance up: the VIP goes to the BACKUP, which answers 503 no-instance-available${env.ok ? '' : ` (skipped: ${env.reason})`}`,
    async () => {
      // 1. The VIP on lb1, and lb2's /ready check has failed (no API server behind it either).
      await waitFor('VIP on lb1', () => vipOn(NS.lb1), { timeoutMs: 15_000 }).catch((e: Error) => {
        throw new Error(e.message + dump());
      });
      await waitFor('lb2 check failed', async () => /failed/i.test(logs.lb2.join('')), {
        timeoutMs: 15_000,
      }).catch((e: Error) => {
        throw new Error(e.message + dump());
      });
      const before = await requestVip();
      expect(before.status, JSON.stringify(before)).toBe(503);

      // 2. lb1's HAProxy dies and stays down.
      haproxies.lb1?.kill('SIGKILL');

      // 3. The VIP moves to lb2 (detection 2-4 s + master-down timer ~3.6 s) and stays there.
      await waitFor('VIP on lb2', () => vipOn(NS.lb2), { timeoutMs: 15_000, everyMs: 100 }).catch(
        (e: Error) => {
          throw new Error(e.message + dump());
        },
      );
      await waitFor('VIP gone from lb1', async () => !(await vipOn(NS.lb1)), { timeoutMs: 5000 });
      await sleep(4000);
      expect(await vipOn(NS.lb2), dump()).toBe(true);
      expect(await vipOn(NS.lb1), dump()).toBe(false);

      // 4. The client gets lb2 HAProxy's documented answer, not "connection refused".
      const after = await waitFor(
        'an answer through the VIP',
        async () => {
          const r = await requestVip();
          return r.status === undefined ? false : r;
        },
        { timeoutMs: 5000, everyMs: 200 },
      );
      expect(after.status).toBe(503);
      expect(after.type).toBe('application/problem+json');
      expect((JSON.parse(after.body ?? '{}') as { type?: string }).type).toBe(
        '/problems/no-instance-available',
      );
    },
    60_000,
  );
});
