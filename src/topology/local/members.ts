/**
 * The Switchboard processes of the local topology (both shapes): `--api` API instances, each on
 * its own port and registered for HAProxy, and `--projectors` / `--dispatchers` worker processes.
 * Each logs to <data dir>/logs/<name>.log; one that exits is restarted by a supervisor
 * (src/topology/supervisor.ts: after 1 s, 2 s, 4 s, at most 5 s; the back-off starts over once
 * the process has run for a minute) until the launcher stops, and counted in the launcher's
 * `/status`.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { endingWithThisProcess, onSpawnError, stopChild } from '../child-processes.ts';
import { logFile } from '../log-file.ts';
import type { RedisLogin } from '../redis-users.ts';
import { componentStatuses } from '../status.ts';
import { type SupervisedHandle, Supervisor } from '../supervisor.ts';
import type { LaunchContext, Register } from './context.ts';
import { type MainCommand, mainCommand } from './main-build.ts';

/** How every member starts: src/main.ts built once per launcher (main-build.ts). */
const commands = new WeakMap<LaunchContext, MainCommand>();
/** The build of each launcher, under way: started before the cluster, awaited by makeMembers. */
const builds = new WeakMap<LaunchContext, Promise<MainCommand>>();

function build(ctx: LaunchContext): Promise<MainCommand> {
  let made = builds.get(ctx);
  if (!made) {
    made = mainCommand((err) =>
      ctx.say(`could not build src/main.ts (${err.message}); the members run it through tsx`),
    );
    builds.set(ctx, made);
  }
  return made;
}

/**
 * Starts building what the members run, while the launcher goes on with the cluster and HAProxy
 * (esbuild's work then overlaps the waits for Redis); registers removing the build, so a stop
 * during start-up removes it too.
 */
export async function buildMembers(ctx: LaunchContext, register: Register): Promise<void> {
  const made = build(ctx);
  await register("the members' build", async () => (await made).dispose());
}

export interface Member {
  readonly name: string;
  readonly roles: string;
  readonly port?: number;
  supervisor?: Supervisor<SupervisedHandle>;
}

export async function makeMembers(ctx: LaunchContext, apiPort: () => Promise<number>): Promise<Member[]> {
  const { opts } = ctx;
  if (!commands.has(ctx)) commands.set(ctx, await build(ctx));
  const members: Member[] = [];
  for (let i = 1; i <= opts.api; i++) members.push({ name: `api-${i}`, roles: 'api', port: await apiPort() });
  for (let i = 1; i <= opts.projectors; i++) members.push({ name: `projector-${i}`, roles: 'projector' });
  for (let i = 1; i <= opts.dispatchers; i++) members.push({ name: `dispatcher-${i}`, roles: 'dispatcher' });
  return members;
}

/**
 * Start (and on exit restart) one Switchboard process, logged in to Redis as `login` (in its
 * environment, which only its owner can read). `advertise` undefined: ADVERTISE_ADDRESS=auto.
 */
export function startMember(
  ctx: LaunchContext,
  m: Member,
  seeds: string,
  login: RedisLogin,
  host: string,
  advertise?: string,
): void {
  const log = logFile(path.join(ctx.logsDir, `${m.name}.log`));
  const start = () => spawnMember(ctx, m, seeds, login, host, advertise);
  m.supervisor = new Supervisor(start(), {
    name: m.name,
    kind: 'switchboard',
    say: ctx.say,
    stopping: () => ctx.stopping,
    log,
    firstDelayMs: 1000,
    maxDelayMs: 5000,
    restart: async () => start(),
  });
}

/**
 * A member's environment: the launcher's own (PATH, LOG_LEVEL, the user's RATE_LIMIT...) with what
 * the launcher decides for its members put over it. Settings of the shell that name another Redis
 * or would be refused with the launcher's cluster (REDIS_URL, REDIS_TLS_*: its nodes speak plain
 * redis://), that one port cannot take for several processes (METRICS_PORT), or that a worker
 * refuses (ADVERTISE_ADDRESS) are blanked: each member would be refused at start, restarted and
 * refused again for as long as the launcher runs.
 */
export function memberEnv(
  base: NodeJS.ProcessEnv,
  dataDir: string,
  trustProxy: string | undefined,
  m: Pick<Member, 'roles' | 'port'>,
  seeds: string,
  login: RedisLogin,
  host: string,
  advertise?: string,
): NodeJS.ProcessEnv {
  return {
    ...base,
    ROLES: m.roles,
    REDIS_CLUSTER_NODES: seeds,
    REDIS_URL: '',
    REDIS_USERNAME: login.user,
    REDIS_PASSWORD: login.password,
    REDIS_TLS_CA: '',
    REDIS_TLS_CERT: '',
    REDIS_TLS_KEY: '',
    METRICS_PORT: '',
    PORT: String(m.port ?? 0),
    HOST: host,
    ADVERTISE_ADDRESS: m.port ? (advertise ?? 'auto') : '',
    LOG_LEVEL: base.LOG_LEVEL ?? 'info',
    // The client address behind HAProxy: X-Forwarded-For from the launcher's HAProxies only (an
    // API member's setting: a worker warns at start of a setting none of its roles reads).
    ...(m.port ? { TRUST_PROXY: trustProxy } : {}),
    // The first API member stores the admin key of workspace default here (AUTH on; main.ts).
    DATA_DIR: dataDir,
  };
}

function spawnMember(
  ctx: LaunchContext,
  m: Member,
  seeds: string,
  login: RedisLogin,
  host: string,
  advertise?: string,
): SupervisedHandle {
  const log = logFile(path.join(ctx.logsDir, `${m.name}.log`));
  const main = commands.get(ctx);
  if (!main) throw new Error('makeMembers first: it builds what the members run');
  const [cmd, ...rest] = endingWithThisProcess([process.execPath, ...main.args]);
  const child = spawn(cmd!, rest, {
    env: memberEnv(process.env, ctx.opts.dataDir, ctx.trustProxy, m, seeds, login, host, advertise),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onSpawnError(child, (err) => log.note(`${m.name}: ${err.message}`));
  log.follow(child.stdout);
  log.follow(child.stderr);
  return {
    process: child,
    stop: async () => void (await stopChild(child, { graceMs: 10_000, group: false })),
  };
}

/** SIGTERM every member, SIGKILL after 10 s; resolves when all have exited (and removes their build). */
export async function stopMembers(ctx: LaunchContext, members: readonly Member[]): Promise<void> {
  await Promise.all(members.map((m) => m.supervisor?.stop()));
  await commands.get(ctx)?.dispose();
}

/** What was restarted during this run (Switchboard processes and supervised servers), if anything. */
export function restartSummary(): string | undefined {
  const counts = componentStatuses().filter((c) => c.restarts > 0);
  return counts.length === 0
    ? undefined
    : `restarts during this run: ${counts.map((c) => `${c.name} ${c.restarts}`).join(', ')}`;
}
