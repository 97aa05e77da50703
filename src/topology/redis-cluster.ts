/**
 * Start a local Redis Cluster: `masters` masters with `replicasPerMaster` replicas each (default
 * 3 + 3 = 6 redis-server processes on free loopback ports), AOF on, `cluster-node-timeout 2000`
 * so a replica takes over within a few seconds of its master dying.
 *
 * Every node has the same ACL users, from an ACL file in its directory (hashed passwords, 0600):
 * the Switchboard user (`switchboard`, src/adapters/redis/acl.ts), the user HAProxy's layer-7
 * check logs in with (`haproxy-check`: +ping +auth +quit, no keys, no channels), the user replicas
 * log in to their master with (`replica`: replication only), any extra users asked for, and the
 * `default` (admin) user with a password (`credentials.admin`) unless `openAdmin`. Passwords
 * never appear on a command line; a node restarted with the same arguments has the same users.
 *
 *   const cluster = await startRedisCluster({ dataDir: '/tmp/sb-cluster' });
 *   const { user, password } = cluster.credentials.app;
 *   const client = new Cluster(cluster.nodes.map(({ host, port }) => ({ host, port })), {
 *     redisOptions: { username: user, password },
 *   });
 *   await cluster.stop();
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { hasExited } from './child-processes.ts';
import { logFile } from './log-file.ts';
import { freePort, type RedisServerHandle, startRedisServer } from './redis-server.ts';
import {
  type AclUser,
  checkUser,
  newCredentials,
  type RedisCredentials,
  switchboardUsers,
  writePrivateFile,
} from './redis-users.ts';
import { Supervisor } from './supervisor.ts';

export type { AclUser } from './redis-users.ts';

const execFileP = promisify(execFile);

export interface ClusterOptions {
  /** Parent directory; node i lives in `<dataDir>/node-<i>`. Default: a temp dir, removed by stop(). */
  dataDir?: string;
  masters?: number;
  replicasPerMaster?: number;
  /** Default 2000 ms. */
  nodeTimeoutMs?: number;
  /** Password of the `haproxy-check` user. Default: random (see `haproxyCheck` in the result). */
  haproxyCheckPassword?: string;
  /** More ACL users created on every node. */
  aclUsers?: AclUser[];
  /** Passwords of the Switchboard, admin and replication users. Default: new random ones. */
  credentials?: RedisCredentials;
  /** Leave the `default` (admin) user without a password (throw-away test clusters). Default false. */
  openAdmin?: boolean;
  /** Extra redis-server arguments for every node. */
  args?: string[];
  /** Milliseconds to wait for `cluster_state:ok` everywhere. Default 30 000. */
  readyTimeoutMs?: number;
  /**
   * Each node's log (its stdout and stderr) in `<logsDir>/redis-<port>.log`, capped by size, each
   * start of the node preceded by its command line (`[launcher] command line: redis-server ...`).
   */
  logsDir?: string;
  /** With logsDir: what the logged command lines start with (`ip netns exec <ns>` in a namespace). */
  shownPrefix?: readonly string[];
  /**
   * Restart a node that dies, on its port with its directory (nodes.conf, AOF): a dead master
   * comes back as a replica of the replica promoted in its place (src/topology/supervisor.ts).
   */
  supervise?: { say: (line: string) => void; stopping: () => boolean };
  /**
   * With `dataDir`: start the cluster kept there (`<dataDir>/cluster.json`: its ports and the
   * check user's password) if there is one, with its data, rather than create a new one.
   */
  resume?: boolean;
}

/** What a kept cluster needs to start again as it was (`<dataDir>/cluster.json`, 0600). */
interface ClusterManifest {
  readonly ports: number[];
  readonly masters: number;
  readonly replicasPerMaster: number;
  readonly haproxyCheckPassword: string;
  /** The extra redis-server arguments (addresses bound and announced): a resume needs the same. */
  readonly args?: string[];
}

const MANIFEST = 'cluster.json';

/** The cluster kept in `dataDir`, if any. */
export function keptCluster(dataDir: string): ClusterManifest | undefined {
  try {
    const m = JSON.parse(readFileSync(path.join(dataDir, MANIFEST), 'utf8')) as ClusterManifest;
    return Array.isArray(m.ports) && m.ports.length > 0 && m.haproxyCheckPassword ? m : undefined;
  } catch {
    return undefined;
  }
}

