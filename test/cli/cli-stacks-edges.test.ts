/**
 * The command-line tools never print a stack trace: a failure is a few plain lines saying what
 * went wrong and what to do, with the exit code their --help documents. Here `keys` against a
 * Redis that answers PING and then drops the tool's connection at its first large reply (a
 * client-output-buffer-limit, as an operator sets to protect a server) and against one paused
 * for writes (CLIENT PAUSE WRITE, as a failover does) until the tool's timeout; and `keys
 * create`'s refusal of a bad agent id, which ends as its other refusals do.
 */
import { describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { suiteRedis } from '../support/redis.ts';
import { runCli } from './run-cli.ts';

describe('CLI failures in plain lines', () => {
  const suite = suiteRedis();

  it('keys list on a Redis that drops its connection, keys create on one paused for writes: exit 3 naming the cause; no stack', async () => {
    const ws = 'stacks-edges';
    await createApiKey(suite.admin, { workspace: ws, role: 'supervisor', name: 'x'.repeat(80) });
    // A record large enough that its reply passes the limit (a damaged one: listing reads it all).
    await suite.admin.hset(workspaceKeys(ws).apiKeys, 'deadbeefdeadbeef', 'x'.repeat(200_000));
    const before = (await suite.admin.call('CONFIG', 'GET', 'client-output-buffer-limit')) as string[];
    await suite.admin.call('CONFIG', 'SET', 'client-output-buffer-limit', 'normal 1024 1024 0');
    // Long enough for a loaded machine to start the tool; ended (at once: UNPAUSE is no write) after.
    await suite.admin.call('CLIENT', 'PAUSE', '45000', 'WRITE');
    try {
      const [list, create] = await Promise.all([
        runCli('keys', ['list', '--workspace', ws, '--redis-url', suite.server.url]),
        runCli('keys', [
          'create',
          '--workspace',
          ws,
          '--role',
          'supervisor',
          '--redis-url',
          suite.server.url,
        ]),
      ]);
      for (const run of [list, create]) {
        expect(run.stderr).not.toMatch(/\n\s+at /);
        expect(run.code, run.stderr).toBe(3);
        expect(run.stderr).toMatch(
          /^keys: could not run: Redis did not answer in time \(Command timed out\)/,
        );
        expect(run.stderr).toMatch(/check it, then run again\n$/);
      }
    } finally {
      await suite.admin.call('CLIENT', 'UNPAUSE');
      await suite.admin.call('CONFIG', 'SET', 'client-output-buffer-limit', before[1] ?? '');
    }
  }, 55_000);

  it('keys create refuses a bad agent id as it refuses every other option: exit 2, "Run with --help"', async () => {
    const common = ['create', '--workspace', 'stacks-edges-2', '--redis-url', suite.server.url];
    const [badAgent, badRole] = await Promise.all([
      runCli('keys', [...common, '--role', 'agent', '--agent', 'bad id!']),
      runCli('keys', [...common, '--role', 'nobody']),
    ]);
    for (const run of [badAgent, badRole]) {
      expect(run.stderr).not.toMatch(/\n\s+at /);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toMatch(/\nRun with --help for the options\.\n$/);
    }
    expect(badAgent.stderr).toMatch(/^keys: --agent: .*agent id/);
    expect(await suite.admin.exists(workspaceKeys('stacks-edges-2').apiKeys)).toBe(0);
  });
});
