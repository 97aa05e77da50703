/**
 * Run-time backend membership: API instances heartbeat into Redis (`sb:instances`), the sync loop
 * adds/removes HAProxy servers through the runtime API, no config file is edited.
 * - HAProxy starts with an empty `api` backend; two HTTP instances register and appear, health
 *   checked UP; requests through HAProxy reach both in turn (round-robin).
 * - One instance crashes (its heartbeat stops and its port closes): HAProxy's check takes it out
 *   at once, the registry removes it within ~3-4 s, and requests made meanwhile all succeed
 *   (retries + redispatch).
 * - A graceful deregistration is removed at the next sync.
 */
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  INSTANCES_KEY,
  instanceMember,
  LIVE_WINDOW_MS,
  liveInstances,
  type Registration,
  registerInstance,
} from '../../src/adapters/redis/instance-registry.ts';
import { type BackendSync, serverName, syncBackends } from '../../src/topology/haproxy/backend-sync.ts';
import { ensureSelfSignedCert, writeHaproxyConfig } from '../../src/topology/haproxy/config.ts';
import { type HaproxyHandle, startHaproxy } from '../../src/topology/haproxy/process.ts';
import { type HaproxyRuntime, haproxyRuntime } from '../../src/topology/haproxy/runtime.ts';
import { freePort, type RedisServerHandle, startRedisServer } from '../../src/topology/redis-server.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { httpGet, startTinyHttp, tempDir } from './helpers.ts';

type Tiny = Awaited<ReturnType<typeof startTinyHttp>>;

let tmp: { dir: string; remove(): Promise<void> };
let redisSrv: RedisServerHandle;
let redis: Redis;
let hp: HaproxyHandle;
let rt: HaproxyRuntime;
let httpPort: number;
let sync: BackendSync;
const servers: Tiny[] = [];
const registrations: Registration[] = [];
const syncErrors: unknown[] = [];
const metrics: Record<string, number> = {};

