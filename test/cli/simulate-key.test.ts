/**
 * The simulator's API key, as a user gives it: an empty SWITCHBOARD_API_KEY is refused as an empty
 * SWITCHBOARD_URL is (it used to fall back to the stored admin key, or to none), and a run that
 * Switchboard answers 401 (no key, or one it does not know) says to give a key with --key or
 * SWITCHBOARD_API_KEY.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';
import { runCli } from './run-cli.ts';

const WS = `sim-key-${Date.now()}`;
const api = inProcessApi([WS], { env: { AUTH: 'on' } });

describe('simulate, its API key', () => {
  const tempDir = suiteTempDirs();

  /** The CLI with no key of the environment and a DATA_DIR holding no stored admin key. */
  const simulate = async (args: readonly string[], more: NodeJS.ProcessEnv = {}) => {
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: await tempDir('sb-sim-key-') };
    delete env.SWITCHBOARD_API_KEY;
    delete env.SWITCHBOARD_URL;
    Object.assign(env, more);
    return runCli(
      'simulate',
      ['--url', api.running.url!, '--workspace', WS, '--agents', '1', '--contacts', '0', ...args],
      env,
    );
  };

  it('refuses an empty SWITCHBOARD_API_KEY with exit 2, naming it', async () => {
    const run = await simulate([], { SWITCHBOARD_API_KEY: ' ' });
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain('SWITCHBOARD_API_KEY');
  });

  it('names --key and SWITCHBOARD_API_KEY when stopped by a 401, with no key or a wrong one', async () => {
    const [none, wrong] = await Promise.all([
      simulate([]),
      simulate(['--key', 'sb_0123456789abcdef_not-a-key-of-this-workspace']),
    ]);
    for (const run of [none, wrong]) {
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toContain('401');
      expect(run.stderr).toMatch(/--key.*SWITCHBOARD_API_KEY/);
    }
    expect(none.stderr).toContain('no API key was given');
    expect(wrong.stderr).toContain('the API key given (--key) was refused');
  });
});
