/**
 * A log file the launcher writes a child's output to, capped by size: once it passes `maxBytes`
 * (default 10 MiB) it is renamed to `<file>.1` (replacing the previous one) and a new file is
 * begun, so each process keeps at most about twice the cap on disk.
 */
import { closeSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import type { Readable } from 'node:stream';

export const LOG_MAX_BYTES = 10 * 1024 * 1024;

export class RotatingLog {
  private fd: number | undefined;
  private size = 0;

  constructor(
    readonly file: string,
    readonly maxBytes = LOG_MAX_BYTES,
  ) {
    this.open();
  }

  private open(): void {
    this.fd = openSync(this.file, 'a', 0o600);
    try {
      this.size = statSync(this.file).size;
    } catch {
      this.size = 0;
    }
  }

  write(chunk: Buffer | string): void {
    if (this.fd === undefined) return;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    try {
      writeSync(this.fd, buf);
      this.size += buf.length;
      if (this.size >= this.maxBytes) this.rotate();
    } catch {
      /* a full disk must not stop the launcher */
    }
  }

  /** One line with a timestamp, from the launcher itself (restarts, exits). */
  note(line: string): void {
    this.write(`${new Date().toISOString()} [launcher] ${line}\n`);
  }

  private rotate(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    try {
      renameSync(this.file, `${this.file}.1`);
    } catch {
      /* keep appending to the same file */
    }
    this.open();
  }

  /** Copies a child's stream into the file (the stream is drained, so the child never blocks). */
  follow(stream: Readable | null | undefined): void {
    stream?.on('data', (b: Buffer) => this.write(b));
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

const open = new Map<string, RotatingLog>();

/** The one RotatingLog of `file` in this process (restarts of a child append to the same). */
export function logFile(file: string): RotatingLog {
  let log = open.get(file);
  if (!log) {
    log = new RotatingLog(file);
    open.set(file, log);
  }
  return log;
}
