import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { SOCKET_SLOT_TTL_MS } from '../adapters/http/limits.ts';
import { createMetrics, metricsText, serveMetrics } from '../adapters/http/metrics.ts';
import { buildApi, type ProjectSoon } from '../adapters/http/server.ts';
import { CHECK_REDIS, redisAdvice } from '../adapters/redis/advice.ts';
import { connectedReplicas, connectRedis, mask } from '../adapters/redis/client.ts';
import type { EventHistory } from '../adapters/redis/event-log.ts';
import { RedisWatch } from '../adapters/redis/health-watch.ts';
import { LIVE_WINDOW_MS, type Registration, registerInstance } from '../adapters/redis/instance-registry.ts';
import { globalKeys, workspaceKeys } from '../adapters/redis/keys.ts';
import { type RedisClient, useLuaFunctions } from '../adapters/redis/scripts.ts';
import { TailHub } from '../adapters/redis/tail.ts';
import { Archiver, type ArchiverObserver } from '../archive/archiver.ts';
import { LogReader, refuseBreaks } from '../archive/log-reader.ts';
import { DiskArchive } from '../archive/store.ts';
import { SnapshotWriter } from '../audit/snapshot-writer.ts';
import { stateAt } from '../audit/state-at.ts';
import { Dispatcher, defaultDispatcherOptions } from '../dispatcher/dispatcher.ts';
import { type LeaseHolder, LeaseKeeper } from '../dispatcher/leases.ts';
import { IntervalProjection } from '../projections/intervals.ts';
import { type PendingAppend, Projector } from '../projections/projector.ts';
import { type RedisServerHandle, startPrivateRedis } from '../topology/redis-server.ts';
import { type Config, redisTargetOf } from './config.ts';
import { DEFAULT_IDLE_AFTER_MS, WorkspaceRunner } from './workspace-runner.ts';

export const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface Running {
  readonly redis: RedisClient;
  readonly api?: FastifyInstance;
  readonly url?: string;
  /** Where METRICS_PORT serves /metrics, when set. */
  readonly metricsUrl?: string;
  stop(): Promise<void>;
}

export interface StartHooks {
  /**
   * Runs after the roles start and before the API listens (a Redis that does not answer fails
   * its commands within a few seconds, as at any time): what a client may rely on as soon as
   * the port answers (the main command makes the first admin key here).
   */
  readonly beforeListen?: (redis: RedisClient) => Promise<void>;
  /**
   * Something this process cannot run without is gone (the private redis-server exited while it
   * was not stopping); the problem, with what to do, is logged at fatal before this is called.
   * The main command stops and exits 1.
   */
  readonly onFatal?: (problem: string) => void;
}

/** 127.0.0.0/8, ::1 or localhost: reached from this machine only. */
function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/** A start that cannot go on, said with what to do: the main command prints it without a stack. */
export class StartProblem extends Error {}

