import { type DestinationStream, type Logger, pino, destination as pinoDestination } from 'pino';
import { REPORT_DEFECT } from '../adapters/redis/advice.ts';

/**
 * Where a logged error may carry a secret: ioredis puts the command that failed on its errors
 * (`command: {name, args}`), and a refused login's is `AUTH <user> <password>`. A command's
 * arguments are never logged (its name is).
 */
export const REDACTED_PATHS = ['err.command.args', 'error.command.args', '*.err.command.args'];

/** pino JSON logs; every line names the process's roles, requests add their request id. */
export function createLogger(
  level: string,
  bindings: Record<string, unknown> = {},
  destination?: DestinationStream,
): Logger {
  const options = {
    level,
    base: { pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  // stdout written synchronously (one write per line; lines at info are few: a request's is at
  // debug unless refused, slow or failed). pino's default stream writes asynchronously and flushes
  // at exit with sonic-boom's flushSync, which retries a write failing with EPIPE for ever: with its
  // reader gone (a launcher killed outright), a stopping process hung in its exit. Synchronously, a
  // write to a closed reader is dropped (pino stops writing there) and nothing is left to flush.
  return pino(options, destination ?? pinoDestination({ dest: 1, sync: true }));
}

/** A promise rejected with no handler: logged, the process going on, with what to do. */
export function logUnhandledRejection(log: Logger, err: unknown): void {
  log.error({ err }, `unhandled rejection; continuing. ${REPORT_DEFECT}`);
}
