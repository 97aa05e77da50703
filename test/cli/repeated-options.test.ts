/**
 * An option that takes one value, given twice (`npm run audit -- --workspace a --workspace b`),
 * used to be taken silently as its last value: the audit, rebuild or keys of another workspace
 * than the one meant. Every tool now refuses it with exit 2, naming the option and its values.
 */
import { describe, expect, it } from 'vitest';
import { suiteRedis } from '../support/redis.ts';
import { runCli } from './run-cli.ts';

describe('a repeated single-valued option', () => {
  const suite = suiteRedis();

  it('is refused by every tool with exit 2, naming it', { timeout: 60_000 }, async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...suite.server.env };
    delete env.VITEST;
    const twice = ['--workspace', 'rep-a', '--workspace', 'rep-b'];
    const [audit, rebuild, keys, simulate, bench] = await Promise.all([
      runCli('audit', twice, env),
      runCli('rebuild', twice, env),
      runCli('keys', ['list', ...twice], env),
      runCli('simulate', ['--url', 'http://127.0.0.1:1', ...twice], env),
      runCli('bench', ['seed', '--seed', '1', '--seed', '2', '--redis-url', 'redis://127.0.0.1:1'], env),
    ]);
    for (const [name, run] of Object.entries({ audit, rebuild, keys, simulate })) {
      expect({ name, code: run.code }, run.stderr).toEqual({ name, code: 2 });
      expect(run.stderr).toContain(`${name}: --workspace: given 2 times ("rep-a", "rep-b"); give it once`);
    }
    expect(bench.code, bench.stderr).toBe(2);
    expect(bench.stderr).toContain('bench: --seed: given 2 times ("1", "2"); give it once');
  });
});
