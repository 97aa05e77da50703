/**
 * Runs a command of src/cli as a user runs it (`node --import tsx src/cli/<name>.ts`, or the run's
 * build of it: test/support/main-build.ts), from the repository root.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type CliTool, cliEntry } from '../support/main-build.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface CliRun {
  /** The exit code; null when the process was killed (its 50 s limit). */
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(
  name: CliTool,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...cliEntry(name), ...args],
      { cwd: ROOT, env, timeout: 50_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** `runCli`, and how long it took, start included. */
export async function timed(...args: Parameters<typeof runCli>) {
  const started = performance.now();
  const run = await runCli(...args);
  return { ...run, seconds: (performance.now() - started) / 1000 };
}
