/**
 * A Switchboard process whose log reader is gone (its stdout a pipe whose other end closed: a
 * launcher killed outright, a log shipper that died) still exits when it stops. pino's default
 * stdout stream writes asynchronously and flushes at exit with sonic-boom's flushSync, which
 * retries a write that failed with EPIPE for ever (100 ms sleeps): the process hung in its exit,
 * its main thread in a futex wait, and a launcher killed outright left it running
 * (test/topology/data-dir-lock.test.ts). The logger writes stdout synchronously instead: a write
 * to a closed reader is dropped (pino stops logging there), and nothing is left to flush at exit.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { pidAlive } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const LOGGER = fileURLToPath(new URL('../../src/app/logger.ts', import.meta.url));

// Logs once its reader has closed stdout (the parent's signal: stdin's end), then exits at once.
const SCRIPT = `
  const { createLogger } = await import(${JSON.stringify(LOGGER)});
  process.stdin.resume();
  process.stdin.on('end', () => {
    const log = createLogger('info', { role: 'test' });
    for (let i = 0; i < 20; i++) log.info({ i }, 'a line nobody reads '.repeat(20));
    process.exit(0);
  });
`;

describe('a process whose log reader is gone', () => {
  it('exits when it stops, its log lines dropped', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // The reader goes (its end of the pipe closed), then the process is told to log and stop.
    await new Promise((r) => setTimeout(r, 1500));
    child.stdout!.destroy();
    child.stdin!.end();
    try {
      await waitFor('the process to exit', () => !pidAlive(child.pid!), { timeoutMs: 10_000, everyMs: 50 });
      expect(await exited, stderr).toBe(0);
    } finally {
      if (pidAlive(child.pid!)) child.kill('SIGKILL');
    }
  });
});
