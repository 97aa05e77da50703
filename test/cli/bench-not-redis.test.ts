/**
 * bench pointed with --redis-url at something that is not Redis (here an HTTP server) says so, as
 * keys and audit do (not-redis-edges.test.ts): what answers at the address (its password masked) is
 * not Redis, and to check --redis-url (bench reads no REDIS_URL); exit 1, bench's code for a Redis
 * it cannot reach. Not ioredis's "Protocol error ... Please report this.", which asks the user to report a
 * bug that is not one. A workload whose Redis turns out not to be one mid-run (bench all records
 * each workload's failure) says the same.
 */
import { describe, expect, it } from 'vitest';
import { failureReason } from '../../src/cli/bench/failure.ts';
import { localServer } from '../support/local-server.ts';
import { runCli } from './run-cli.ts';

const redisUrlOf = (httpUrl: string, login = '') => httpUrl.replace('http://', `redis://${login}`);

describe('bench with a --redis-url naming something that is not Redis', () => {
  it('seed: exit 1, "not Redis" with the masked address and what to check, before any workload', async () => {
    const http = await localServer((_req, res) => res.end('hello'));
    const url = redisUrlOf(http.url, ':s3cret@');
    const run = await runCli('bench', ['seed', '--contacts', '1', '--agents', '1', '--redis-url', url]);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).not.toMatch(/Please report this|report it/);
    expect(run.stderr).not.toMatch(/s3cret/);
    expect(run.stderr).toMatch(
      new RegExp(
        `^bench: what answers at ${redisUrlOf(http.url, ':\\*\\*\\*@')} is not Redis \\(Protocol error[^\\n]*\\): check --redis-url, that it names the host and port of a Redis`,
        'm',
      ),
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.stdout).toBe('');
  });

  it('a workload failing on a reply that is not RESP: not Redis, what to check, no "report"', () => {
    const text = failureReason(
      'seed',
      new Error('Protocol error, got "H" as reply type byte. Please report this.'),
    );
    expect(text).not.toMatch(/Please report this|report it/);
    expect(text).toMatch(
      /is not Redis \(Protocol error, got "H" as reply type byte\): check that --redis-url/,
    );
  });
});
