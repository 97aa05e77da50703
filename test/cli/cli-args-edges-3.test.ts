/**
 * `--switchboard <dir>` names another checkout to compare this one with (e2e, ingest, fanout: its
 * Switchboard process; steps: its Lua steps). An empty value (`--switchboard "$OTHER"` with OTHER
 * unset) used to resolve to the current directory, this very checkout: steps compared this
 * checkout's steps with themselves and printed the ratio as a comparison, without a word. It is
 * refused with exit 2 before anything starts, saying what to give.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

describe('bench --switchboard with an empty value', () => {
  it('is refused with exit 2, not taken as this checkout', { timeout: 60_000 }, async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.VITEST;
    const [steps, e2e] = await Promise.all([
      // Small enough that a run that went ahead ends within seconds.
      runCli('bench', ['steps', '--switchboard', '', '--rounds', '1', '--agents', '1', '--json'], env),
      // Nothing listens at port 1: a run that went ahead fails there at once (exit 1).
      runCli('bench', ['e2e', '--switchboard', ' ', '--redis-url', 'redis://127.0.0.1:1'], env),
    ]);
    for (const [name, run] of Object.entries({ steps, e2e })) {
      expect(run.stdout, name).toBe('');
      expect(run.stderr, name).toContain('bench: --switchboard: must name the root of another checkout');
      expect({ name, code: run.code }, run.stderr).toEqual({ name, code: 2 });
    }
  });
});
