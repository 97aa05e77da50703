/**
 * `simulate --handle-min 5` alone used to be refused as "--handle-max: must be at least
 * --handle-min (got 3 < 5)": blaming an option the user never gave (3 is its default). The refusal
 * names the option given and the other's default, and says to give the other too; the same for
 * --accept-min / --accept-max, either way round. Both given: the message names both values.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

describe('simulate min/max pairs with one side defaulted', () => {
  it('names the option given and the default of the other', { timeout: 60_000 }, async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.VITEST;
    // Nothing listens at port 1: a run that went ahead fails there at once (exit 1).
    const sim = (...args: string[]) => runCli('simulate', [...args, '--url', 'http://127.0.0.1:1'], env);
    const runs = await Promise.all([
      sim('--handle-min', '5'),
      sim('--handle-max', '0.5'),
      sim('--accept-min', '9'),
      sim('--accept-max', '0.05'),
      sim('--handle-min', '5', '--handle-max', '2'),
    ]);
    const lines = [
      "simulate: --handle-min 5 is above --handle-max's default 3: give --handle-max too",
      "simulate: --handle-max 0.5 is below --handle-min's default 1: give --handle-min too",
      "simulate: --accept-min 9 is above --accept-max's default 1: give --accept-max too",
      "simulate: --accept-max 0.05 is below --accept-min's default 0.1: give --accept-min too",
      'simulate: --handle-max: must be at least --handle-min (got 2 < 5)',
    ];
    runs.forEach((run, i) => {
      expect(run.stderr.split('\n'), lines[i]).toContain(lines[i]);
      expect({ i, code: run.code }, run.stderr).toEqual({ i, code: 2 });
    });
  });
});
