/**
 * A fleet of Switchboard processes behind one real HAProxy rendered from the deployment's template
 * (infra/haproxy/haproxy.cfg.tmpl): its `api` backend starts empty and the registry sync
 * (`syncBackends`, run here) fills it with the API instances, which register themselves
 * (ADVERTISE_ADDRESS=auto). Resolves once every API instance is UP in the backend.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type BackendSync, serverName, syncBackends } from '../../src/topology/haproxy/backend-sync.ts';
import {
  ensureSelfSignedCert,
  type HaproxyConfigOptions,
  writeHaproxyConfig,
} from '../../src/topology/haproxy/config.ts';
import { type HaproxyHandle, startHaproxy } from '../../src/topology/haproxy/process.ts';
import { type HaproxyRuntime, haproxyRuntime } from '../../src/topology/haproxy/runtime.ts';
import { freePort } from '../../src/topology/redis-server.ts';
import { Fleet, type FleetOptions } from './fleet.ts';
import { waitFor } from './wait.ts';

export interface FleetBehindHaproxy {
  readonly fleet: Fleet;
  readonly haproxy: HaproxyHandle;
  readonly runtime: HaproxyRuntime;
  readonly sync: BackendSync;
  /** HAProxy's HTTP frontend, http://127.0.0.1:<port>. */
  readonly frontend: string;
  /** What the sync reported as errors. */
  readonly syncErrors: string[];
  /** The backend's server name of an API process. */
  serverOf(port: number): string;
  stop(): Promise<void>;
}

export async function startFleetBehindHaproxy(opts: {
  /** The fleet (its API processes get ADVERTISE_ADDRESS=auto on top of `apiEnv`). */
  readonly fleet: FleetOptions;
  /** Renderer options beyond the ports, paths and password (check intervals). */
  readonly haproxy?: Pick<HaproxyConfigOptions, 'apiCheckInter' | 'checkTimeout'>;
  /** The sync's options; its defaults are the deployment's (every second). */
  readonly sync?: Omit<Parameters<typeof syncBackends>[2], 'onError'>;
}): Promise<FleetBehindHaproxy> {
  const tmpDir = await mkdtemp(path.join(os.tmpdir(), 'sb-fleet-lb-'));
  const fleet = await Fleet.start({
    ...opts.fleet,
    apiEnv: { ADVERTISE_ADDRESS: 'auto', ...opts.fleet.apiEnv },
  });
  const undo: (() => Promise<unknown>)[] = [
    () => fleet.stop(),
    () => rm(tmpDir, { recursive: true, force: true }),
  ];
  const stop = async () => {
    for (const u of [...undo].reverse()) await u().catch(() => undefined);
  };
  try {
    const runDir = path.join(tmpDir, 'run');
    const httpPort = await freePort();
    const configPath = await writeHaproxyConfig({
      runDir,
      tlsPem: await ensureSelfSignedCert(path.join(tmpDir, 'certs')),
      redisCheckPassword: 'unused',
      httpPort,
      tlsPort: await freePort(),
      statsPort: await freePort(),
      redisPort: await freePort(),
      ...opts.haproxy,
    });
    const haproxy = await startHaproxy({ configPath, socket: path.join(runDir, 'haproxy.sock') });
    undo.push(() => haproxy.stop());
    const runtime = haproxyRuntime(haproxy.socket);
    if ((await runtime.listServers('api')).length > 0)
      throw new Error('the api backend does not start empty');
    const syncErrors: string[] = [];
    const sync = syncBackends(fleet.client, runtime, {
      ...opts.sync,
      onError: (err) => syncErrors.push(String(err)),
    });
    undo.push(() => sync.stop());
    const serverOf = (port: number) => serverName({ host: '127.0.0.1', port });
    const wanted = fleet.api.map((a) => serverOf(a.port!)).sort();
    await waitFor(
      `the ${wanted.length} API instances UP in the api backend`,
      async () => {
        const list = await runtime.listServers('api');
        return (
          JSON.stringify(list.map((s) => s.name).sort()) === JSON.stringify(wanted) &&
          list.every((s) => s.status === 'UP')
        );
      },
      { timeoutMs: 15_000, everyMs: 100 },
    );
    return {
      fleet,
      haproxy,
      runtime,
      sync,
      frontend: `http://127.0.0.1:${httpPort}`,
      syncErrors,
      serverOf,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
