/**
 * An option that takes one value, given twice (`npm run audit -- --workspace a --workspace b`),
 * used to be taken silently as its last value: the audit, rebuild or keys of another workspace
 * than the one meant. Every tool now refuses it with exit 2, naming the option and its values, and
 * so does the topology launcher (`--data-dir a --data-dir b` launched in b), before it writes
 * anything in either data directory.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { launcherEntry } from '../support/main-build.ts';
import { suiteRedis } from '../support/redis.ts';
import { tempDir } from '../topology/helpers.ts';
import { type CliRun, runCli } from './run-cli.ts';

const dirs: { remove(): Promise<void> }[] = [];
afterAll(async () => {
  for (const d of dirs) await d.remove();
});

/** `npm run topology -- <args>` (killed after 20 s: a launch that went ahead is a failure). */
function runLauncher(args: readonly string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...launcherEntry(), ...args],
      { timeout: 20_000, killSignal: 'SIGINT' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('a repeated single-valued option', () => {
  const suite = suiteRedis();

  it('is refused by every tool with exit 2, naming it', { timeout: 60_000 }, async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...suite.server.env };
    delete env.VITEST;
    const twice = ['--workspace', 'rep-a', '--workspace', 'rep-b'];
    const [a, b] = [await tempDir('repeated-a'), await tempDir('repeated-b')];
    dirs.push(a, b);
    const ports = ['--http-port', '0', '--tls-port', '0', '--stats-port', '0', '--redis-port', '0'];
    const [audit, rebuild, keys, simulate, bench, topology] = await Promise.all([
      runCli('audit', twice, env),
      runCli('rebuild', twice, env),
      runCli('keys', ['list', ...twice], env),
      runCli('simulate', ['--url', 'http://127.0.0.1:1', ...twice], env),
      runCli('bench', ['seed', '--seed', '1', '--seed', '2', '--redis-url', 'redis://127.0.0.1:1'], env),
      runLauncher(['--no-vrrp', '--data-dir', a.dir, '--data-dir', b.dir, ...ports, '--status-port', '0']),
    ]);
    for (const [name, run] of Object.entries({ audit, rebuild, keys, simulate })) {
      expect({ name, code: run.code }, run.stderr).toEqual({ name, code: 2 });
      expect(run.stderr).toContain(`${name}: --workspace: given 2 times ("rep-a", "rep-b"); give it once`);
    }
    expect(bench.code, bench.stderr).toBe(2);
    expect(bench.stderr).toContain('bench: --seed: given 2 times ("1", "2"); give it once');
    expect(topology.stderr).toContain(
      `topology: --data-dir: given 2 times ("${a.dir}", "${b.dir}"); give it once`,
    );
    expect(topology.code, topology.stderr).toBe(2);
    // Refused before the launcher wrote anything in either directory.
    expect({ a: readdirSync(a.dir), b: readdirSync(b.dir) }).toEqual({ a: [], b: [] });
  });
});
