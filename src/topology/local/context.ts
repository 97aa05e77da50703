/**
 * One run of the local topology launcher (`npm run topology`, src/cli/launch.ts): its options,
 * what it prints, and whether it is stopping. Shared by both shapes (a single HAProxy on
 * loopback, the VRRP pair in network namespaces) and by the part that runs inside the app
 * namespace.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { keptCluster, type RedisClusterHandle, startRedisCluster } from '../redis-cluster.ts';
import { shellLine } from '../redis-server.ts';
import { loadOrCreateCredentials } from '../redis-users.ts';

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
  /** Delete the cluster kept in the data directory (and its passwords) before starting. */
  readonly fresh?: boolean;
  /** First delay before a dead HAProxy is started again (ms; then doubled, at most 30 s). */
  readonly haproxyRestartDelayMs?: number;
  /** The launcher's `/status` port on 127.0.0.1; undefined: 8099 or the next free one (status.ts). */
  readonly statusPort?: number;
}

/** The launcher's ports on 127.0.0.1, each with the option that gives it. */
export const PORT_OPTIONS = {
  httpPort: '--http-port',
  tlsPort: '--tls-port',
  statsPort: '--stats-port',
  redisPort: '--redis-port',
} as const;
export const PORTS = Object.keys(PORT_OPTIONS) as (keyof typeof PORT_OPTIONS)[];

/** The ports the launcher was given (0, any free one, is none): the status server's scan passes them over. */
export function givenPorts(o: LocalTopologyOptions): number[] {
  return PORTS.map((k) => o[k]).filter((p) => p > 0);
}

/** Thrown by start-up steps once a stop was asked for. */
export class Aborted extends Error {}

/** Registers how to undo a start-up step; once a stop was asked for, undoes it at once (Aborted). */
export type Register = (what: string, run: () => Promise<void>) => Promise<void>;

/** The start-up steps taken, each with how to undo it: `register` adds one, `undoAll` undoes them newest first. */
export function undoableSteps(ctx: LaunchContext): { register: Register; undoAll(): Promise<void> } {
  const steps: { what: string; run: () => Promise<void> }[] = [];
  return {
    register: async (what, run) => {
      if (ctx.stopping) {
        await run().catch(() => undefined);
        throw new Aborted();
      }
      steps.push({ what, run });
    },
    undoAll: async () => {
      for (const s of steps.splice(0).reverse())
        await s.run().catch((err: unknown) => ctx.say(`stopping ${s.what}: ${(err as Error).message}`));
    },
  };
}

/** Exits with `code` once `stop` has stopped everything; with 1, saying why, when it failed. */
export function exitAfter(stop: () => Promise<void>, code: number): void {
  stop().then(
    () => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`topology: stop failed: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}

export class LaunchContext {
  /** Set once a stop was asked for: start-up steps end, exits are expected, restarts stop. */
  stopping = false;
  /** The HAProxy addresses Switchboard processes believe X-Forwarded-For from (TRUST_PROXY). */
  trustProxy = '127.0.0.1';
  private wiped = false;

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

  /** The VRRP password both keepalived instances use (owner-only, one line), made on the first launch. */
  get vrrpPasswordFile(): string {
    return path.join(this.opts.dataDir, 'vrrp-password');
  }

  /**
   * With --fresh: delete what an earlier launch kept in the data directory (the cluster, its
   * passwords, the admin key, the VRRP password), so this launch makes new ones. Once per run.
   */
  wipeIfFresh(): void {
    if (!this.opts.fresh || this.wiped) return;
    this.wiped = true;
    const kept = [
      path.join(this.opts.dataDir, 'cluster'),
      this.credentialsFile,
      path.join(this.opts.dataDir, 'admin-key'),
      this.vrrpPasswordFile,
    ];
    const gone = kept.filter((f) => existsSync(f));
    for (const f of gone) rmSync(f, { recursive: true, force: true });
    if (gone.length > 0) this.say(`--fresh: deleted ${gone.join(', ')}`);
  }

  /**
   * The Redis Cluster under <data dir>/cluster (3 masters, 3 replicas, AOF on): the one kept
   * there by an earlier launch, started again with its data (nodes.conf, AOF) and passwords, or
   * a new one. `--fresh` deletes the kept cluster, its passwords and the admin key first. Every
   * node is supervised: one that dies is started again on its port with its data. Each node's
   * log begins each start with its command line, after `shownPrefix` (`ip netns exec <ns>`, when
   * this process runs in a namespace).
   */
  async startCluster(args?: string[], shownPrefix?: readonly string[]): Promise<RedisClusterHandle> {
    const dataDir = path.join(this.opts.dataDir, 'cluster');
    this.wipeIfFresh();
    mkdirSync(this.logsDir, { recursive: true });
    const kept = keptCluster(dataDir) !== undefined;
    if (kept)
      this.say(`starting the Redis Cluster kept in ${dataDir} (its data and passwords; --fresh deletes it)`);
    // The same passwords on every launch: kept beside the cluster, made on the first.
    const credentials = loadOrCreateCredentials(this.credentialsFile);
    return startRedisCluster({
      dataDir,
      credentials,
      resume: true,
      logsDir: this.logsDir,
      supervise: { say: this.say, stopping: () => this.stopping },
      ...(kept ? { readyTimeoutMs: 60_000 } : {}),
      ...(args ? { args } : {}),
      ...(shownPrefix ? { shownPrefix } : {}),
    });
  }
}

/**
 * A complete request the banner shows, runnable as printed: an agent created in workspace
 * `default` through `apiUrl`, with the admin API key the first API instance stored in the data
 * directory (ignored with AUTH=off).
 */
export function exampleRequest(apiUrl: string, dataDir: string): string {
  const keyFile = shellLine([path.join(dataDir, 'admin-key')]);
  return `curl -X POST ${apiUrl}/v1/workspaces/default/agents -H "Authorization: Bearer $(cat ${keyFile})" -H 'content-type: application/json' -d '{"id":"a1","skills":["English"]}'`;
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
 * ({ ok, status, ...report }) and exits 0 when the command was accepted (201), 1 otherwise. The
 * command carries the admin key of workspace `default` the first API instance stored in the data
 * directory (API keys are on by default; with AUTH=off there is none, and none is needed).
 */
export async function checkAndExit(topology: LaunchedTopology, dataDir: string): Promise<never> {
  let key: string | undefined;
  try {
    key = readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim() || undefined;
  } catch {
    /* AUTH=off: no key was made */
  }
  const r = await fetch(`${topology.apiUrl}/v1/workspaces/default/agents`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'idempotency-key': `topology-check-${Date.now()}`,
      ...(key ? { authorization: `Bearer ${key}` } : {}),
    },
    body: JSON.stringify({ id: `check-${Date.now()}`, skills: ['English'] }),
  }).catch(() => undefined);
  const status = r?.status ?? 0;
  const ok = status === 201;
  await topology.stop();
  process.stdout.write(`${JSON.stringify({ ok, status, ...topology.report })}\n`);
  process.exit(ok ? 0 : 1);
}
