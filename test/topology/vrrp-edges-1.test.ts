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
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, waitFor } from '../support/wait.ts';
import { execFileP } from './helpers.ts';
import { VrrpPair, vrrpEnv } from './vrrp-pair.ts';

const env = vrrpEnv();
const pair = new VrrpPair('10.232.0.0/24');
const NS = pair.ns;
const VIP = pair.vip;

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

describe('VRRP with no API instance up: a dead HAProxy loses to a live one', () => {
  beforeAll(async () => {
    if (!env.ok) return;
    // No API server: /ready answers 503 and the API frontends 503 no-instance-available.
    // keepalived as src/topology/local/load-balancers.ts renders it.
    await pair.start({
      tempName: 'vrrp-edges',
      haproxyProbe: 'http://127.0.0.1:8404/ready',
      routerIdPrefix: 'sb_edges_',
    });
  });

  afterAll(async () => {
    if (!env.ok) return;
    await pair.cleanup();
    expect(await pair.leftNamespaces(), 'namespaces removed').toEqual([]);
  });

  it.skipIf(!env.ok)(
    `the MASTER's HAProxy killed, no API instance up: the VIP goes to the BACKUP, which answers 503 no-instance-available${env.ok ? '' : ` (skipped: ${env.reason})`}`,
    async () => {
      // 1. The VIP on lb1, and lb2's /ready check has failed (no API server behind it either).
      await waitFor('VIP on lb1', () => pair.vipOn(NS.lb1), { timeoutMs: 15_000 }).catch((e: Error) => {
        throw new Error(e.message + pair.dump());
      });
      await waitFor('lb2 check failed', async () => /failed/i.test(pair.keepalivedLogs.lb2.join('')), {
        timeoutMs: 15_000,
      }).catch((e: Error) => {
        throw new Error(e.message + pair.dump());
      });
      const before = await requestVip();
      expect(before.status, JSON.stringify(before)).toBe(503);

      // 2. lb1's HAProxy dies and stays down.
      pair.haproxies.lb1?.kill('SIGKILL');

      // 3. The VIP moves to lb2 (detection 2-4 s + master-down timer ~3.6 s) and stays there.
      await waitFor('VIP on lb2', () => pair.vipOn(NS.lb2), { timeoutMs: 15_000, everyMs: 100 }).catch(
        (e: Error) => {
          throw new Error(e.message + pair.dump());
        },
      );
      await waitFor('VIP gone from lb1', async () => !(await pair.vipOn(NS.lb1)), { timeoutMs: 5000 });
      await sleep(4000);
      expect(await pair.vipOn(NS.lb2), pair.dump()).toBe(true);
      expect(await pair.vipOn(NS.lb1), pair.dump()).toBe(false);

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