export type NodeRole = 'master' | 'replica';

export interface ClusterNode {
  host: string;
  port: number;
  role: NodeRole;
}

export interface RedisClusterHandle {
  nodes: ClusterNode[];
  /** The redis-server processes (same order as `nodes`), e.g. to kill a master in a failover test. */
  servers: RedisServerHandle[];
  haproxyCheck: { user: string; password: string };
  /** `app`: what Switchboard logs in with; `admin`: the default user (no password with openAdmin). */
  credentials: RedisCredentials;
  /** Environment for redis-cli as the admin (REDISCLI_AUTH), empty with openAdmin. */
  cliEnv: Record<string, string>;
  /** Current roles of the nodes whose process runs (they change after a failover). */
  roles(): Promise<ClusterNode[]>;
  /** True when the nodes were started from a kept cluster (`resume`), with their data. */
  resumed: boolean;
  /** With `supervise`: how many times each node was restarted (same order as `servers`). */
  restarts(): number[];
  stop(): Promise<void>;
}

export const HAPROXY_CHECK_USER = 'haproxy-check';
export const HAPROXY_CHECK_RULES = ['resetkeys', 'resetchannels', '-@all', '+ping', '+auth', '+quit'];

/**
 * `--user <name> on ><password> <rules...>`: one ACL user as redis-server command-line config.
 * The password shows in `ps`: for throw-away test servers only; startRedisServer's `users`
 * writes an ACL file instead.
 */
export function aclUserArgs(u: AclUser): string[] {
  checkUser(u);
  return ['--user', u.name, 'on', `>${u.password}`, ...u.rules];
}

type Cli = (port: number, ...args: string[]) => Promise<string>;

/** A node's cluster settings, as this cluster's nodes run (and a node joined to it later). */
export function clusterNodeArgs(nodeTimeoutMs = 2000): string[] {
  return [
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    'nodes.conf',
    '--cluster-node-timeout',
    String(nodeTimeoutMs),
    // A replica with a stale link still fails over quickly in a test cluster.
    '--cluster-replica-validity-factor',
    '0',
    // A master down stops only its own slots: workspaces on the other masters keep routing.
    '--cluster-require-full-coverage',
    'no',
    // A node back after a crash resyncs from its new master at once, rather than 5 s later (the
    // default delay a master waits for more replicas before a diskless full sync).
    '--repl-diskless-sync-delay',
    '0',
  ];
}

/** redis-cli on a loopback node, logged in through the environment (REDISCLI_AUTH) when asked. */
function redisCli(env: Record<string, string>): Cli {
  return async (port, ...args) => {
    const { stdout } = await execFileP('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
      timeout: 10_000,
      env: { ...process.env, ...env },
    });
    return stdout;
  };
}

async function nodeRole(cli: Cli, port: number): Promise<NodeRole | undefined> {
  const out = await cli(port, 'ROLE').catch(() => '');
  const first = out.split('\n')[0]?.trim();
  if (first === 'master') return 'master';
  if (first === 'slave') return 'replica';
  return undefined;
}