/** How long no request may have arrived before a drain past LB_DRAIN_MS ends. */
export const DRAIN_QUIET_MS = 500;
/** Requests that do not say the load balancer still sends: its checks, Prometheus' scrapes. */
const DRAIN_UNCOUNTED = /^\/(health|metrics)(?:[?#]|$)/;

/**
 * The drain of a stop: LB_DRAIN_MS, then on while requests still arrive (a load balancer that has
 * not taken this instance out yet: a registry sync held up, a check that needs its `fall` failures
 * first) until none has for DRAIN_QUIET_MS, at most LB_DRAIN_MS more. Closing while the balancer
 * still sends answers those requests 503, or cuts them.
 */
async function drainWhileSent(lbDrainMs: number, lastSentAt: () => number): Promise<void> {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const end = Date.now() + 2 * lbDrainMs;
  await sleep(lbDrainMs);
  for (;;) {
    const left = end - Date.now();
    const quiet = Date.now() - lastSentAt();
    if (left <= 0 || quiet >= DRAIN_QUIET_MS) return;
    await sleep(Math.min(DRAIN_QUIET_MS - quiet, left));
  }
}

/** What to do when the private redis-server exits: most often its AOF is damaged. */
function privateRedisAdvice(dataDir: string): string {
  const dir = path.resolve(dataDir, 'appendonlydir');
  return `If its output says the append only file is damaged (a crash or a full disk while it wrote): copy ${dir} somewhere safe, run redis-check-aof --fix ${path.join(dir, 'appendonly.aof.manifest')}, and start again; otherwise fix what its output names (memory, disk space), or set REDIS_URL to use a Redis of your own`;
}

/**
 * With replicated durability a command is confirmed only once a replica has it: a Redis master
 * without replicas makes every command answer 503 not-replicated. Said once, at start.
 */
async function warnWithoutReplicas(redis: RedisClient, log: Logger): Promise<void> {
  try {
    const replicas = await connectedReplicas(redis);
    if (replicas.some((n) => n === 0))
      log.warn(
        { durability: 'replicated', replicas },
        'DURABILITY=replicated, but a Redis master has no replica connected: until one connects, every command to its workspaces answers 503 not-replicated. Give each master a replica, or set DURABILITY=local for a Redis without replicas.',
      );
  } catch (err) {
    log.debug({ err: (err as Error).message }, 'could not read the replicas of the Redis masters');
  }
}

/**
 * Starts the roles the configuration names, in one process: the API, the projector and the
 * dispatcher. Without a Redis configured it starts a private redis-server with AOF under
 * DATA_DIR and stops it on exit.
 */
export async function startSwitchboard(
  config: Config,
  log: Logger,
  hooks: StartHooks = {},
): Promise<Running> {
  let privateRedis: RedisServerHandle | undefined;
  let url = config.redisUrl;
  if (!url && config.redisClusterNodes.length === 0) {
    // Logged in as the least-privilege user; the passwords stay in DATA_DIR (owner-only).
    let started: Awaited<ReturnType<typeof startPrivateRedis>>;
    try {
      started = await startPrivateRedis(config.dataDir);
    } catch (err) {
      throw new StartProblem(
        `DATA_DIR: the private redis-server in ${path.resolve(config.dataDir)} did not start: ${(err as Error).message.trim()}\n${privateRedisAdvice(config.dataDir)}`,
      );
    }
    privateRedis = started.server;
    url = started.url;
    log.info(
      { url: mask(url), user: started.credentials.app.user, dataDir: config.dataDir },
      'started a private redis-server (set REDIS_URL to use your own)',
    );
  }
  const target = url ?? config.redisClusterNodes.join(',');
  useLuaFunctions(config.luaFunctions);
  const redis = connectRedis(redisTargetOf(config, url));
  const watch = new RedisWatch(redis, mask(target));
  // While stopping, the pause does not clear by itself: the stop gives up on Redis (stop below).
  watch.onPauseChange((reason) =>
    watch.isStopping
      ? reason
        ? log.warn({ reason }, `Redis is unreachable while stopping. ${CHECK_REDIS}`)
        : log.info('Redis answers again; the stop goes on')
      : reason
        ? log.warn(
            { reason },
            `paused: Redis is unreachable; commands and /health answer 503 (a load balancer sends this instance nothing) until it answers again, which clears by itself. ${redisAdvice(reason)}`,
          )
        : log.info('Redis answers again; running'),
  );
  watch.start();

  const metrics = createMetrics();
  const runners: WorkspaceRunner[] = [];
  const runnerOpts = { workspaces: config.workspaces, discover: config.discoverWorkspaces };
  let projector: Projector | undefined;
  let projecting: WorkspaceRunner | undefined;
  let dispatcher: Dispatcher | undefined;
  const projectorOptions = {
    batch: config.projectBatch,
    stepBudgetMs: config.projectStepMs,
    blockMs: 2000,
    reclaimIdleMs: 5000,
    deadConsumerIdleMs: config.deadConsumerIdleMs,
    outcomesKept: 100_000,
  };
  if (config.roles.includes('projector')) {
    projector = new Projector(redis, log.child({ role: 'projector' }), projectorOptions);
    projecting = new WorkspaceRunner(redis, projector, log.child({ role: 'projector' }), runnerOpts);
    runners.push(projecting);
    runners.push(intervalsRunner(redis, config, log));
  }
  if (config.roles.includes('dispatcher')) {
    const dlog = log.child({ role: 'dispatcher' });
    dispatcher = new Dispatcher(redis, dlog, {
      ...defaultDispatcherOptions,
      batch: config.dispatchBatch,
      stepBudgetMs: config.dispatchStepMs,
    });
    dispatcher.observeStep = (s, ws) => metrics.observeStep(s, ws);
    // One dispatcher per workspace at a time: a lease per workspace, renewed every third of its life.
    const leases = config.dispatchLeases ? leaseKeeper(redis, config, dlog) : undefined;
    // With leases, the runner looks at the registry and renews them at the renewal rate.
    runners.push(
      new WorkspaceRunner(redis, dispatcher, dlog, {
        ...runnerOpts,
        ...(leases ? { leases, discoverEveryMs: leases.opts.renewEveryMs } : {}),
      }),
    );
  }
  let archiver: Archiver | undefined;
  if (config.roles.includes('archiver')) {
    const archiving = archiverRunner(redis, config, log, metrics.archiver);
    archiver = archiving.archiver;
    runners.push(archiving.runner);
  }
  for (const r of runners) r.start();

  let api: FastifyInstance | undefined;
  let tails: TailHub | undefined;
  let listening: string | undefined;
  let registration: Registration | undefined;
  let metricsServer: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  let stopping: Promise<void> | undefined;
  let started = false;
  // When the last request other than a check or a scrape arrived: the drain goes on while the
  // load balancer still sends.
  let lastSentAt = 0;
  /**
   * What a stop that gives up on Redis may leave there, for the line that says so (a wait that
   * ended does not say it landed: a lease's hand-back that timed out ends it too).
   */
  const notHandedBack = (): string => {
    const what = [
      ...(runners.length > 0
        ? [
            'any workspace lease of this process is not handed back and lapses after LEASE_TTL_MS, when the other processes take its workspaces over',
          ]
        : []),
      ...(api !== undefined && config.wsMaxPerKey !== undefined
        ? [
            `the socket slots of this process are not handed back and lapse within ${SOCKET_SLOT_TTL_MS / 1000} s: until then they count against its callers' WS_MAX_PER_KEY on the other instances`,
          ]
        : []),
      ...(registration !== undefined
        ? [
            `its registry entry is not removed: the load balancer drops it once it is ${LIVE_WINDOW_MS / 1000} s old`,
          ]
        : []),
    ];
    return what.length > 0 ? `; ${what.join('; ')}` : '';
  };
  /** Whether a wait of the stop was given up on (Redis unreachable). */
  let gaveUp = false;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // Redis unreachable (its connection lost, or two checks in a row unanswered; health-watch.ts,
      // unlessUnreachable): what the stop still sends (the registry entry's removal, the socket
      // slots handed back, the end of a workers' step, their leases handed back, QUIT) cannot
      // land, and each waited out its command timeout in turn, several seconds in all. Each such
      // wait is given up on; what it had to hand back lapses as a crash's does. The client is cut
      // only once the stop is done: a Redis that answers again during the drain still serves.
      watch.stopping((reason) => {
        if (gaveUp) return;
        gaveUp = true;
        log.warn({ reason }, `Redis is unreachable while stopping: not waiting for it${notHandedBack()}`);
      });
      try {
        await stopParts();
      } finally {
        if (gaveUp) redis.disconnect();
        watch.stop();
      }
      if (privateRedis) await privateRedis.stop();
    })();
    return stopping;
  };
  const stopParts = async (): Promise<void> => {
    // Leave the load balancer first, then close WebSockets (preClose) and drain requests;
    // workers end after their current step.
    if (registration) await watch.unlessUnreachable(registration.stop());
    // Still serving while the load balancer takes this instance out of its backend (it stops
    // sending new requests, lets those in progress finish): closing at once would answer
    // requests already on their way over its kept-alive connections 503, or cut them. A
    // registered instance has left the registry (HAProxy's sync drops it); every instance
    // answers /health 503 meanwhile (operations.ts), which is how a balancer that finds the
    // replicas by DNS and checks /health (infra's compose) drops one that is not registered.
    // Past LB_DRAIN_MS it serves on while requests still arrive (drainWhileSent). A start that
    // failed before it was done (the port of /metrics taken) drains only if it had registered:
    // nothing was told it serves.
    const drains = listening !== undefined && (registration !== undefined || started);
    if (drains && config.lbDrainMs > 0) await drainWhileSent(config.lbDrainMs, () => lastSentAt);
    if (api) {
      const server = api;
      // Requests get half the shutdown time to finish; a connection still open then (a client
      // that keeps sending on it, or never finishes a request) is cut, so a stop always ends
      // and the workers keep the other half. A WebSocket too: one whose client never answers
      // the 1001 close (a dead path, a frozen client) would hold the server open.
      const closed = server.close();
      const cut = setTimeout(() => {
        server.server.closeAllConnections();
        for (const client of server.websocketServer?.clients ?? []) client.terminate();
      }, config.shutdownTimeoutMs / 2);
      await closed.finally(() => clearTimeout(cut));
    }
    await metricsServer?.close();
    await watch.unlessUnreachable(Promise.all(runners.map((r) => r.stop())));
    tails?.stop();
    await watch.unlessUnreachable(redis.quit().catch(() => redis.disconnect()));
  };
  if (privateRedis) watchPrivateRedis(privateRedis, config.dataDir, log, () => stopping !== undefined, hooks);
  // The workers run from here: a start that fails past this point (a port taken, the admin key)
  // stops them, handing their leases back and leaving the registry, rather than leaving both to
  // expire as a crash's would.
  try {
    if (config.roles.includes('api')) {
      // The event history reads the archived part first: any process may serve a replay from a
      // position the archiver has moved out of Redis (ARCHIVE_DIR is one place all of them see).
      const archive = new DiskArchive(config.archiveDir);
      // A history the archive cannot give whole fails the request (logged with what to do), never
      // answered with a hole in it.
      const history: EventHistory = (ws, after, limit) =>
        new LogReader(redis, archive, ws, 'events', {
          after,
          pageSize: limit,
          onBreak: refuseBreaks(archive, ws),
        }).next('+');
      // The tails read from it what the archiver trimmed past them before they read it.
      tails = new TailHub(redis, log.child({ role: 'api' }), undefined, history);
      // The state at a position: the auditor's replay from the latest snapshot at or before it.
      const alog = log.child({ role: 'api' });
      const state = (ws: string, at: string) =>
        stateAt(redis, ws, at, {
          archive,
          onBreak: refuseBreaks(archive, ws),
          onBadSnapshot: (snapshot, why) =>
            alog.warn(
              { workspace: ws, snapshot, why },
              'a state snapshot is damaged or of events Redis lost; using an earlier one',
            ),
        });
      api = await buildApi({
        redis,
        tails,
        history,
        stateAt: state,
        ...(projector && projecting
          ? { projectSoon: projectSoon(projector, projecting, tickAppends(projectorOptions)) }
          : {}),
        config,
        watch,
        metrics,
        logger: log.child({ role: 'api' }),
        version: VERSION,
        stopping: () => stopping !== undefined,
        roles: () => ({
          roles: config.roles,
          workspaces: [...new Set(runners.flatMap((r) => r.workspaces()))],
          ...(projector ? { projectorApplied: projector.applied } : {}),
          ...(dispatcher ? { dispatcherAssignments: dispatcher.assignments } : {}),
          ...(archiver ? { archiverStreams: archiver.streams() } : {}),
        }),
      });
      api.server.on('request', (req: IncomingMessage) => {
        if (!DRAIN_UNCOUNTED.test(req.url ?? '')) lastSentAt = Date.now();
      });
      if (config.auth === 'off')
        log.warn(
          { auth: 'off' },
          'AUTH=off: NO API KEYS ARE CHECKED. Anyone who reaches this port can read and change every workspace. Use it for local experiments only.',
        );
      await hooks.beforeListen?.(redis);
      if (config.durability === 'replicated') void warnWithoutReplicas(redis, log);
      listening = await api.listen({ host: config.host, port: config.port });
      log.info({ url: listening, roles: config.roles }, 'switchboard is listening');
      if (config.advertise) {
        // PORT=0 picks a free port: advertise the one actually bound.
        const bound = new URL(listening).port;
        const instance = { host: config.advertise.host, port: config.advertise.port || Number(bound) };
        // Listening on loopback only (HOST's default) while registering an address other machines
        // are to reach: HAProxy adds the server and its check never passes.
        if (isLoopbackHost(config.host) && !isLoopbackHost(instance.host))
          log.warn(
            { instance, host: config.host },
            `ADVERTISE_ADDRESS registers ${instance.host}:${instance.port} for the load balancer, but this instance listens on HOST (${config.host}), a loopback address no other machine reaches: a load balancer elsewhere adds it and its check never passes. Set HOST to the address it is reached at, or 0.0.0.0.`,
          );
        // Registered once a heartbeat lands: an instance started while Redis does not answer is
        // not in the load balancer until then, and says so.
        registration = await registerInstance(redis, instance, {
          onRegistered: () => log.info({ instance }, 'registered for the load balancer'),
          onRecovered: (failures) =>
            log.info(
              { instance, failures },
              'instance heartbeat landed again; registered for the load balancer',
            ),
          onError: (err, registered, failures) =>
            registered
              ? log.warn(
                  { instance, err: (err as Error).message, failures },
                  `instance heartbeat failed; retrying every second (said again every 30 s while it fails): the load balancer takes this instance out once its entry is older than 3 s. ${redisAdvice(err)}`,
                )
              : log.warn(
                  { instance, err: (err as Error).message, failures },
                  `not registered for the load balancer yet: the heartbeat into Redis failed; retrying every second, and the load balancer sends this instance nothing until one lands. ${redisAdvice(err)}`,
                ),
        });
      }
    } else {
      log.info({ roles: config.roles }, 'switchboard is running');
    }

    // METRICS_PORT: /metrics on a port of its own, the only one of a process without the API.
    metricsServer =
      config.metricsPort === undefined
        ? undefined
        : await serveMetrics(config.host, config.metricsPort, metrics, () =>
            metricsText(metrics, redis, {
              workspaces: [...new Set(runners.flatMap((r) => r.workspaces()))],
              ...(projector ? { projectorApplied: projector.applied } : {}),
              ...(dispatcher ? { dispatcherAssignments: dispatcher.assignments } : {}),
              ...(archiver ? { archiverStreams: archiver.streams() } : {}),
              ...(tails ? { subscribers: tails.subscribersByWorkspace(), fills: tails.fills } : {}),
            }),
          );
    if (metricsServer) log.info({ url: `${metricsServer.url}/metrics` }, 'serving /metrics');
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }

  started = true;
  return {
    redis,
    ...(api ? { api } : {}),
    ...(listening ? { url: listening } : {}),
    ...(metricsServer ? { metricsUrl: metricsServer.url } : {}),
    stop,
  };
}

