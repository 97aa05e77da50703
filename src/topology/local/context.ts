/**
 * One run of the local topology launcher (`npm run topology`, src/cli/launch.ts): its options,
 * what it prints, and whether it is stopping. Shared by both shapes (a single HAProxy on
 * loopback, the VRRP pair in network namespaces) and by the part that runs inside the app
 * namespace.
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { type RedisClusterHandle, startRedisCluster } from '../redis-cluster.ts';
import { newCredentials, writePrivateFile } from '../redis-users.ts';

export interface LocalTopologyOptions {
  readonly api: number;
  readonly projectors: number;
  readonly dispatchers: number;
  /** Ports on 127.0.0.1; 0 asks for a free one (the single HAProxy picks them at start). */
  httpPort: number;
  tlsPort: number;
  statsPort: number;
  redisPort: number;
  readonly dataDir: string;
  /** Start everything, send one command through HAProxy, print the URLs as one JSON line, stop. */
  readonly check: boolean;
}

/** Thrown by start-up steps once a stop was asked for. */
export class Aborted extends Error {}

export class LaunchContext {
  /** Set once a stop was asked for: start-up steps end, exits are expected, restarts stop. */
  stopping = false;

  constructor(readonly opts: LocalTopologyOptions) {}

  /** One line for the user; nothing with --check (its output is one JSON line). */
  readonly say = (line: string): void => {
    if (!this.opts.check) process.stdout.write(`${line}\n`);
  };

  /** Throws Aborted once a stop was asked for. */
  checkpoint(): void {
    if (this.stopping) throw new Aborted();
  }

  get logsDir(): string {
    return path.join(this.opts.dataDir, 'logs');
  }

  /** Polls `check` every 250 ms until it is true; errors count as false, except Aborted. */
  async waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        if (await check()) return true;
      } catch (err) {
        if (err instanceof Aborted) throw err;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    return false;
  }

  /** Where the run's Redis passwords are kept (owner-only): the Switchboard user's and the admin's. */
  get credentialsFile(): string {
    return path.join(this.opts.dataDir, 'redis-credentials.json');
  }

  /**
   * A new Redis Cluster under <data dir>/cluster (3 masters, 3 replicas, AOF on), with new
   * passwords for the Switchboard user and the admin, kept in <data dir>/redis-credentials.json.
   */
  startFreshCluster(args?: string[]): Promise<RedisClusterHandle> {
    // Every launch starts a new cluster: the local topology is for trying and testing, not for keeping data.
    const dataDir = path.join(this.opts.dataDir, 'cluster');
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(this.logsDir, { recursive: true });
    const credentials = newCredentials();
    writePrivateFile(this.credentialsFile, `${JSON.stringify(credentials, null, 2)}\n`);
    return startRedisCluster({ dataDir, credentials, ...(args ? { args } : {}) });
  }
}

/** A topology that is up: where it answers, what it tells the user, how it stops. */
export interface LaunchedTopology {
  readonly apiUrl: string;
  /** What --check prints after `ok` and `status`. */
  readonly report: Readonly<Record<string, unknown>>;
  /** The lines that say where everything is. */
  readonly banner: readonly string[];
  stop(): Promise<void>;
}

/**
 * --check: one command through the API, then everything stops; prints one JSON line
 * ({ ok, status, ...report }) and exits 0 when the command was accepted (201), 1 otherwise.
 */
export async function checkAndExit(topology: LaunchedTopology): Promise<never> {
  const r = await fetch(`${topology.apiUrl}/v1/workspaces/default/agents`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `topology-check-${Date.now()}` },
    body: JSON.stringify({ id: `check-${Date.now()}`, skills: ['English'] }),
  }).catch(() => undefined);
  const status = r?.status ?? 0;
  const ok = status === 201;
  await topology.stop();
  process.stdout.write(`${JSON.stringify({ ok, status, ...topology.report })}\n`);
  process.exit(ok ? 0 : 1);
}
