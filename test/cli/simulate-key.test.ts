/**
 * The simulator's API key, as a user gives it: an empty SWITCHBOARD_API_KEY is refused as an empty
 * SWITCHBOARD_URL is (it used to fall back to the stored admin key, or to none), and a run that
 * Switchboard answers 401 (no key, or one it does not know) says to give a key with --key or
 * SWITCHBOARD_API_KEY. So does a run whose key is revoked mid-run (its live feed refused for good),
 * where it named `--key, data/admin-key` only.
 */
import { describe, expect, it } from 'vitest';
import { createApiKey, revokeApiKey } from '../../src/adapters/redis/api-keys.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';
import { waitFor } from '../support/wait.ts';
import { runCli } from './run-cli.ts';

const WS = `sim-key-${Date.now()}`;
const REVOKED_WS = `${WS}-revoked`;
const api = inProcessApi([WS, REVOKED_WS], { env: { AUTH: 'on' } });

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

  it('names --key and SWITCHBOARD_API_KEY when its key is revoked mid-run and the live feed refused for good', async () => {
    const redis = api.running.redis;
    const { key, info } = await createApiKey(redis, { workspace: REVOKED_WS, role: 'admin' });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATA_DIR: await tempDir('sb-sim-key-'),
      SWITCHBOARD_API_KEY: key,
    };
    delete env.SWITCHBOARD_URL;
    // One contact every 4 s over a limit of 40 s: the run has long to go when its key goes.
    const running = runCli(
      'simulate',
      [
        ...['--url', api.running.url!, '--workspace', REVOKED_WS, '--agents', '1'],
        ...['--contacts', '10', '--rate', '0.25', '--max-seconds', '40'],
      ],
      env,
    );
    // Revoked once the run has registered its agent (its feed is open by then).
    await waitFor('the run under way', async () => (await redis.xlen(workspaceKeys(REVOKED_WS).events)) > 0, {
      timeoutMs: 20_000,
    });
    await revokeApiKey(redis, REVOKED_WS, info.keyId);
    const run = await running;
    expect(run.code, run.stderr).toBe(1);
    // Refused while open, or at its opening when the key went first (on a loaded machine the run's
    // first events can come before its feed is open): told which key to give either way.
    expect(run.stderr).toMatch(/the live feed was refused for good|cannot open the live feed/);
    expect(run.stderr).toContain(
      `the API key given (SWITCHBOARD_API_KEY) was refused, unknown or revoked: give an API key of workspace "${REVOKED_WS}" with --key or SWITCHBOARD_API_KEY`,
    );
  });
});