/**
 * The private redis-server exiting while this process is not stopping (the OOM killer, a kill, a
 * crash; a damaged AOF is found during the start, which waits for the load): logged at fatal with its exit,
 * its last output and what to do, then `onFatal`. Before, the process ran on without its Redis
 * for ever, every step and request failing with "Command timed out" and nothing saying why.
 */
function watchPrivateRedis(
  server: RedisServerHandle,
  dataDir: string,
  log: Logger,
  stopping: () => boolean,
  hooks: StartHooks,
): void {
  let output = '';
  const keep = (b: Buffer) => {
    output = (output + b.toString('utf8')).slice(-4000);
  };
  server.process.stdout?.on('data', keep);
  server.process.stderr?.on('data', keep);
  server.process.once('exit', (code, signal) => {
    if (stopping()) return;
    const exit = signal ?? `code ${code}`;
    const problem = `the private redis-server in DATA_DIR ${path.resolve(dataDir)} exited (${exit}) while Switchboard runs; stopping. ${privateRedisAdvice(dataDir)}`;
    log.fatal({ exit, output: output.trim().split('\n').slice(-10) }, problem);
    hooks.onFatal?.(problem);
  });
}

/**
 * Workspace leases of this process (the dispatcher's; the archiver's and the interval
 * projection's under keys of their own, `holder`), renewed three times per lease time.
 */
