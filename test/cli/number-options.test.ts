/**
 * The tools' number options were read with Number(): `npm run audit -- --page-size 0x10` audited
 * with pages of 16, `--page-size 1e3` with 1000, and a leading `+`, spaces around the digits,
 * `1.0` for an integer or hex in a list (`--sizes 0x10`) were taken alike. They are decimal digits
 * only now (a fraction where the option takes one: `--rate 0.5`), anything else refused with exit 2
 * naming the option and what it takes, as the out-of-range values were; valid values mean what
 * they meant.
 */
import { describe, expect, it } from 'vitest';
import { OptionChecker } from '../../src/cli/sim/options.ts';
import { suiteRedis } from '../support/redis.ts';
import { runCli } from './run-cli.ts';

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('number options of the tools', () => {
  const suite = suiteRedis();
  const env = (): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = { ...process.env, ...suite.server.env };
    delete e.VITEST;
    return e;
  };

  it('audit, bench and simulate refuse a number option that is not decimal digits, with exit 2, naming it', {
    timeout: 60_000,
  }, async () => {
    const pageSizes = ['0x10', '1e3', '+10', ' 10'];
    const benchBad = {
      agents: '0x10',
      contacts: '1e3',
      events: '+5',
      clients: ' 5',
      count: 'Infinity',
      decisions: '20.0',
      duration: '1e0',
      warmup: ' 1',
      queues: '1e3,2000',
      sizes: '0x10',
      rates: '100, 200',
    };
    const simBad = {
      agents: '0x10',
      contacts: '+5',
      rate: '1e1',
      'handle-min': ' 1',
      patience: 'Infinity',
      'reject-rate': '.1e0',
      'offer-timeout': '0x1',
      priorities: '1.0',
      'max-seconds': '+60',
    };
    const args = (o: Record<string, string>) => Object.entries(o).flatMap(([k, v]) => [`--${k}`, v]);
    const audits = Promise.all(
      pageSizes.map((v) => runCli('audit', ['--workspace', 'numbers', '--page-size', v], env())),
    );
    const [bench, benchAll, simulate] = await Promise.all([
      // --seed -1 is refused by both readers, old and new: no run starts whatever the others do.
      runCli('bench', ['seed', ...args(benchBad), '--seed=-1', '--redis-url', 'redis://127.0.0.1:1'], env()),
      runCli('bench', ['all', '--seed', '0x10', '--full', '--tiny'], env()),
      runCli('simulate', ['--url', 'http://127.0.0.1:1', ...args(simBad), '--capacity', '0'], env()),
    ]);
    (await audits).forEach((run, i) => {
      const v = pageSizes[i]!;
      expect({ value: v, code: run.code }, run.stderr).toEqual({ value: v, code: 2 });
      expect(run.stderr, v).toMatch(
        new RegExp(
          `^audit: --page-size: must be an integer from 1 to 100000, in decimal digits \\(got "${esc(v)}"\\)$`,
          'm',
        ),
      );
    });
    expect(bench.code, bench.stderr).toBe(2);
    expect(benchAll.code, benchAll.stderr).toBe(2);
    expect(simulate.code, simulate.stderr).toBe(2);
    const named = (stderr: string, tool: string, bad: Record<string, string>) =>
      Object.entries(bad).filter(
        ([k, v]) => !new RegExp(`^${tool}: --${k}: must be .*\\(got "${esc(v)}"\\)$`, 'm').test(stderr),
      );
    expect(named(bench.stderr, 'bench', benchBad), bench.stderr).toEqual([]);
    expect(named(benchAll.stderr, 'bench', { seed: '0x10' }), benchAll.stderr).toEqual([]);
    expect(named(simulate.stderr, 'simulate', simBad), simulate.stderr).toEqual([]);
    expect(bench.stderr).toMatch(
      /^bench: --agents: must be an integer from 1 to 1000000, in decimal digits/m,
    );
    expect(simulate.stderr).toMatch(
      /^simulate: --rate: must be a number greater than 0 and at most 100000, in decimal digits/m,
    );
  });

  it('refuses every form Number() takes that is not decimal digits', () => {
    const check = new OptionChecker();
    const integers = [
      '0x10',
      '1e3',
      '+10',
      '-0',
      ' 10',
      '10 ',
      'Infinity',
      '',
      '10.0',
      '0b11',
      '0o7',
      '1_000',
    ];
    for (const v of integers) check.number('page-size', v, 5000, { integer: true, min: 0, max: 100_000 });
    const numbers = ['0x1', '1e1', '+1', ' 1', '1 ', 'Infinity', '', '1.', '.', '-0', '1,5'];
    for (const v of numbers) check.number('rate', v, 2, { min: 0, max: 100_000 });
    for (const v of ['1e3', '0x10,2', '1, 2', ' 1', '1,,2', ',', ''])
      check.integers('sizes', v, [1], 'sizes', { min: 0, max: 10 ** 7 });
    expect(check.problems).toEqual([
      ...integers.map(
        (v) => `--page-size: must be an integer from 0 to 100000, in decimal digits (got "${v}")`,
      ),
      ...numbers.map((v) => `--rate: must be a number from 0 to 100000, in decimal digits (got "${v}")`),
      ...['1e3', '0x10,2', '1, 2', ' 1', '1,,2', ',', ''].map(
        (v) =>
          `--sizes: must be a comma-separated list of sizes from 0 to 10000000, in decimal digits with no spaces (got "${v}")`,
      ),
    ]);
  });

  it('keeps what valid values mean', () => {
    const check = new OptionChecker();
    expect(check.number('page-size', '5000', 1, { integer: true, min: 1, max: 100_000 })).toBe(5000);
    expect(check.number('page-size', '010', 1, { integer: true, min: 1, max: 100_000 })).toBe(10);
    expect(check.number('rate', '0.5', 2, { minExclusive: 0, max: 100_000 })).toBe(0.5);
    expect(check.number('rate', '.5', 2, { minExclusive: 0, max: 100_000 })).toBe(0.5);
    expect(check.number('rate', '2', 1, { minExclusive: 0, max: 100_000 })).toBe(2);
    expect(check.number('seed', '4294967295', 0, { integer: true, min: 0, max: 2 ** 32 - 1 })).toBe(
      2 ** 32 - 1,
    );
    expect(check.fraction('reject-rate', '0.03', 0)).toBe(0.03);
    expect(check.number('page-size', undefined, 5000, { integer: true, min: 1 })).toBe(5000);
    expect(check.integers('sizes', '1000,100000', [1], 'sizes', { min: 1, max: 10_000_000 })).toEqual([
      1000, 100_000,
    ]);
    expect(check.problems).toEqual([]);
  });
});