beforeAll(async () => {
  tmp = await tempDir('registry');
  redisSrv = await startRedisServer();
  redis = new Redis(redisSrv.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  const runDir = path.join(tmp.dir, 'run');
  httpPort = await freePort();
  const configPath = await writeHaproxyConfig({
    runDir,
    tlsPem: await ensureSelfSignedCert(path.join(tmp.dir, 'certs')),
    redisCheckPassword: 'unused',
    httpPort,
    tlsPort: await freePort(),
    statsPort: await freePort(),
    redisPort: await freePort(),
    apiCheckInter: '200ms',
    checkTimeout: '500ms',
  });
  hp = await startHaproxy({ configPath, socket: path.join(runDir, 'haproxy.sock') });
  rt = haproxyRuntime(hp.socket);
});

afterAll(async () => {
  console.log(JSON.stringify({ test: 'runtime-registry', ...metrics }));
  await sync?.stop();
  for (const r of registrations) await r.stop({ deregister: false }).catch(() => undefined);
  for (const s of servers) await s.close().catch(() => undefined);
  redis?.disconnect();
  await hp?.stop();
  await redisSrv?.stop();
  await tmp?.remove();
});

describe('registry + runtime API', () => {
  it('starts with an empty api backend', async () => {
    expect(await rt.listServers('api')).toEqual([]);
    expect((await httpGet('127.0.0.1', httpPort, '/x')).status).toBe(503);
  });

  it('adds registered instances to the backend and balances round-robin over them', async () => {
    servers.push(await startTinyHttp('instance-a'), await startTinyHttp('instance-b'));
    for (const s of servers)
      registrations.push(await registerInstance(redis, { host: '127.0.0.1', port: s.port }));
    const members = await redis.zrange(INSTANCES_KEY, 0, -1);
    expect(members.sort()).toEqual(servers.map((s) => `127.0.0.1:${s.port}`).sort());

    const t0 = Date.now();
    sync = syncBackends(redis, rt, {
      intervalMs: 250,
      server: { inter: '200ms' },
      onError: (e) => syncErrors.push(e),
    });
    await waitFor(
      'both servers UP in backend api',
      async () => {
        const list = await rt.listServers('api');
        return list.length === 2 && list.every((s) => s.status === 'UP');
      },
      { timeoutMs: 5000 },
    );
    metrics.addedAndUpMs = Date.now() - t0;
    const names = (await rt.listServers('api')).map((s) => s.name).sort();
    expect(names).toEqual(servers.map((s) => serverName({ host: '127.0.0.1', port: s.port })).sort());

    const seen: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await httpGet('127.0.0.1', httpPort, '/whoami');
      expect(r.status).toBe(200);
      seen.push(r.body);
    }
    const a = seen.filter((b) => b === 'instance-a').length;
    const b = seen.filter((b) => b === 'instance-b').length;
    expect(a + b).toBe(20);
    expect(Math.abs(a - b)).toBeLessThanOrEqual(1);
    // Strict alternation: round-robin over two equal-weight servers.
    for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toBe(seen[i - 1]);
  });

  it('removes a crashed instance within ~3-4 s while requests keep succeeding', async () => {
    const [regA] = registrations;
    const [srvA] = servers;
    if (!regA || !srvA) throw new Error('setup');
    const nameA = serverName(regA.instance);
    // Crash: no more heartbeats, no graceful deregistration, and the port closes.
    await regA.stop({ deregister: false });
    const t0 = Date.now();
    // Its last heartbeat, by Redis's clock (this machine's): removal comes a live window after it.
    const lastBeat = Number(await redis.zscore(INSTANCES_KEY, instanceMember(regA.instance)));
    await srvA.close();

    let ok = 0;
    let failed = 0;
    let removedAt: number | undefined;
    // Bounded load: at most 6 s of requests, one every 20 ms.
    while (Date.now() - t0 < 6000) {
      try {
        // A request sent to the crashed instance before its check fails is retried by HAProxy
        // (on the same server first, a second apart, then on another): give it the time to.
        const r = await httpGet('127.0.0.1', httpPort, '/load', 5000);
        if (r.status === 200 && r.body === 'instance-b') ok++;
        else failed++;
      } catch {
        failed++;
      }
      if (removedAt === undefined && !(await rt.listServers('api')).some((s) => s.name === nameA)) {
        removedAt = Date.now() - t0;
      }
      if (removedAt !== undefined && Date.now() - t0 > removedAt + 500) break;
      await sleep(20);
    }
    metrics.crashedInstanceRemovedMs = removedAt ?? -1;
    metrics.requestsDuringRemoval = ok + failed;
    metrics.failedRequestsDuringRemoval = failed;
    expect(removedAt, 'server removed from the backend').toBeDefined();
    // Only once the last heartbeat (sent up to 1 s before the crash, later on a loaded machine)
    // is older than the live window (3 s).
    expect(removedAt! + t0 - lastBeat).toBeGreaterThanOrEqual(LIVE_WINDOW_MS - 100);
    expect(removedAt).toBeLessThan(4500);
    expect(failed).toBe(0);
    expect(ok).toBeGreaterThan(5);
    const live = await liveInstances(redis);
    expect(live.map((i) => i.port)).toEqual([servers[1]?.port]);
  });

  it('removes a gracefully deregistered instance at the next sync', async () => {
    const c = await startTinyHttp('instance-c');
    servers.push(c);
    const regC = await registerInstance(redis, { host: '127.0.0.1', port: c.port });
    registrations.push(regC);
    const nameC = serverName(regC.instance);
    await waitFor('instance-c added', async () =>
      (await rt.listServers('api')).some((s) => s.name === nameC && s.status === 'UP'),
    );
    const t0 = Date.now();
    await regC.stop(); // deregister
    await waitFor(
      'instance-c removed',
      async () => !(await rt.listServers('api')).some((s) => s.name === nameC),
      {
        timeoutMs: 2000,
      },
    );
    metrics.gracefulRemovalMs = Date.now() - t0;
    expect((await httpGet('127.0.0.1', httpPort, '/x')).body).toBe('instance-b');
    expect(syncErrors).toEqual([]);
  });
});
