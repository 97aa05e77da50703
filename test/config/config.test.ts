import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isLeft } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { CONFIG_ENTRIES, ConfigError, loadConfig, parseConfig } from '../../src/app/config.ts';

describe('configuration from the environment', () => {
  it('has working defaults', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.roles).toEqual(['api', 'projector', 'dispatcher', 'archiver']);
    expect(c.workspaces).toEqual(['default']);
    expect(c.durability).toBe('local');
    expect(c.redisUrl).toBeUndefined();
  });

  it('defaults to replicated durability on a cluster', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:7001' }).durability).toBe(
      'replicated',
    );
  });

  it('names every bad value at once', () => {
    let caught: unknown;
    try {
      loadConfig({
        PORT: 'abc',
        ROLES: 'api,cook',
        REDIS_URL: 'http://x',
        LOG_LEVEL: 'loud',
        COMMAND_TIMEOUT_MS: '-1',
        DURABILITY: 'maybe',
        DISPATCH_LEASES: 'perhaps',
        ADVERTISE_ADDRESS: 'nope',
        REDIS_CLUSTER_NODES: 'a:1,b',
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const text = (caught as ConfigError).problems.join('\n');
    for (const name of [
      'PORT',
      'ROLES',
      'REDIS_URL',
      'LOG_LEVEL',
      'COMMAND_TIMEOUT_MS',
      'DURABILITY',
      'DISPATCH_LEASES',
      'ADVERTISE_ADDRESS',
      'REDIS_CLUSTER_NODES',
    ]) {
      expect(text).toContain(`${name}:`);
    }
    expect(text).toContain('"cook"');
  });

  it('refuses at start what would fail after starting: a bad HOST, an advertised port out of range, METRICS_PORT on PORT, a Redis database other than 0', () => {
    const problems = (env: Record<string, string>) => {
      const parsed = parseConfig(env);
      return isLeft(parsed) ? parsed.left.join('\n') : '';
    };
    expect(problems({ HOST: 'not a host' })).toMatch(/^HOST: must be a host name or an IP address/);
    for (const host of ['0.0.0.0', '::', '::1', 'api-1.internal', 'localhost'])
      expect(problems({ HOST: host })).toBe('');
    expect(problems({ ADVERTISE_ADDRESS: 'api-1:99999' })).toMatch(
      /^ADVERTISE_ADDRESS: must be host:port \(port 1\.\.65535\)/,
    );
    expect(problems({ ADVERTISE_ADDRESS: 'api-1:0' })).toMatch(/^ADVERTISE_ADDRESS:/);
    expect(problems({ ADVERTISE_ADDRESS: 'api-1:8080' })).toBe('');
    // A wildcard listening address is no address to reach the instance at.
    for (const host of ['0.0.0.0', '::', '0:0::0'])
      expect(problems({ ADVERTISE_ADDRESS: 'auto', HOST: host })).toMatch(
        new RegExp(`^ADVERTISE_ADDRESS: auto would advertise HOST \\(${host}\\)`),
      );
    expect(problems({ ADVERTISE_ADDRESS: '0.0.0.0:8080' })).toMatch(/^ADVERTISE_ADDRESS: "0\.0\.0\.0" is/);
    expect(problems({ ADVERTISE_ADDRESS: 'auto', HOST: '10.0.0.5' })).toBe('');
    expect(problems({ ADVERTISE_ADDRESS: '10.0.0.5:8080', HOST: '0.0.0.0' })).toBe('');
    expect(problems({ PORT: '9000', METRICS_PORT: '9000' })).toMatch(/^METRICS_PORT: must differ from PORT/);
    expect(problems({ PORT: '9000', METRICS_PORT: '9000', ROLES: 'dispatcher' })).toBe('');
    expect(problems({ PORT: '0', METRICS_PORT: '0' })).toBe('');
    expect(problems({ REDIS_URL: 'redis://127.0.0.1:6379/abc' })).toMatch(/^REDIS_URL: must use database 0/);
    expect(problems({ REDIS_URL: 'redis://127.0.0.1:6379/3' })).toMatch(/^REDIS_URL: must use database 0/);
    expect(problems({ REDIS_URL: 'redis://' })).toMatch(/^REDIS_URL: must name a host/);
    // The client reads a query as connection options: ?db=3 would select database 3.
    for (const url of [
      'redis://127.0.0.1:6379?db=3',
      'redis://127.0.0.1:6379/0?keyPrefix=x',
      'rediss://u:p@h/?tls=',
    ])
      expect(problems({ REDIS_URL: url })).toMatch(/^REDIS_URL: must have no query/);
    // A seed's query would be dropped without a word (only its host, port and login are used).
    expect(problems({ REDIS_CLUSTER_NODES: '127.0.0.1:7000,redis://127.0.0.1:7001?db=3' })).toMatch(
      /^REDIS_CLUSTER_NODES: each seed must be .*\(got "redis:\/\/127\.0\.0\.1:7001\?db=3"\)/,
    );
    for (const url of ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379/', 'rediss://u:p@h:6380/0'])
      expect(problems({ REDIS_URL: url })).toBe('');
    // A login that is not valid percent-encoding (a "%" not written %25): named, its password
    // masked, not a URIError out of the client (the seeds' threw out of the check itself).
    expect(problems({ REDIS_URL: 'redis://u:s3cret%zz@127.0.0.1:6379' })).toMatch(
      /^REDIS_URL: the user and password must be percent-encoded .*\(got "redis:\/\/u:\*\*\*@127\.0\.0\.1:6379"\)$/,
    );
    expect(problems({ REDIS_CLUSTER_NODES: 'u:s3cret%zz@127.0.0.1:7000' })).toMatch(
      /^REDIS_CLUSTER_NODES: each seed must have its user and password percent-encoded .*\(got "u:\*\*\*@127\.0\.0\.1:7000"\)$/,
    );
    expect(problems({ REDIS_URL: 'redis://u:s3cret%25@127.0.0.1:6379' })).toBe('');
  });

  it('refuses settings that would be silently ignored: TLS files without rediss://, a burst with the rate limit off', () => {
    const problems = (env: Record<string, string>) => {
      const parsed = parseConfig(env);
      return isLeft(parsed) ? parsed.left.join('\n') : '';
    };
    const ca = fileURLToPath(import.meta.url);
    expect(problems({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_TLS_CA: ca })).toMatch(
      /^REDIS_TLS_CA: applies to rediss:\/\/ only; REDIS_URL is redis:\/\/ \(use rediss:\/\/, or unset REDIS_TLS_CA\)/,
    );
    expect(problems({ REDIS_TLS_CERT: ca, REDIS_TLS_KEY: ca })).toMatch(
      /^REDIS_TLS_CERT, REDIS_TLS_KEY: apply to rediss:\/\/ only; no REDIS_URL or REDIS_CLUSTER_NODES is set/,
    );
    expect(problems({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_TLS_CA: ca })).toMatch(
      /^REDIS_TLS_CA: applies to rediss:\/\/ only; REDIS_CLUSTER_NODES is not rediss:\/\//,
    );
    expect(problems({ REDIS_URL: 'rediss://127.0.0.1:6380', REDIS_TLS_CA: ca })).toBe('');
    expect(problems({ REDIS_CLUSTER_NODES: 'rediss://127.0.0.1:7000', REDIS_TLS_CA: ca })).toBe('');
    expect(problems({ RATE_LIMIT: 'off', RATE_LIMIT_BURST: '50' })).toMatch(
      /^RATE_LIMIT_BURST: has no effect with RATE_LIMIT=off/,
    );
    expect(problems({ RATE_LIMIT: '10', RATE_LIMIT_BURST: '50' })).toBe('');
    expect(problems({ RATE_LIMIT_BURST: '50' })).toBe('');
  });

  it('refuses a DATA_DIR or an ARCHIVE_DIR that is a file (the private Redis and the archiver would fail on it)', () => {
    const file = fileURLToPath(import.meta.url);
    const problems = (env: Record<string, string>) => {
      const parsed = parseConfig(env);
      return isLeft(parsed) ? parsed.left.join('\n') : '';
    };
    expect(problems({ DATA_DIR: file })).toMatch(
      /^DATA_DIR: must be a directory, or a path where none is yet/,
    );
    expect(problems({ ARCHIVE_DIR: file })).toMatch(
      /^ARCHIVE_DIR: must be a directory, or a path where none is yet/,
    );
    const dir = path.dirname(file);
    expect(problems({ DATA_DIR: dir, ARCHIVE_DIR: path.join(dir, 'not-there-yet') })).toBe('');
  });

  it('refuses REDIS_URL and REDIS_CLUSTER_NODES together (npm start used one, the tools the other)', () => {
    const parsed = parseConfig({
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_CLUSTER_NODES: '127.0.0.1:7000',
    });
    expect(isLeft(parsed) ? parsed.left : []).toEqual([
      'REDIS_URL, REDIS_CLUSTER_NODES: set one or the other (a single Redis, or the seeds of a cluster), not both',
    ]);
  });

  it('always serves the default workspace', () => {
    expect(loadConfig({ WORKSPACES: 'east,west' }).workspaces).toEqual(['default', 'east', 'west']);
  });

  it('names every bad variable at once when all are bad, and only the bad ones', () => {
    // Every variable set to something no check accepts; DATA_DIR, ARCHIVE_DIR and REDIS_PASSWORD take any text.
    const env = Object.fromEntries(CONFIG_ENTRIES.map((e) => [e.name, 'not valid!']));
    const parsed = parseConfig(env);
    expect(isLeft(parsed)).toBe(true);
    const problems = isLeft(parsed) ? parsed.left : [];
    const named = new Set(problems.map((p) => p.slice(0, p.indexOf(':'))));
    const anyText = ['DATA_DIR', 'ARCHIVE_DIR', 'REDIS_PASSWORD'];
    expect([...named].sort()).toEqual(
      CONFIG_ENTRIES.map((e) => e.name)
        .filter((n) => !anyText.includes(n))
        .sort(),
    );
    // One problem per bad item of a list: both bad seeds, both bad roles.
    const lists = parseConfig({ REDIS_CLUSTER_NODES: 'a,b:1,c', ROLES: 'api,cook,chef' });
    expect(isLeft(lists) ? lists.left : []).toEqual([
      'REDIS_CLUSTER_NODES: each seed must be host:port, user:password@host:port, or a redis:// or rediss:// URL (got "a")',
      'REDIS_CLUSTER_NODES: each seed must be host:port, user:password@host:port, or a redis:// or rediss:// URL (got "c")',
      'ROLES: "cook" is not a role; use any of api, projector, dispatcher, archiver',
      'ROLES: "chef" is not a role; use any of api, projector, dispatcher, archiver',
    ]);
  });

  it('reads the archiver settings: LOG_RETENTION as an age, a count or both, ARCHIVE_DIR under DATA_DIR', () => {
    const c = loadConfig({ DATA_DIR: '/var/lib/sb' });
    expect(c.archiveDir).toBe('/var/lib/sb/archive');
    expect(c.logRetention).toEqual({ ageMs: 86_400_000 });
    expect(loadConfig({ LOG_RETENTION: '1000000' }).logRetention).toEqual({ count: 1_000_000 });
    expect(loadConfig({ LOG_RETENTION: '90m, 5000' }).logRetention).toEqual({
      ageMs: 5_400_000,
      count: 5000,
    });
    expect(loadConfig({ ARCHIVE_DIR: '/mnt/archive', ROLES: 'archiver' })).toMatchObject({
      archiveDir: '/mnt/archive',
      roles: ['archiver'],
    });
    for (const bad of ['1 day', '24h,12h', '5,6', '-1', 'h'])
      expect(isLeft(parseConfig({ LOG_RETENTION: bad }))).toBe(true);
    const parsed = parseConfig({ LOG_RETENTION: 'forever' });
    expect(isLeft(parsed) ? parsed.left : []).toEqual([
      'LOG_RETENTION: must be an age such as 24h (units ms, s, m, h, d), a count of entries such as 1000000, or both separated by a comma such as 24h,1000000 (got "forever")',
    ]);
  });

  it('resolves ADVERTISE_ADDRESS: host:port as given, auto as HOST:PORT', () => {
    expect(loadConfig({ ADVERTISE_ADDRESS: 'api-1.internal:8000' }).advertise).toEqual({
      host: 'api-1.internal',
      port: 8000,
    });
    expect(loadConfig({ ADVERTISE_ADDRESS: 'auto', HOST: '10.0.0.5', PORT: '9000' }).advertise).toEqual({
      host: '10.0.0.5',
      port: 9000,
    });
    expect(loadConfig({}).advertise).toBeUndefined();
  });

  it('documents every variable it reads', () => {
    const read = new Set<string>();
    const env = new Proxy({} as NodeJS.ProcessEnv, {
      get: (_, name) => {
        if (typeof name === 'string') read.add(name);
        return undefined;
      },
    });
    loadConfig(env);
    expect(read.size).toBeGreaterThan(15);
    expect([...read].filter((name) => !CONFIG_ENTRIES.some((e) => e.name === name))).toEqual([]);
    expect(CONFIG_ENTRIES.filter((e) => !read.has(e.name)).map((e) => e.name)).toEqual([]);
  });

  it('is documented in the README, every variable', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const e of CONFIG_ENTRIES) expect(readme).toContain(`| \`${e.name}\` |`);
  });
});
