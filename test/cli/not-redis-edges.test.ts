/**
 * A tool pointed at something that is not Redis (here an HTTP server) says so: what answers at the
 * address (its password masked) is not Redis, and to check --redis-url / REDIS_URL; exit 3 (it
 * could not run). Not ioredis's "Protocol error ... Please report this.", which asks the user to
 * report a bug that is not one.
 */
import { describe, expect, it } from 'vitest';
import { plainFailure } from '../../src/cli/plain-failure.ts';
import { localServer } from '../support/local-server.ts';
import { runCli } from './run-cli.ts';

const redisUrlOf = (httpUrl: string, login = '') => httpUrl.replace('http://', `redis://${login}`);

describe('a Redis URL naming something that is not Redis', () => {
  it('keys list: exit 3, "not Redis" with the masked address and what to check', async () => {
    const http = await localServer((_req, res) => res.end('hello'));
    const url = redisUrlOf(http.url, ':s3cret@');
    const run = await runCli('keys', ['list', '--redis-url', url, '--workspace', 'w']);
    expect(run.code, run.stderr).toBe(3);
    expect(run.stderr).not.toMatch(/Please report this/);
    expect(run.stderr).not.toMatch(/s3cret/);
    expect(run.stderr).toMatch(
      new RegExp(
        `^keys: what answers at ${redisUrlOf(http.url, ':\\*\\*\\*@')} is not Redis[^\\n]*check --redis-url`,
        'm',
      ),
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('audit, from REDIS_URL: the same, naming REDIS_URL', async () => {
    const http = await localServer((_req, res) => res.end('hello'));
    const url = redisUrlOf(http.url);
    const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: url };
    delete env.REDIS_CLUSTER_NODES;
    const run = await runCli('audit', ['--workspace', 'w'], env);
    expect(run.code, run.stderr).toBe(3);
    expect(run.stderr).not.toMatch(/Please report this/);
    expect(run.stderr).toMatch(
      new RegExp(`^audit: what answers at ${url} is not Redis[^\\n]*check REDIS_URL`, 'm'),
    );
  });

  it('plainFailure (a failure mid-run): not Redis, what to check, no "Please report this"', () => {
    const text = plainFailure(new Error('Protocol error, got "H" as reply type byte. Please report this.'));
    expect(text).not.toMatch(/Please report this|report it/);
    expect(text).toMatch(
      /is not Redis \(Protocol error, got "H" as reply type byte\): check that --redis-url/,
    );
  });
});
