/**
 * With nothing configured, the command-line tools read the private Redis `npm start` runs for the
 * data directory (it says where it listens in private-redis.json while it runs), and never one a
 * killed process left behind.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { archiveDirOf, parseRedisTarget } from '../../src/cli/redis-target.ts';
import { OptionChecker } from '../../src/cli/sim/options.ts';
import { credentialsFile, privateRedisFile, runningPrivateRedis } from '../../src/topology/redis-server.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-target-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const login = { user: 'switchboard', password: 'p@ss word' };
writeFileSync(credentialsFile(dir), JSON.stringify({ app: login, admin: login, replica: login }));

describe('the Redis a command-line tool reads', () => {
  it('is the running private Redis of DATA_DIR when nothing is configured, with its app login', () => {
    writeFileSync(
      privateRedisFile(dir),
      JSON.stringify({ host: '127.0.0.1', port: 16999, pid: process.pid }),
    );
    const url = 'redis://switchboard:p%40ss%20word@127.0.0.1:16999';
    expect(runningPrivateRedis(dir)).toBe(url);
    const check = new OptionChecker();
    const got = parseRedisTarget({}, { DATA_DIR: dir }, check);
    expect(got.target).toMatchObject({ url });
    expect(got.label).toContain('the private Redis of npm start');
    // A configured Redis wins.
    const configured = parseRedisTarget({}, { DATA_DIR: dir, REDIS_URL: 'redis://127.0.0.1:1' }, check);
    expect(configured.target).toMatchObject({ url: 'redis://127.0.0.1:1' });
  });

  it('is none when the process that wrote the file is gone, or there is no file', () => {
    writeFileSync(
      privateRedisFile(dir),
      JSON.stringify({ host: '127.0.0.1', port: 16999, pid: 2 ** 22 + 17 }),
    );
    expect(runningPrivateRedis(dir)).toBeUndefined();
    rmSync(privateRedisFile(dir));
    expect(runningPrivateRedis(dir)).toBeUndefined();
  });

  it('names a bad value as the user gave it (the flag, or the variable), its password masked', () => {
    const problems = (values: Record<string, string>, env: Record<string, string>) => {
      const check = new OptionChecker();
      parseRedisTarget(values, { DATA_DIR: dir, ...env }, check);
      return check.problems.join('\n');
    };
    expect(problems({}, { REDIS_URL: 'http://u:secret@x' })).toMatch(
      /^REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/,
    );
    expect(problems({ 'redis-url': 'http://u:secret@x' }, {})).toMatch(/^--redis-url: must be/);
    expect(problems({}, { REDIS_URL: 'redis://u:secret@x:1/abc' })).toMatch(
      /^REDIS_URL: must use database 0/,
    );
    expect(problems({}, { REDIS_URL: 'redis://u:secret@x:1/abc' })).not.toContain('secret');
    expect(problems({}, { REDIS_CLUSTER_NODES: 'a,b:1' })).toMatch(/^REDIS_CLUSTER_NODES: each seed/);
    expect(problems({ 'cluster-nodes': 'a,b:1' }, {})).toMatch(/^--cluster-nodes: each seed/);
    // Both in the environment: npm start refuses them, and a tool does not pick one.
    const both = { REDIS_URL: 'redis://127.0.0.1:1', REDIS_CLUSTER_NODES: '127.0.0.1:7000' };
    expect(problems({}, both)).toMatch(/^REDIS_URL and REDIS_CLUSTER_NODES are both set/);
    expect(problems({ 'redis-url': 'redis://127.0.0.1:2' }, both)).toBe('');
    expect(problems({ 'cluster-nodes': '127.0.0.1:7001' }, both)).toBe('');
  });

  it('an empty --redis-url is refused, not read as no flag (the cluster of the environment)', () => {
    const check = new OptionChecker();
    parseRedisTarget({ 'redis-url': '' }, { DATA_DIR: dir, REDIS_CLUSTER_NODES: '127.0.0.1:7000' }, check);
    expect(check.problems.join('\n')).toMatch(/^--redis-url: /);
  });

  it('a seed list with an empty item is refused, as npm start refuses it, not read as no cluster', () => {
    const problems = (values: Record<string, string>, env: Record<string, string>) => {
      const check = new OptionChecker();
      const got = parseRedisTarget(
        values,
        { DATA_DIR: dir, REDIS_URL: 'redis://127.0.0.1:1', ...env },
        check,
      );
      return { problems: check.problems.join('\n'), got };
    };
    // REDIS_URL beside them: the seeds' variable set with nothing in it went on to REDIS_URL.
    const onlyCommas = problems({}, { REDIS_URL: '', REDIS_CLUSTER_NODES: ',' });
    expect(onlyCommas.problems).toMatch(/^REDIS_CLUSTER_NODES: has an empty item \(item 1 of 2\)/);
    expect(problems({}, { REDIS_URL: '', REDIS_CLUSTER_NODES: 'u:secret@127.0.0.1:7000,' }).problems).toBe(
      'REDIS_CLUSTER_NODES: has an empty item (item 2 of 2): two commas together, or one at an end; write the items separated by single commas',
    );
    expect(problems({ 'cluster-nodes': '127.0.0.1:7000,,127.0.0.1:7001' }, {}).problems).toMatch(
      /^--cluster-nodes: has an empty item \(item 2 of 3\)/,
    );
    // Spaces around the seeds are taken, as npm start takes them.
    expect(problems({ 'cluster-nodes': '127.0.0.1:7000, 127.0.0.1:7001' }, {}).problems).toBe('');
  });

  it('refuses REDIS_TLS_* with a target that is not rediss://, as npm start does, and a certificate without its key', () => {
    const pem = path.join(dir, 'x.pem');
    writeFileSync(pem, 'x');
    const problems = (values: Record<string, string>, env: Record<string, string>) => {
      const check = new OptionChecker();
      parseRedisTarget(values, { DATA_DIR: dir, ...env }, check);
      return check.problems.join('\n');
    };
    expect(problems({}, { REDIS_URL: 'redis://127.0.0.1:1', REDIS_TLS_CA: pem })).toMatch(
      /^REDIS_TLS_CA: applies to rediss:\/\/ only; REDIS_URL is redis:\/\//,
    );
    expect(problems({ 'redis-url': 'redis://127.0.0.1:1' }, { REDIS_TLS_CA: pem })).toMatch(
      /^REDIS_TLS_CA: applies to rediss:\/\/ only; --redis-url is redis:\/\//,
    );
    expect(problems({ 'cluster-nodes': '127.0.0.1:7000' }, { REDIS_TLS_CA: pem })).toMatch(
      /^REDIS_TLS_CA: applies to rediss:\/\/ only; --cluster-nodes is not rediss:\/\//,
    );
    expect(problems({}, { REDIS_URL: 'rediss://127.0.0.1:1', REDIS_TLS_CERT: pem, REDIS_TLS_KEY: pem })).toBe(
      '',
    );
    expect(problems({}, { REDIS_URL: 'rediss://127.0.0.1:1', REDIS_TLS_CERT: pem })).toMatch(
      /^REDIS_TLS_CERT, REDIS_TLS_KEY: give both or neither/,
    );
    expect(problems({ 'cluster-nodes': 'rediss://127.0.0.1:7000' }, { REDIS_TLS_CA: pem })).toBe('');
  });

  it('refuses an archive directory that is a file, named as given', () => {
    const file = path.join(dir, 'a-file');
    writeFileSync(file, 'x');
    const problems = (value: string | undefined, env: Record<string, string>) => {
      const check = new OptionChecker();
      archiveDirOf(value, { DATA_DIR: dir, ...env }, check);
      return check.problems.join('\n');
    };
    expect(problems(file, {})).toMatch(/^--archive-dir: the archive must be a directory/);
    expect(problems(undefined, { ARCHIVE_DIR: file })).toMatch(
      /^ARCHIVE_DIR: the archive must be a directory/,
    );
    expect(problems(path.join(dir, 'none-yet'), {})).toBe('');
    expect(problems(dir, {})).toBe('');
  });
});
