import { type Logger, pino } from 'pino';

/** pino JSON logs; every line names the process's roles, requests add their request id. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime });
}
