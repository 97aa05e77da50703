/**
 * `bench all` runs every workload at its preset's sizes: it takes --out, --full, --tiny, --seed,
 * --redis-url, --json (and `--workload all` for `all` itself). `bench all --workload seed` used to
 * run every workload, --workload ignored without a word; a workload's own options (`--agents`) got
 * parseArgs's "Unknown option". Both are refused with exit 2 before anything starts, in a line
 * saying that `bench all` does not use the option.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

describe('bench all with an option it does not use', () => {
  it('is refused with exit 2, naming the option', { timeout: 60_000 }, async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.VITEST;
    // Nothing listens at port 1: a run that went ahead fails there at once (exit 1).
    const url = ['--redis-url', 'redis://127.0.0.1:1'];
    const [workload, agents, allByOption, allTwice] = await Promise.all([
      runCli('bench', ['all', '--workload', 'seed', '--tiny', ...url], env),
      runCli('bench', ['all', '--tiny', '--agents', '5', ...url], env),
      runCli('bench', ['--workload', 'all', '--tiny', ...url], env),
      runCli('bench', ['all', '--workload', 'all', '--tiny', ...url], env),
    ]);
    expect(workload.stderr).toContain(
      'bench: --workload seed: bench all runs every workload; run npm run bench -- seed for that one alone',
    );
    expect({ code: workload.code, stdout: workload.stdout }, workload.stderr).toEqual({
      code: 2,
      stdout: '',
    });
    expect(agents.stderr).toContain('bench: --agents: not an option of bench all');
    expect({ code: agents.code, stdout: agents.stdout }, agents.stderr).toEqual({ code: 2, stdout: '' });
    // `--workload all` still means all: it went ahead, to the unreachable Redis.
    for (const [name, run] of Object.entries({ allByOption, allTwice })) {
      expect(run.stderr, name).toContain('bench: cannot reach Redis at redis://127.0.0.1:1');
      expect({ name, code: run.code }, run.stderr).toEqual({ name, code: 1 });
    }
  });
});
