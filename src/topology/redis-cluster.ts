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
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RedisServerHandle, startRedisServer } from './redis-server.ts';
import {
  type AclUser,
  checkUser,
  newCredentials,
  type RedisCredentials,
  switchboardUsers,
} from './redis-users.ts';

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
  /** Current roles (they change after a failover). */
  roles(): Promise<ClusterNode[]>;
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
  const haproxyCheck = {
    user: HAPROXY_CHECK_USER,
    password: opts.haproxyCheckPassword ?? randomBytes(12).toString('hex'),
  };
  const credentials = opts.credentials ?? newCredentials();
  const users = switchboardUsers(credentials, [
    { name: haproxyCheck.user, password: haproxyCheck.password, rules: HAPROXY_CHECK_RULES },
    ...(opts.aclUsers ?? []),
  ]);
  const adminPassword = opts.openAdmin ? undefined : credentials.admin.password;
  const cliEnv: Record<string, string> = adminPassword ? { REDISCLI_AUTH: adminPassword } : {};
  const cli = redisCli(cliEnv);
  const nodeArgs = [
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    'nodes.conf',
    '--cluster-node-timeout',
    String(opts.nodeTimeoutMs ?? 2000),
    // A replica with a stale link still fails over quickly in a test cluster.
    '--cluster-replica-validity-factor',
    '0',
    // A master down stops only its own slots: workspaces on the other masters keep routing.
    '--cluster-require-full-coverage',
    'no',
    ...(opts.args ?? []),
  ];

  const servers: RedisServerHandle[] = [];
  const stopAll = async () => {
    await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
  };
  try {
    // Start sequentially: on 2 cores parallel AOF/cluster init gains little and races for ports.
    for (let i = 0; i < count; i++) {
      servers.push(
        await startRedisServer({
          dataDir: path.join(dataDir, `node-${i + 1}`),
          appendonly: true,
          args: nodeArgs,
          users,
          ...(adminPassword ? { adminPassword } : {}),
          // A replica logs in to its master as the replication user.
          secretConfig: { masteruser: credentials.replica.user, masterauth: credentials.replica.password },
        }),
      );
    }
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

    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
    let roles: (NodeRole | undefined)[] = [];
    for (;;) {
      const infos = await Promise.all(servers.map((s) => cli(s.port, 'CLUSTER', 'INFO').catch(() => '')));
      roles = await Promise.all(servers.map((s) => nodeRole(cli, s.port)));
      // Replicas count only once their replication link is up (initial sync done).
      const links = await Promise.all(
        servers.map((s, i) =>
          roles[i] === 'replica'
            ? cli(s.port, 'INFO', 'replication').catch(() => '')
            : 'master_link_status:up',
        ),
      );
      const allOk =
        infos.every((i) => /cluster_state:ok/.test(i)) && links.every((l) => /master_link_status:up/.test(l));
      const nMasters = roles.filter((r) => r === 'master').length;
      const nReplicas = roles.filter((r) => r === 'replica').length;
      if (allOk && nMasters === masters && nReplicas === masters * replicas) break;
      if (Date.now() > deadline) {
        throw new Error(
          `redis cluster not ready after ${opts.readyTimeoutMs ?? 30_000} ms (roles ${roles.join(',')}):\n${infos[0] ?? ''}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
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
        const now = await Promise.all(servers.map((s) => nodeRole(cli, s.port)));
        return servers.flatMap((s, i) => {
          const role = now[i];
          return role ? [{ host: s.host, port: s.port, role }] : [];
        });
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