function leaseKeeper(redis: RedisClient, config: Config, log: Logger, holder?: LeaseHolder): LeaseKeeper {
  return new LeaseKeeper(redis, `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`, log, {
    ttlMs: config.leaseTtlMs,
    renewEveryMs: Math.max(100, Math.floor(config.leaseTtlMs / 3)),
    ...(holder ? { holder } : {}),
  });
}

/**
 * The archiver role: one archiver per workspace at a time, by a lease of its own (the
 * dispatcher's mechanism under other keys). It serves workspaces idle for as long as the
 * retention's age, so their last entries are archived too.
 */
function archiverRunner(
  redis: RedisClient,
  config: Config,
  log: Logger,
  observer: ArchiverObserver,
): { runner: WorkspaceRunner; archiver: Archiver } {
  const alog = log.child({ role: 'archiver' });
  const store = new DiskArchive(config.archiveDir);
  const archiver = new Archiver(redis, store, alog, {
    observer,
    snapshots: new SnapshotWriter(redis, store, alog, { every: config.snapshotEveryEvents }),
    retention: config.logRetention,
    segmentEntries: config.archiveSegmentEntries,
    everyMs: config.archiveEveryMs,
    ...(config.contactRetentionMs !== undefined ? { contactRetentionMs: config.contactRetentionMs } : {}),
    ...(config.archivePauseAt ? { pauseAt: config.archivePauseAt } : {}),
  });
  const leases = leaseKeeper(redis, config, alog, {
    role: 'archiver',
    key: (ws) => workspaceKeys(ws).archiverLease,
    registry: globalKeys.archivers,
  });
  alog.info(
    { archiveDir: config.archiveDir, retention: config.logRetention },
    'archiving old stream entries',
  );
  const runner = new WorkspaceRunner(redis, archiver, alog, {
    workspaces: config.workspaces,
    discover: config.discoverWorkspaces,
    leases,
    discoverEveryMs: leases.opts.renewEveryMs,
    idleAfterMs: Math.max(DEFAULT_IDLE_AFTER_MS, (config.logRetention.ageMs ?? 0) + 3_600_000),
  });
  return { runner, archiver };
}

