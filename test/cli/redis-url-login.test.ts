/**
 * A Redis URL's login as the tools meet it: a password that is not valid percent-encoding
 * (`p%zz`, a `%` not encoded as `%25`) used to crash audit, rebuild, keys and bench with a URIError
 * stack trace (exit 3, or 1) instead of exit 2 naming the option; bench printed an unreachable or
 * malformed --redis-url with its password in clear, and took one the other tools refuse (a
 * database other than 0, a query); an unreachable Redis was reported by audit, rebuild and keys as
 * ioredis's "Reached the max retries per request limit", without why it could not connect.
 */
import { describe, it } from 'vitest';
import { freePort } from '../../src/topology/redis-server.ts';
import { runCli } from './run-cli.ts';

describe.concurrent('a Redis URL and its login, as the tools take them', () => {
  it('a password that is not valid percent-encoding: exit 2 naming the option, masked, no stack', async ({
    expect,
  }) => {
    const url = 'redis://u:s3cret%zz@127.0.0.1:1';
    const seed = 'u:s3cret%zz@127.0.0.1:1';
    const runs = await Promise.all([
      runCli('audit', ['--workspace', 'w', '--redis-url', url]),
      runCli('rebuild', ['--workspace', 'w', '--redis-url', url]),
      runCli('keys', ['list', '--workspace', 'w', '--redis-url', url]),
      runCli('audit', ['--workspace', 'w', '--cluster-nodes', seed]),
      runCli('bench', ['seed', '--redis-url', url]),
    ]);
    const names = ['audit', 'rebuild', 'keys', 'audit', 'bench'];
    const options = ['--redis-url', '--redis-url', '--redis-url', '--cluster-nodes', '--redis-url'];
    for (const [i, run] of runs.entries()) {
      const tool = names[i]!;
      expect({ tool, code: run.code }, run.stderr).toEqual({ tool, code: 2 });
      expect(run.stderr).toContain(`${tool}: ${options[i]}: `);
      expect(run.stderr).toContain('%25');
      expect(run.stderr).not.toContain('s3cret');
      expect(run.stderr).not.toMatch(/URIError|\n\s+at /);
    }
  });

  it('bench: a --redis-url refused or unreachable is named without its password', async ({ expect }) => {
    const port = await freePort();
    const [scheme, database, query, unreachable, all] = await Promise.all([
      runCli('bench', ['seed', '--redis-url', 'http://u:s3cret@127.0.0.1:1']),
      runCli('bench', ['seed', '--redis-url', 'redis://u:s3cret@127.0.0.1:1/3']),
      runCli('bench', ['seed', '--redis-url', 'redis://127.0.0.1:1?db=3']),
      runCli('bench', ['seed', '--redis-url', `redis://u:s3cret@127.0.0.1:${port}`]),
      runCli('bench', ['all', '--redis-url', 'http://u:s3cret@127.0.0.1:1']),
    ]);
    for (const run of [scheme, database, query, all]) {
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toMatch(/^bench: --redis-url: must /m);
    }
    expect(database.stderr).toContain('must use database 0');
    expect(query.stderr).toContain('must have no query');
    expect(unreachable.code, unreachable.stderr).toBe(1);
    expect(unreachable.stderr).toContain(`bench: cannot reach Redis at redis://u:***@127.0.0.1:${port}: `);
    for (const run of [scheme, database, query, unreachable, all]) expect(run.stderr).not.toContain('s3cret');
  });

  it('simulate: a refused --url is named without its password', async ({ expect }) => {
    const run = await runCli('simulate', ['--url', 'http://u:s3cret@127.0.0.1:1/?x']);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/^simulate: --url: must be/m);
    expect(run.stderr).not.toContain('s3cret');
  });

  it('audit, rebuild and keys: an unreachable Redis is named with why it could not connect', async ({
    expect,
  }) => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const runs = await Promise.all([
      runCli('audit', ['--workspace', 'w', '--redis-url', url]),
      runCli('rebuild', ['--workspace', 'w', '--redis-url', url]),
      runCli('keys', ['list', '--workspace', 'w', '--redis-url', url]),
    ]);
    for (const [i, run] of runs.entries()) {
      expect(run.code, run.stderr).toBe(3);
      expect(run.stderr).toMatch(
        new RegExp(`^${['audit', 'rebuild', 'keys'][i]}: cannot reach Redis at ${url}: .*ECONNREFUSED`, 'm'),
      );
    }
  });
});
