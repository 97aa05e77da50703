/**
 * The comma-separated variables dropped empty items without a word: REDIS_CLUSTER_NODES="," (a
 * template whose seeds came out empty) read as no cluster at all, and `npm start` ran on a private
 * redis-server of its own instead of the cluster the operator meant; ROLES="api,,dispatcher" and
 * WORKSPACES="east,,west" hid a name lost between the commas. An empty item is now refused at the
 * check (exit 2), naming the variable and which item; spaces around items stay taken.
 *
 * `npm start -- --workspace east` was answered with the advice to run `WORKSPACE=east npm start`,
 * a variable Switchboard does not read (it would have started without the workspace); the advice
 * now names the variable meant (WORKSPACES) or, when none is, says so rather than inventing one.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { isLeft } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { mainCommandLine } from '../../src/app/command-line.ts';
import { loadConfig, parseConfig } from '../../src/app/config.ts';

const problems = (env: Record<string, string>) => {
  const parsed = parseConfig(env);
  return isLeft(parsed) ? parsed.left.join('\n') : '';
};

/** The main command through tsx, as `npm start` runs it; its exit code and stderr. */
async function runMain(env: Record<string, string>, args: string[] = []) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sb-lists-'));
  const { REDIS_URL: _, REDIS_CLUSTER_NODES: __, ...parent } = process.env;
  const run = promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    env: { ...parent, PORT: '0', DATA_DIR: dataDir, ...env },
    timeout: 60_000,
  });
  const result = await run.then(
    () => ({ code: 0, stderr: '' }),
    (err: { code?: number; stderr?: string }) => ({ code: err.code, stderr: err.stderr ?? '' }),
  );
  rmSync(dataDir, { recursive: true, force: true });
  return result;
}

describe('a comma-separated variable with an empty item', () => {
  it('is refused, naming the variable and the item, for every list', () => {
    const cases: [string, string, string][] = [
      ['REDIS_CLUSTER_NODES', ',', 'item 1 of 2'],
      ['REDIS_CLUSTER_NODES', '10.0.0.1:7000,,10.0.0.2:7000', 'item 2 of 3'],
      ['ROLES', 'api,,dispatcher', 'item 2 of 3'],
      ['WORKSPACES', 'east,west,', 'item 3 of 3'],
      ['CORS_ORIGINS', ', https://app.example.com', 'item 1 of 2'],
      ['TRUST_PROXY', '10.0.0.5, ,10.0.0.6', 'item 2 of 3'],
    ];
    for (const [name, value, which] of cases)
      expect(problems({ [name]: value }), `${name}=${value}`).toBe(
        `${name}: has an empty item (${which}): two commas together, or one at an end; write the items separated by single commas`,
      );
  });

  it('does not show the seeds, which may carry a password', () => {
    expect(problems({ REDIS_CLUSTER_NODES: 'app:s3cret@10.0.0.1:7000,' })).not.toContain('s3cret');
  });

  it('still takes lists with spaces around the items, and a blank value as unset', () => {
    expect(loadConfig({ ROLES: ' api , dispatcher ' }).roles).toEqual(['api', 'dispatcher']);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.5, ::1' }).trustProxy).toEqual(['10.0.0.5', '::1']);
    expect(loadConfig({ REDIS_CLUSTER_NODES: '  ' }).redisClusterNodes).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: '' }).corsOrigins).toEqual([]);
  });

  it('the main command exits 2 on REDIS_CLUSTER_NODES=",", rather than running on a private Redis', async () => {
    const { code, stderr } = await runMain({ REDIS_CLUSTER_NODES: ',' });
    expect(stderr).toContain('REDIS_CLUSTER_NODES: has an empty item');
    expect(code).toBe(2);
  }, 90_000);
});

describe("the main command's advice for an argument", () => {
  it('names a variable Switchboard reads: the plural one, or the one the option begins', () => {
    const advice = (argv: string[]) => {
      const line = mainCommandLine(argv);
      return line.kind === 'refuse' ? line.problem : '';
    };
    expect(advice(['--workspace', 'east'])).toContain('WORKSPACES=east npm start');
    expect(advice(['--role=api'])).toContain('ROLES=api npm start');
    expect(advice(['--data', '/srv/sb'])).toContain('DATA_DIR=/srv/sb npm start');
    expect(advice(['--port', '9000'])).toContain('PORT=9000 npm start');
    expect(advice(['--redis-url=redis://10.0.0.1:6379'])).toContain(
      'REDIS_URL=redis://10.0.0.1:6379 npm start',
    );
    // No variable is meant: none is made up (VERBOSE=... would be ignored as well).
    const verbose = advice(['--verbose']);
    expect(verbose).not.toContain('VERBOSE=');
    expect(verbose).toContain('no variable is named VERBOSE');
    expect(verbose).toContain('PORT=9000 npm start');
  });

  it('npm start -- --workspace east exits 2 naming WORKSPACES', async () => {
    const { code, stderr } = await runMain({}, ['--workspace', 'east']);
    expect(code).toBe(2);
    expect(stderr).toContain('WORKSPACES=east npm start');
  }, 90_000);
});
