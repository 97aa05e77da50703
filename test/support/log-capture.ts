/**
 * A pino logger whose lines a suite reads back: each line written, parsed, in `lines`.
 */
import { Writable } from 'node:stream';
import { type Logger, pino } from 'pino';

export function capturedLogger(level = 'warn'): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level },
    new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n'))
          if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    }),
  );
  return { logger, lines };
}