export async function startRedisCluster(opts: ClusterOptions = {}): Promise<RedisClusterHandle> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicasPerMaster ?? 1;
  if (masters < 3) throw new Error('a Redis Cluster needs at least 3 masters');
  const count = masters * (1 + replicas);
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'sb-cluster-')));
  const kept = opts.resume && !ownDir ? keptCluster(dataDir) : undefined;
  if (kept && (kept.masters !== masters || kept.replicasPerMaster !== replicas))
    throw new Error(
      `the cluster kept in ${dataDir} has ${kept.masters} masters with ${kept.replicasPerMaster} replicas each, not ${masters} with ${replicas}`,
    );
  if (kept?.args && JSON.stringify(kept.args) !== JSON.stringify(opts.args ?? []))
    throw new Error(
      `the cluster kept in ${dataDir} was started with other addresses (${kept.args.join(' ') || 'loopback only'}); start it the same way, or delete it (npm run topology -- --fresh)`,
    );
  const haproxyCheck = {
    user: HAPROXY_CHECK_USER,
    password: kept?.haproxyCheckPassword ?? opts.haproxyCheckPassword ?? randomBytes(12).toString('hex'),
  };
  const credentials = opts.credentials ?? newCredentials();
  const users = switchboardUsers(credentials, [
    { name: haproxyCheck.user, password: haproxyCheck.password, rules: HAPROXY_CHECK_RULES },
    ...(opts.aclUsers ?? []),
  ]);
  const adminPassword = opts.openAdmin ? undefined : credentials.admin.password;
  const cliEnv: Record<string, string> = adminPassword ? { REDISCLI_AUTH: adminPassword } : {};
  const cli = redisCli(cliEnv);
  const nodeArgs = [...clusterNodeArgs(opts.nodeTimeoutMs), ...(opts.args ?? [])];

  const servers: RedisServerHandle[] = [];
  const supervisors: Supervisor<RedisServerHandle>[] = [];
  const stopAll = async () => {
    await Promise.all([
      ...supervisors.map((s) => s.stop().catch(() => undefined)),
      ...servers.slice(supervisors.length).map((s) => s.stop().catch(() => undefined)),
    ]);
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
  };
  const nodeOptions = (i: number, port: number) => ({
    dataDir: path.join(dataDir, `node-${i + 1}`),
    appendonly: true,
    args: nodeArgs,
    users,
    port,
    ...(adminPassword ? { adminPassword } : {}),
    // A replica logs in to its master as the replication user.
    secretConfig: { masteruser: credentials.replica.user, masterauth: credentials.replica.password },
    ...(opts.logsDir ? { logFile: path.join(opts.logsDir, `redis-${port}.log`) } : {}),
    ...(opts.shownPrefix ? { shownPrefix: opts.shownPrefix } : {}),
  });
  try {
    if (opts.logsDir) mkdirSync(opts.logsDir, { recursive: true });
    // All at once: each start is mostly waiting for the node to answer (freePort reserves each
    // pick, so two starts never pick the same port).
    const startNode = async (i: number): Promise<RedisServerHandle> => {
      const keptPort = kept?.ports[i];
      for (let attempt = 1; ; attempt++) {
        const port = keptPort ?? (await freePort());
        try {
          return await startRedisServer(nodeOptions(i, port));
        } catch (err) {
          // A free port taken between the pick and the bind: pick another (a kept port: fail).
          if (keptPort !== undefined || attempt >= 5 || !/is in use/.test((err as Error).message)) throw err;
        }
      }
    };
    const started = await Promise.allSettled(Array.from({ length: count }, (_, i) => startNode(i)));
    // In node order; those that came up are stopped below if another did not.
    for (const r of started) if (r.status === 'fulfilled') servers.push(r.value);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (!kept) await createCluster();
    else if (kept.ports.length !== count)
      throw new Error(`the cluster kept in ${dataDir} has ${kept.ports.length} nodes, not ${count}`);
    if (opts.supervise) {
      const sup = opts.supervise;
      servers.forEach((first, i) => {
        supervisors.push(
          new Supervisor(first, {
            name: `redis-server ${first.host}:${first.port}`,
            kind: 'redis',
            say: sup.say,
            stopping: sup.stopping,
            restart: async () => {
              await failedOver(first.port);
              return startRedisServer(nodeOptions(i, first.port));
            },
            ...(opts.logsDir ? { log: logFile(path.join(opts.logsDir, `redis-${first.port}.log`)) } : {}),
          }),
        );
      });
      // The handles follow the restarts: `servers[i].process` is always the running node.
      servers.splice(0, servers.length, ...supervisors.map(followingHandle));
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  try {
    const handle = await untilReady();
    // Kept once it is up: the next start with `resume` starts these nodes again.
    if (!ownDir) {
      const manifest: ClusterManifest = {
        ports: servers.map((s) => s.port),
        masters,
        replicasPerMaster: replicas,
        haproxyCheckPassword: haproxyCheck.password,
        args: opts.args ?? [],
      };
      writePrivateFile(path.join(dataDir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    }
    return handle;
  } catch (err) {
    await stopAll();
    throw err;
  }

  /**
   * Resolves once the cluster no longer counts on the dead node at `port` as a master: it was a
   * replica, or its replica has taken its slots. A master restarted before that would come back
   * as the master of its slots with only what its AOF held (fsync every second) and its replica
   * would resync from it, losing writes the replica had acknowledged. A master without a live
   * replica is never failed over: after 20 s it is restarted anyway, being the only way back.
   */
  async function failedOver(port: number): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      for (const other of servers) {
        if (other.port === port) continue;
        const nodes = await cli(other.port, 'CLUSTER', 'NODES').catch(() => '');
        const line = nodes.split('\n').find((l) => l.split(' ')[1]?.includes(`:${port}@`));
        if (!line) continue;
        // <id> <addr> <flags> <master> <ping> <pong> <epoch> <link> <slot ranges...>
        const fields = line.trim().split(' ');
        const flags = fields[2] ?? '';
        const slots = fields.slice(8);
        if (flags.includes('slave') || (flags.includes('master') && slots.length === 0)) return;
        break; // a live node answered: it still counts on the dead one as a master
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    opts.supervise?.say(
      `redis-server on port ${port}: its slots were not failed over within 20 s (no live replica?); restarting it as it was`,
    );
  }

  async function createCluster(): Promise<void> {
    await execFileP(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...servers.map((s) => `${s.host}:${s.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { timeout: 60_000, env: { ...process.env, ...cliEnv } },
    );
  }

  async function untilReady(): Promise<RedisClusterHandle> {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
    let roles: (NodeRole | undefined)[] = [];
    // One connection per node for the checks, rather than a redis-cli process per question (15
    // every 200 ms: on a busy 2-core machine the first round alone took 2.4 s).
    const conns = servers.map((s) => {
      const c = new Redis({
        host: '127.0.0.1',
        port: s.port,
        ...(adminPassword ? { password: adminPassword } : {}),
        maxRetriesPerRequest: 1,
        retryStrategy: () => 100,
        enableReadyCheck: false,
      });
      c.on('error', () => undefined); // a node not answering yet is asked again
      return c;
    });
    const ask = (i: number, command: string, ...args: string[]): Promise<unknown> =>
      conns[i]!.call(command, ...args).catch(() => undefined);
    try {
      for (;;) {
        const infos = await Promise.all(
          servers.map((_, i) => ask(i, 'CLUSTER', 'INFO').then((r) => String(r ?? ''))),
        );
        roles = await Promise.all(
          servers.map(async (_, i) => {
            const first = ((await ask(i, 'ROLE')) as unknown[] | undefined)?.[0];
            return first === 'master' ? 'master' : first === 'slave' ? 'replica' : undefined;
          }),
        );
        // Replicas count only once their replication link is up (initial sync done).
        const links = await Promise.all(
          servers.map((_, i) =>
            roles[i] === 'replica'
              ? ask(i, 'INFO', 'replication').then((r) => String(r ?? ''))
              : 'master_link_status:up',
          ),
        );
        const allOk =
          infos.every((i) => /cluster_state:ok/.test(i)) &&
          links.every((l) => /master_link_status:up/.test(l));
        const nMasters = roles.filter((r) => r === 'master').length;
        const nReplicas = roles.filter((r) => r === 'replica').length;
        if (allOk && nMasters === masters && nReplicas === masters * replicas) break;
        if (Date.now() > deadline) {
          throw new Error(
            `redis cluster${kept ? ` kept in ${dataDir}` : ''} not ready after ${opts.readyTimeoutMs ?? 30_000} ms (roles ${roles.join(',')}):\n${infos[0] ?? ''}`,
          );
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      for (const c of conns) c.disconnect();
    }
    const nodes: ClusterNode[] = servers.map((s, i) => ({
      host: s.host,
      port: s.port,
      role: roles[i] ?? 'master',
    }));
    return {
      nodes,
      servers,
      haproxyCheck,
      credentials,
      cliEnv,
      async roles() {
        // Only nodes whose process runs: the port of a node that died is free, and another
        // redis-server (of another cluster, a test's own) may have taken it since.
        const now = await Promise.all(
          servers.map((s) => (hasExited(s.process) ? Promise.resolve(undefined) : nodeRole(cli, s.port))),
        );
        return servers.flatMap((s, i) => {
          const role = now[i];
          return role ? [{ host: s.host, port: s.port, role }] : [];
        });
      },
      resumed: kept !== undefined,
      restarts: () => supervisors.map((s) => s.restarts),
      stop: stopAll,
    };
  }
}

/** A node's handle that always reaches the process running now (restarts replace it). */
function followingHandle(sup: Supervisor<RedisServerHandle>): RedisServerHandle {
  const first = sup.current;
  return {
    host: first.host,
    port: first.port,
    url: first.url,
    get process() {
      return sup.current.process;
    },
    kill: (signal?: NodeJS.Signals) => sup.current.kill(signal),
    stop: () => sup.stop(),
  };
}
