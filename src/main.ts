import os from 'node:os';
import {
  AdminKeyFileError,
  type AdminKeyOutcome,
  ensureAdminKey,
  logAdminKey,
  printAdminKey,
} from './app/admin-key.ts';
import { MAIN_USAGE, mainCommandLine } from './app/command-line.ts';
import { type StartHooks, StartProblem, startSwitchboard } from './app/composition-root.ts';
import { type Config, ConfigError, loadConfig, unreadSettings } from './app/config.ts';
import { archiveDirProblem, claimPrivateDataDir, forgetPrivateRedis } from './app/data-dir.ts';
import { createLogger, logUnhandledRejection } from './app/logger.ts';

/** The main command: every role in one process unless ROLES says otherwise. */
async function main(): Promise<void> {
  // Configured by the environment only: an argument is refused, not ignored (before anything starts).
  const line = mainCommandLine(process.argv.slice(2));
  if (line.kind === 'help') {
    process.stdout.write(MAIN_USAGE, () => process.exit(0));
    return;
  }
  if (line.kind === 'refuse') {
    process.stderr.write(`switchboard: ${line.problem}\n`, () => process.exit(2));
    return;
  }
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`switchboard: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // Without a Redis configured, DATA_DIR holds the private redis-server's AOF: one process at a time.
  if (config.redisUrl === undefined && config.redisClusterNodes.length === 0) {
    const problem = claimPrivateDataDir(config.dataDir);
    if (problem !== undefined) {
      process.stderr.write(`switchboard: could not start: ${problem}\n`);
      process.exit(1);
    }
  }
  if (config.roles.includes('archiver')) {
    const problem = archiveDirProblem(config.archiveDir);
    if (problem !== undefined) {
      process.stderr.write(`switchboard: could not start: ${problem}\n`);
      process.exit(1);
    }
  }
  const log = createLogger(config.logLevel, { roles: config.roles.join(',') });
  process.on('unhandledRejection', (err) => logUnhandledRejection(log, err));
  // A setting of a role this process does not run does nothing here: said once, as it may be
  // shared by every process of a deployment (ADVERTISE_ADDRESS, which would register nothing, is refused).
  const unread = unreadSettings(process.env, config.roles);
  if (unread.length > 0)
    log.warn(
      { unread: Object.fromEntries(unread.map((u) => [u.name, u.readBy])) },
      `${unread.map((u) => `${u.name} (${u.readBy.join(', ')})`).join(', ')}: set, but only the roles named read ${unread.length === 1 ? 'it' : 'them'}, and ROLES (${config.roles.join(',')}) has none of them: no effect in this process; unset ${unread.length === 1 ? 'it' : 'them'} here, or add the role to ROLES`,
    );
  // The first start makes the admin key of workspace default before the API listens, so the
  // key file is there as soon as the port answers (the guide reads it right after npm start).
  let adminKey: AdminKeyOutcome | undefined;
  const beforeListen: StartHooks['beforeListen'] = async (redis) => {
    try {
      adminKey = await ensureAdminKey(redis, config.dataDir);
      logAdminKey(adminKey, log);
    } catch (err) {
      // The file named: an error reading it (EISDIR, EACCES) does not say which file it was.
      if (err instanceof AdminKeyFileError)
        log.error(
          { err: (err.cause as Error).message, file: err.file },
          'could not read or write the admin key of workspace default in this file (DATA_DIR/admin-key): make it a file this user can read and write, or remove it to have a new key made at the next start; or make a key with npm run keys -- create --workspace default --role admin',
        );
      else
        log.error(
          { err },
          'could not make or check the admin key of workspace default in Redis: the next start makes it once Redis answers; or make one with npm run keys -- create --workspace default --role admin',
        );
    }
  };
  const withKey = config.auth === 'on' && config.roles.includes('api');
  const privateRedis = config.redisUrl === undefined && config.redisClusterNodes.length === 0;
  // The signals are heard from the start: one during the start (a private redis-server may run
  // already) stops what has started once the start ends, rather than killing this process and
  // leaving that redis-server running on DATA_DIR.
  // What this process cannot run without gone (its private redis-server exited): logged at
  // fatal with what to do by the composition root; stopped, exit 1.
  const onFatal: StartHooks['onFatal'] = () => shutdown('fatal', 1);
  let signalled = false;
  const shutdown = (signal: string, code = 0) => {
    if (signalled) {
      // A second signal (Ctrl-C again) while the stop waits: exit at once, 128 + its number (130
      // for SIGINT), as a shell reports a process the signal ended. The private redis-server is
      // killed on the way out (the exit hook of its handle; what it acknowledged is in its AOF)
      // and its private-redis.json removed, as its stop does.
      const number = os.constants.signals[signal as NodeJS.Signals];
      if (number === undefined) return;
      log.warn({ signal }, 'signalled again while stopping: exiting at once');
      if (privateRedis) forgetPrivateRedis(config.dataDir);
      process.exit(128 + number);
    }
    signalled = true;
    if (code === 0) log.info({ signal }, 'shutting down: finishing in-flight work');
    // An API instance serves on for LB_DRAIN_MS first (/health 503 meanwhile), up to twice that
    // while requests still arrive; then SHUTDOWN_TIMEOUT_MS applies (README, "Configuration").
    const timeoutMs = config.shutdownTimeoutMs + (config.roles.includes('api') ? 2 * config.lbDrainMs : 0);
    // Forced: the private redis-server is killed on the way out as on a second signal, and its
    // private-redis.json removed with it.
    const force = setTimeout(() => {
      log.error(
        { timeoutMs },
        `shutdown took too long; exiting${privateRedis ? ' (the private redis-server killed: what it acknowledged is in its AOF)' : ''}. If a stop needs longer (requests that take long, LB_DRAIN_MS), raise SHUTDOWN_TIMEOUT_MS`,
      );
      if (privateRedis) forgetPrivateRedis(config.dataDir);
      process.exit(1);
    }, timeoutMs);
    force.unref();
    starting
      .then((running) => running.stop())
      .then(
        () => {
          log.info(code === 0 ? 'stopped cleanly' : 'stopped after the fatal error above; exiting with 1');
          process.exit(code);
        },
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  // Heard before the start begins, so every line the start logs comes after (a signal can be
  // handled only once this synchronous part has assigned `starting`). SIGHUP too: the terminal
  // `npm start` runs in closed (a window, an SSH session). Killed by it, the process would leave
  // its private redis-server (a process group of its own) running.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => shutdown(signal));
  const starting = startSwitchboard(config, log, withKey ? { beforeListen, onFatal } : { onFatal }).catch(
    (err: unknown) => {
      const problem = err instanceof StartProblem ? err.message : listenProblem(err, config);
      if (problem === undefined) throw err;
      process.stderr.write(`switchboard: could not start: ${problem}\n`);
      process.exit(1);
    },
  );
  const running = await starting;
  if (adminKey) printAdminKey(adminKey, running.url);
}

/**
 * Why the API or metrics port could not be opened, naming the variable to change; undefined for
 * any other error.
 */
function listenProblem(err: unknown, config: Config): string | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };
  if (e?.syscall === 'getaddrinfo' && e.hostname === config.host)
    return `HOST: "${config.host}" is not a name this machine can resolve (${e.code}); use one of its addresses, such as 127.0.0.1 or 0.0.0.0`;
  if (e?.syscall !== 'listen') return undefined;
  const variable =
    config.metricsPort !== undefined && e.port === config.metricsPort && e.port !== config.port
      ? 'METRICS_PORT'
      : 'PORT';
  const where = `${e.address}:${e.port}`;
  if (e.code === 'EADDRINUSE')
    return `${variable}: ${where} is in use by another process; choose a free port`;
  if (e.code === 'EADDRNOTAVAIL') return `HOST: ${e.address} is not an address of this machine (${where})`;
  if (e.code === 'EACCES')
    return `${variable}: ${where} needs privileges this process lacks; use a port above 1023`;
  return `${variable}, HOST: cannot listen on ${where} (${e.code}: ${e.message})`;
}

main().catch((err: unknown) => {
  process.stderr.write(`switchboard: could not start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
