/**
 * An HAProxy in front of a bench's child server, rendered from the template the deployment runs
 * (infra/haproxy/haproxy.cfg.tmpl, src/topology/haproxy/config.ts) with that server as the `api`
 * backend's one static server: what a request to Switchboard goes through in the topology.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ensureSelfSignedCert, writeHaproxyConfig } from '../../topology/haproxy/config.ts';
import { startHaproxy } from '../../topology/haproxy/process.ts';
import { runtimeCommand } from '../../topology/haproxy/runtime.ts';
import { freePort } from '../../topology/redis-server.ts';
import { type ChildServer, waitAnswering } from './http.ts';

/** The HAProxy in front: a child server, with the connections it holds at most. */
export interface HaproxyFront extends ChildServer {
  /** HAProxy's `Maxconn` (from `show info`): derived from its descriptor limit, `Ulimit-n`. */
  readonly maxconn: number;
  readonly ulimitN: number;
}

/** Starts the HAProxy and waits until the server answers GET /health through it (at most 20 s). */
export async function haproxyInFront(server: ChildServer): Promise<HaproxyFront> {
  const runDir = await mkdtemp(path.join(os.tmpdir(), 'sb-bench-haproxy-'));
  const port = await freePort();
  const configPath = await writeHaproxyConfig({
    runDir,
    tlsPem: await ensureSelfSignedCert(runDir),
    // No Redis behind its Redis frontend: the check user is never used.
    redisCheckPassword: 'unused',
    httpPort: port,
    tlsPort: await freePort(),
    statsPort: await freePort(),
    redisPort: await freePort(),
    apiServers: [{ host: '127.0.0.1', port: server.port }],
  });
  const socket = path.join(runDir, 'haproxy.sock');
  const handle = await startHaproxy({ configPath, socket });
  const stop = async () => {
    await handle.stop();
    await rm(runDir, { recursive: true, force: true });
  };
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitAnswering(
      `${base}/health`,
      20_000,
      () => `${server.base} did not answer GET /health through HAProxy within 20 s`,
    );
    const info = await runtimeCommand(socket, 'show info');
    const field = (name: string) =>
      Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(info)?.[1] ?? Number.NaN);
    return { base, port, stop, maxconn: field('Maxconn'), ulimitN: field('Ulimit-n') };
  } catch (err) {
    await stop();
    throw err;
  }
}