/**
 * The live interval projection (GET /stats/intervals), with the projector role: one process per
 * workspace at a time, by a lease of its own (the dispatcher's mechanism under other keys). Its
 * steps are safe to run anywhere at once; the lease only keeps processes from doing the work twice.
 */
function intervalsRunner(redis: RedisClient, config: Config, log: Logger): WorkspaceRunner {
  const ilog = log.child({ role: 'intervals' });
  const archive = new DiskArchive(config.archiveDir);
  // Across the archive: a workspace's first step reads the whole log, trimmed part included.
  const history: EventHistory = (ws, after, limit) =>
    new LogReader(redis, archive, ws, 'events', { after, pageSize: limit }).next('+');
  const leases = leaseKeeper(redis, config, ilog, {
    role: 'intervals',
    key: (ws) => workspaceKeys(ws).intervalsLease,
    registry: globalKeys.intervalProjections,
  });
  return new WorkspaceRunner(redis, new IntervalProjection(redis, ilog, history), ilog, {
    workspaces: config.workspaces,
    discover: config.discoverWorkspaces,
    leases,
    discoverEveryMs: leases.opts.renewEveryMs,
  });
}

/**
 * Most commands one tick's step appends: with a step budget, 32 (keyed appends cost about 8 µs
 * each, so 32 take a fraction of the 2 ms and leave the rest of the budget to applying them,
 * whose outcomes the step's reply then carries); without one, a whole batch.
 */
