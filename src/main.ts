import { type AdminKeyOutcome, ensureAdminKey, logAdminKey, printAdminKey } from './app/admin-key.ts';
import { type StartHooks, startSwitchboard } from './app/composition-root.ts';
import { ConfigError, loadConfig } from './app/config.ts';
import { createLogger } from './app/logger.ts';

/** The main command: every role in one process unless ROLES says otherwise. */
async function main(): Promise<void> {
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
  const log = createLogger(config.logLevel, { roles: config.roles.join(',') });
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection; continuing'));
  // The first start makes the admin key of workspace default before the API listens, so the
  // key file is there as soon as the port answers (the guide reads it right after npm start).
  let adminKey: AdminKeyOutcome | undefined;
  const beforeListen: StartHooks['beforeListen'] = async (redis) => {
    try {
      adminKey = await ensureAdminKey(redis, config.dataDir);
      logAdminKey(adminKey, log);
    } catch (err) {
      log.error({ err }, 'could not make or read the admin key; make one with npm run keys -- create');
    }
  };
  const withKey = config.auth === 'on' && config.roles.includes('api');
  const running = await startSwitchboard(config, log, withKey ? { beforeListen } : {});
  if (adminKey) printAdminKey(adminKey, running.url);
  let signalled = false;
  const shutdown = (signal: string) => {
    if (signalled) return;
    signalled = true;
    log.info({ signal }, 'shutting down: finishing in-flight work');
    // An instance registered for the load balancer serves on for LB_DRAIN_MS first; then
    // SHUTDOWN_TIMEOUT_MS applies (README, "Configuration").
    const timeoutMs = config.shutdownTimeoutMs + (config.advertise !== undefined ? config.lbDrainMs : 0);
    const force = setTimeout(() => {
      log.error({ timeoutMs }, 'shutdown took too long; exiting');
      process.exit(1);
    }, timeoutMs);
    force.unref();
    running.stop().then(
      () => {
        log.info('stopped cleanly');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`switchboard: could not start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
