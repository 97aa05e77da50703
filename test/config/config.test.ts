import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_ENTRIES, ConfigError, loadConfig } from '../../src/app/config.ts';

describe('configuration from the environment', () => {
  it('has working defaults', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.roles).toEqual(['api', 'projector', 'dispatcher']);
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

  it('always serves the default workspace', () => {
    expect(loadConfig({ WORKSPACES: 'east,west' }).workspaces).toEqual(['default', 'east', 'west']);
  });

  it('documents every variable it reads', () => {
    const source = readFileSync(new URL('../../src/app/config.ts', import.meta.url), 'utf8');
    const read = new Set([...source.matchAll(/\b(?:get|int|bool|list)\('([A-Z_]+)'/g)].map((m) => m[1]));
    expect(read.size).toBeGreaterThan(15);
    expect([...read].filter((name) => !CONFIG_ENTRIES.some((e) => e.name === name))).toEqual([]);
  });

  it('is documented in the README, every variable', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const e of CONFIG_ENTRIES) expect(readme).toContain(`| \`${e.name}\` |`);
  });
});
