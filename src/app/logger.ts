import { type DestinationStream, type Logger, pino } from 'pino';

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
  return destination ? pino(options, destination) : pino(options);
}
