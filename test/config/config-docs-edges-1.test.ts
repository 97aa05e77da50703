/**
 * The defaults a user reads (README.md's configuration table, CONFIG_ENTRIES) against the ones
 * the configuration takes. Only the names were checked: a default changed in the parser and not
 * in the table (or the other way) went unnoticed. Each documented default, set explicitly, now
 * gives the same configuration as the variable unset, and the README's default column is
 * CONFIG_ENTRIES'.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_ENTRIES, loadConfig, parseConfig } from '../../src/app/config.ts';
import { PROJECT_ROOT } from '../support/processes.ts';

/** Defaults that are no value to set: a rule, or one that depends on another variable. */
const NOT_A_VALUE: Record<string, string> = {
  ARCHIVE_DIR: 'DATA_DIR/archive',
  RATE_LIMIT_BURST: '2 x RATE_LIMIT',
  DURABILITY: 'local (replicated with REDIS_CLUSTER_NODES)',
};

/** What a variable is set beside, where it is refused alone (it would do nothing). */
const WHERE_READ: Record<string, Record<string, string>> = {
  REPLICA_WAIT_MS: { DURABILITY: 'replicated' },
};

describe('the documented defaults', () => {
  it("are the README table's, variable by variable", () => {
    const readme = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8').split('\n');
    const differ = CONFIG_ENTRIES.flatMap((e) => {
      const row = readme.find((l) => l.startsWith(`| \`${e.name}\` |`));
      const shown = row?.split(' | ')[1]?.replaceAll('`', '');
      return shown === e.default
        ? []
        : [`${e.name}: README ${JSON.stringify(shown)}, config ${JSON.stringify(e.default)}`];
    });
    expect(differ).toEqual([]);
  });

  it('set explicitly, give the configuration the variable unset gives', () => {
    for (const e of CONFIG_ENTRIES) {
      if (e.default === '(unset)' || NOT_A_VALUE[e.name] !== undefined) continue;
      const context = WHERE_READ[e.name] ?? {};
      const parsed = parseConfig({ ...context, [e.name]: e.default });
      expect(parsed._tag === 'Right' ? parsed.right : parsed.left, e.name).toEqual(loadConfig(context));
    }
    for (const [name, text] of Object.entries(NOT_A_VALUE))
      expect(CONFIG_ENTRIES.find((e) => e.name === name)?.default, name).toBe(text);
  });

  it('the rules: ARCHIVE_DIR under DATA_DIR, RATE_LIMIT_BURST twice RATE_LIMIT, DURABILITY by the target', () => {
    expect(loadConfig({ DATA_DIR: '/srv/sb' }).archiveDir).toBe(path.join('/srv/sb', 'archive'));
    expect(loadConfig({ RATE_LIMIT: '70' }).rateLimit).toEqual({ perSecond: 70, burst: 140 });
    expect(loadConfig({}).rateLimit).toEqual({ perSecond: 5000, burst: 10_000 });
    expect(loadConfig({}).durability).toBe('local');
    expect(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000' }).durability).toBe('replicated');
  });

  it('(unset) ones are unset in the configuration', () => {
    const c = loadConfig({});
    expect([
      c.redisUrl,
      c.redisUsername,
      c.redisPassword,
      c.metricsPort,
      c.advertise,
      c.archivePauseAt,
    ]).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
    expect([c.redisClusterNodes, c.corsOrigins, c.trustProxy, c.redisTls]).toEqual([[], [], [], {}]);
  });
});
