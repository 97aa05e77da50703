/**
 * Edge values of the environment that passed the checks and failed only after the start.
 */
import { isLeft } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/app/config.ts';

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
});
