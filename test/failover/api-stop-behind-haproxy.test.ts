/**
 * An API instance stopped (SIGTERM) behind HAProxy while commands keep coming, on HAProxy
 * connections it keeps alive and reuses (infra/haproxy/haproxy.cfg.tmpl). Two API instances that
 * register for the load balancer, a projector and a dispatcher; one real HAProxy whose `api`
 * backend follows the registry at the deployment's sync interval (1 s). Eight keep-alive clients
 * POST contacts without an Idempotency-Key (which HAProxy must never replay) and never retry.
 *
 * Proves: every request is answered 201 or 202, none 5xx and none cut, while one instance stops:
 * it leaves the registry, keeps serving until HAProxy has taken it out of the backend, and only
 * then closes its connections. The instance exits 0 and the other takes the whole load.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackendSync, serverName, syncBackends } from '../../src/topology/haproxy/backend-sync.ts';
import { ensureSelfSignedCert, writeHaproxyConfig } from '../../src/topology/haproxy/config.ts';
import { type HaproxyHandle, startHaproxy } from '../../src/topology/haproxy/process.ts';
import { type HaproxyRuntime, haproxyRuntime } from '../../src/topology/haproxy/runtime.ts';
import { freePort } from '../../src/topology/redis-server.ts';
import { Fleet } from '../support/fleet.ts';
import { sleep, waitFor } from '../support/wait.ts';

const CLIENTS = 8;
const LOAD_MS = 6000;
const STOP_AT_MS = 2000;

describe('an API instance stopped behind HAProxy under load', () => {
  let fleet: Fleet;
  let tmpDir: string | undefined;
  let haproxy: HaproxyHandle | undefined;
  let runtime: HaproxyRuntime;
  let sync: BackendSync | undefined;
  let httpPort: number;
  const syncErrors: string[] = [];
  const ws = `stop-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    tmpDir = await mkdtemp(path.join(os.tmpdir(), 'sb-stop-lb-'));
    fleet = await Fleet.start({
      api: 2,
      projector: 1,
      dispatcher: 1,
      env: { WORKSPACES: ws },
      apiEnv: { ADVERTISE_ADDRESS: 'auto' },
    });
    const runDir = path.join(tmpDir, 'run');
    httpPort = await freePort();
    const configPath = await writeHaproxyConfig({
      runDir,
      tlsPem: await ensureSelfSignedCert(path.join(tmpDir, 'certs')),
      redisCheckPassword: 'unused',
      httpPort,
      tlsPort: await freePort(),
      statsPort: await freePort(),
      redisPort: await freePort(),
    });
    haproxy = await startHaproxy({ configPath, socket: path.join(runDir, 'haproxy.sock') });
    runtime = haproxyRuntime(haproxy.socket);
    // The deployment's sync: every second (src/topology/local/single.ts runs it with its defaults).
    sync = syncBackends(fleet.client, runtime, { onError: (err) => syncErrors.push(String(err)) });
    const wanted = fleet.api.map((a) => serverName({ host: '127.0.0.1', port: a.port! })).sort();
    await waitFor(
      'both API instances UP in the api backend',
      async () => {
        const list = await runtime.listServers('api');
        return (
          JSON.stringify(list.map((s) => s.name).sort()) === JSON.stringify(wanted) &&
          list.every((s) => s.status === 'UP')
        );
      },
      { timeoutMs: 15_000, everyMs: 100 },
    );
  }, 60_000);

  afterAll(async () => {
    await sync?.stop().catch(() => undefined);
    await haproxy?.stop().catch(() => undefined);
    await fleet?.stop();
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
  }, 60_000);

  it('answers every command 201 or 202 while the instance leaves, and the instance exits 0', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
    const statuses = new Map<string, number>();
    const count = (what: string) => statuses.set(what, (statuses.get(what) ?? 0) + 1);
    const post = (id: string) =>
      new Promise<number>((resolve, reject) => {
        const body = JSON.stringify({ id, skills: ['s'] });
        const req = http.request(
          {
            host: '127.0.0.1',
            port: httpPort,
            path: `/v1/workspaces/${ws}/contacts`,
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
        req.on('error', reject);
        req.end(body);
      });
    const victim = fleet.api[0]!;
    const t0 = Date.now();
    let stopped: Promise<unknown> | undefined;
    let n = 0;
    const client = async () => {
      while (Date.now() - t0 < LOAD_MS) {
        if (!stopped && Date.now() - t0 >= STOP_AT_MS) stopped = victim.stop(20_000);
        try {
          count(String(await post(`c-${++n}`)));
        } catch (err) {
          count(`error: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    agent.destroy();
    const exit = await stopped;
    const answered = Object.fromEntries(statuses);
    console.log(JSON.stringify({ suite: 'failover/api-stop-behind-haproxy', answered, exit }));
    expect(exit).toBe(0);
    for (const what of statuses.keys())
      expect(['201', '202'], `${what}: ${JSON.stringify(answered)}`).toContain(what);
    expect(statuses.get('201') ?? 0).toBeGreaterThan(100);
    expect(
      (await runtime.listServers('api')).map((s) => s.name),
      'the stopped instance left the backend',
    ).toEqual([serverName({ host: '127.0.0.1', port: fleet.api[1]!.port! })]);
    expect(syncErrors).toEqual([]);
    await sleep(0);
  }, 60_000);
});