export const TICK_APPENDS = 32;

function tickAppends(opts: { readonly batch: number; readonly stepBudgetMs: number }): number {
  return opts.stepBudgetMs > 0 ? Math.min(opts.batch, TICK_APPENDS) : opts.batch;
}

/**
 * With the projector role in the API's process, the commands of a workspace this process's
 * projector serves are not appended on their own: a tick's commands go to Redis together, in one
 * projector step sent at the end of the tick, which appends them in order (looking their
 * Idempotency-Keys up as an append does) and applies them. That is one call where there was an
 * append per command and then the step, no projector's read wakes for them, and the step's reply
 * carries the outcome of each command it applied: the request is answered from it, not from the
 * tail's read of the outcome stream. The step is the projector's own (any number
 * may run at once, each applies only what follows the checkpoint). A step that fails after
 * appending is left to the loop, and a workspace the loop does not serve to the process that does.
 */
export function projectSoon(
  projector: Pick<Projector, 'stepNow'>,
  runner: Pick<WorkspaceRunner, 'serves'>,
  most: number,
): ProjectSoon {
  const scheduled = new Set<string>();
  const pending = new Map<string, PendingAppend[]>();
  const schedule = (workspace: string) => {
    if (scheduled.has(workspace)) return;
    scheduled.add(workspace);
    // An immediate runs after the tick's requests have asked for their appends.
    setImmediate(() => {
      scheduled.delete(workspace);
      const waiting = pending.get(workspace) ?? [];
      pending.delete(workspace);
      // At most one step's worth in a step; the steps for the rest are sent at once, right behind
      // it (each holds Redis for its own appends only; none waits for another turn of the loop).
      for (let i = 0; i < waiting.length; i += most)
        projector.stepNow(workspace, waiting.slice(i, i + most)).catch(() => {});
    });
  };
  return {
    // Only the workspaces this process's projector serves: the others are another process's work.
    serves: (workspace) => runner.serves(workspace),
    append: (workspace, append) =>
      new Promise<unknown[]>((resolve, reject) => {
        let waiting = pending.get(workspace);
        if (!waiting) {
          waiting = [];
          pending.set(workspace, waiting);
        }
        waiting.push({ append, resolve, reject });
        schedule(workspace);
      }),
  };
}
