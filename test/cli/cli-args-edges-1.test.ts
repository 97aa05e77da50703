/**
 * `--cluster-nodes` given with an empty value (`--cluster-nodes "$NODES"` with NODES unset, or only
 * commas) used to be taken as not given: the tool went on to REDIS_URL (or the private Redis of npm
 * start) without a word, so `keys create` made a key in another Redis than the cluster meant and
 * printed it as made, and the audit and rebuild read another Redis's workspace. It is refused with
 * exit 2 naming the option, as an empty `--redis-url` is, and nothing is written.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { suiteRedis } from '../support/redis.ts';
import { runCli } from './run-cli.ts';

describe('an empty --cluster-nodes', () => {
  const suite = suiteRedis();

  it('is refused by keys, audit and rebuild with exit 2, not taken as REDIS_URL', {
    timeout: 60_000,
  }, async () => {
    // REDIS_URL names a Redis that answers: the one the tools used to fall back to.
    const env: NodeJS.ProcessEnv = { ...process.env, ...suite.server.env };
    delete env.VITEST;
    delete env.REDIS_CLUSTER_NODES;
    expect(env.REDIS_URL).toBeDefined();
    const ws = 'args-edges-1';
    const [keys, audit, rebuild] = await Promise.all([
      runCli('keys', ['create', '--workspace', ws, '--role', 'admin', '--cluster-nodes', ''], env),
      runCli('audit', ['--workspace', ws, '--cluster-nodes', ' , '], env),
      runCli('rebuild', ['--workspace', ws, '--cluster-nodes', ''], env),
    ]);
    // No key was made in REDIS_URL's Redis.
    expect(await suite.admin.hlen(workspaceKeys(ws).apiKeys), keys.stdout).toBe(0);
    for (const [name, run] of Object.entries({ keys, audit, rebuild })) {
      expect(run.stderr, name).toContain(`${name}: --cluster-nodes: must name the cluster's nodes`);
      expect(run.stderr, name).not.toContain('no Redis to read');
      expect({ name, code: run.code }, run.stderr).toEqual({ name, code: 2 });
      expect(run.stdout, name).toBe('');
    }
  });
});
