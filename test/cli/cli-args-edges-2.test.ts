/**
 * `--rates a,b,...` is e2e's (several offered rates in one go). Given to fanout (or any other
 * workload), it used to be accepted: fanout ran once at the first rate and dropped the others
 * without a word (`fanout --rates 5,10` reported one run, at 5/s). It is refused with exit 2 before
 * anything starts, saying to give fanout one --rate.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

describe('bench --rates outside e2e', () => {
  it('is refused with exit 2, naming the option', { timeout: 60_000 }, async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.VITEST;
    // Nothing listens at port 1: a run that went ahead fails there at once (exit 1).
    const rest = [
      '--subscribers',
      '1',
      '--duration',
      '0.2',
      '--warmup',
      '0',
      '--redis-url',
      'redis://127.0.0.1:1',
    ];
    const [fanout, seed] = await Promise.all([
      runCli('bench', ['fanout', '--rates', '5,10', ...rest], env),
      runCli('bench', ['seed', '--rates', '5,10', '--redis-url', 'redis://127.0.0.1:1'], env),
    ]);
    expect(fanout.stderr).toContain('bench: --rates: only for e2e; give fanout one --rate');
    expect(fanout.code, fanout.stderr).toBe(2);
    expect(seed.stderr).toContain('bench: --rates: only for e2e');
    expect(seed.code, seed.stderr).toBe(2);
  });
});
