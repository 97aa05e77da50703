/**
 * Edge values of the environment that passed the checks and failed only after the start.
 */
import { isLeft } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/app/config.ts';

const problems = (env: Record<string, string>) => {
  const parsed = parseConfig(env);
  return isLeft(parsed) ? parsed.left.join('\n') : '';
};

describe('edge values of the environment', () => {
  it('refuses a REDIS_URL with port 0, which no Redis listens on (the process started and stayed paused)', () => {
    expect(problems({ REDIS_URL: 'redis://127.0.0.1:0' })).toMatch(/^REDIS_URL: .*port/);
    expect(problems({ REDIS_URL: 'rediss://u:p@redis.internal:0/0' })).toMatch(/^REDIS_URL: .*port/);
    expect(problems({ REDIS_URL: 'redis://127.0.0.1:6379' })).toBe('');
    expect(problems({ REDIS_URL: 'redis://127.0.0.1' })).toBe('');
  });

  it('refuses an ADVERTISE_ADDRESS whose host is no host name or address', () => {
    for (const a of ['-:8080', '.:8080', 'api..1:8080', 'api-:8080'])
      expect(problems({ ADVERTISE_ADDRESS: a }), a).toMatch(/^ADVERTISE_ADDRESS: /);
    for (const a of ['api-1.internal:8000', '10.0.0.5:8080', 'api_1:8080', 'auto'])
      expect(problems({ ADVERTISE_ADDRESS: a }), a).toBe('');
  });

  it('refuses a HOST that is written as an IPv4 address but is none (an octet over 255), which failed only at listen with exit 1', () => {
    for (const h of ['256.1.1.1', '10.0.0.300', '1.2.3.4.5', '999.999.999.999'])
      expect(problems({ HOST: h }), h).toMatch(
        new RegExp(
          `^HOST: .*such as 127\\.0\\.0\\.1 or 0\\.0\\.0\\.0 \\(got "${h.replaceAll('.', '\\.')}", which is no IPv4 address: .*from 0 to 255`,
        ),
      );
    // Host names and addresses still start (the short forms, 127.1, are refused: env-edges-3).
    for (const h of ['255.255.255.255', '10.0.0.5', 'api-1.internal', 'localhost', '0.0.0.0', '::1'])
      expect(problems({ HOST: h }), h).toBe('');
  });

  it('keeps a workspace named twice in WORKSPACES once, as ROLES does a role', () => {
    expect(loadConfig({ WORKSPACES: 'east,east' }).workspaces).toEqual(['default', 'east']);
    expect(loadConfig({ WORKSPACES: 'east, west,east,default,default' }).workspaces).toEqual([
      'east',
      'west',
      'default',
    ]);
  });
});
