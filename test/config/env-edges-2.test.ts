/**
 * HOST, the address the API listens on, took values the resolver reads otherwise than they look:
 * an empty label (`api..1`, which ADVERTISE_ADDRESS refuses) and a number with a leading zero
 * (`010.0.0.1`, read as octal: 8.0.0.1, so the listen failed or bound elsewhere). Both are now
 * refused at the configuration check, naming HOST and what it takes; ADVERTISE_ADDRESS's host
 * follows the same rule. The numbers of the environment are decimal digits only.
 */
import { isLeft } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/app/config.ts';

const problems = (env: Record<string, string>) => {
  const parsed = parseConfig(env);
  return isLeft(parsed) ? parsed.left.join('\n') : '';
};

describe('HOST and the resolver', () => {
  it('refuses a HOST with an empty label, as ADVERTISE_ADDRESS does', () => {
    for (const h of ['api..1', '10..0.1', 'a.-b', 'a-.b', '.api', 'api.'])
      expect(problems({ HOST: h }), h).toMatch(
        /^HOST: must be a host name or an IP address to listen on, such as 127\.0\.0\.1 or 0\.0\.0\.0 \(got "/,
      );
    expect(problems({ HOST: 'api..1' })).toMatch(/empty label/);
    expect(problems({ ADVERTISE_ADDRESS: 'api..1:8080' })).toMatch(/^ADVERTISE_ADDRESS: /);
  });

  it('refuses a HOST with a number written with a leading zero, which the resolver reads as octal', () => {
    for (const h of ['010.0.0.1', '10.0.0.01', '127.00.0.1', '0127.1', '010'])
      expect(problems({ HOST: h }), h).toMatch(
        new RegExp(
          `^HOST: must be a host name or an IP address to listen on, such as 127\\.0\\.0\\.1 or 0\\.0\\.0\\.0 \\(got "${h.replaceAll('.', '\\.')}", .*leading 0.*octal`,
        ),
      );
    expect(problems({ ADVERTISE_ADDRESS: '010.0.0.5:8080' })).toMatch(/^ADVERTISE_ADDRESS: .*leading 0/);
  });

  it('still takes host names and addresses (the short forms, 127.1, are refused: env-edges-3)', () => {
    for (const h of [
      '0.0.0.0',
      '10.0.0.0',
      '10.0.0.5',
      '255.255.255.255',
      'localhost',
      'api-1.internal',
      '::1',
      '::',
    ])
      expect(problems({ HOST: h }), h).toBe('');
    expect(loadConfig({ HOST: '10.0.0.0' }).host).toBe('10.0.0.0');
    for (const a of ['api-1.internal:8000', '10.0.0.5:8080', '10.0.0.0:8080', 'api_1:8080', 'auto'])
      expect(problems({ ADVERTISE_ADDRESS: a }), a).toBe('');
  });

  it("takes a label with an underscore (as in a container's name), as ADVERTISE_ADDRESS does", () => {
    expect(problems({ HOST: 'api_1' })).toBe('');
    expect(problems({ HOST: 'switchboard_api_1.internal' })).toBe('');
  });
});

describe('numbers of the environment', () => {
  it('are decimal digits only: hex, exponents, a sign, a fraction and Infinity are refused, naming the variable', () => {
    for (const v of ['0x10', '1e3', '+80', '-1', '80.0', 'Infinity', '8 080'])
      for (const name of ['PORT', 'PROJECT_BATCH', 'RATE_LIMIT', 'METRICS_PORT', 'LIVE_HEARTBEAT_MS'])
        expect(problems({ [name]: v }), `${name}=${v}`).toMatch(
          new RegExp(`^${name}: must be an integer from \\d+ to \\d+( or off)? \\(got "`),
        );
  });

  it('keep what valid values mean: leading zeros are decimal, a blank value is unset', () => {
    const c = loadConfig({
      PORT: '08080',
      PROJECT_BATCH: '010',
      RATE_LIMIT: '0100',
      LIVE_HEARTBEAT_MS: 'off',
    });
    expect(c.port).toBe(8080);
    expect(c.projectBatch).toBe(10);
    expect(c.rateLimit).toEqual({ perSecond: 100, burst: 200 });
    expect(c.liveHeartbeatMs).toBeUndefined();
    expect(loadConfig({ PORT: '' }).port).toBe(8080);
    expect(loadConfig({ PORT: ' 9090 ' }).port).toBe(9090);
  });
});
