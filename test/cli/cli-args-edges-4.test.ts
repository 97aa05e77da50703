/**
 * A negative number given as an option's next argument (`bench seed --agents -1`, `simulate
 * --agents -3`, `audit --page-size -5`) used to get node:util parseArgs's own message, "argument is
 * ambiguous ... use '--agents=-XYZ'", over three lines with the tool's prefix on the first only;
 * doing as it said then met the range refusal: two tries for one mistake. The value is taken as
 * `--agents=-1` is, and refused in one line naming the option and its range, exit 2.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

describe('a negative number to a number option', () => {
  it('gets the range refusal at once, in one line, exit 2', { timeout: 60_000 }, async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.VITEST;
    // Nothing listens at port 1: a run that went ahead fails there at once (exit 1).
    const url = ['--redis-url', 'redis://127.0.0.1:1'];
    const [bench, simulate, audit, fraction] = await Promise.all([
      runCli('bench', ['seed', '--agents', '-1', ...url], env),
      runCli('simulate', ['--agents', '-3', '--url', 'http://127.0.0.1:1'], env),
      runCli('audit', ['--workspace', 'w', '--page-size', '-5', ...url], env),
      runCli('simulate', ['--handle-min', '-0.5', '--url', 'http://127.0.0.1:1'], env),
    ]);
    const cases = {
      bench: [bench, 'bench: --agents: must be an integer from 1 to 1000000, in decimal digits (got "-1")'],
      simulate: [
        simulate,
        'simulate: --agents: must be an integer from 1 to 100000, in decimal digits (got "-3")',
      ],
      audit: [audit, 'audit: --page-size: must be an integer from 1 to 100000, in decimal digits (got "-5")'],
      fraction: [
        fraction,
        'simulate: --handle-min: must be a number from 0 to 86400, in decimal digits (got "-0.5")',
      ],
    } as const;
    for (const [name, [run, line]] of Object.entries(cases)) {
      expect(run.stderr, name).not.toContain('ambiguous');
      expect(run.stderr.split('\n'), name).toContain(line);
      // Every line says which tool it comes from.
      const lines = run.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('Run with --help'));
      expect(
        lines.filter((l) => !l.startsWith(`${name === 'fraction' ? 'simulate' : name}: `)),
        name,
      ).toEqual([]);
      expect({ name, code: run.code }, run.stderr).toEqual({ name, code: 2 });
    }
  });
});
