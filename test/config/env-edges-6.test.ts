/**
 * REDIS_USERNAME and REDIS_PASSWORD fill in the login REDIS_URL or the seeds leave out. Set beside
 * a URL that carries a password already, REDIS_PASSWORD was ignored without a word: a password
 * changed there alone (a rotation) kept the process logging in with the URL's old one, and the
 * user saw only Redis refusing the login. Each part of the login given twice is now refused at
 * start, naming the variable and where the other one is. So is REPLICA_WAIT_MS with local
 * durability (the default on a single Redis), where nothing waits for a replica: set to bound the
 * wait of a replicated acknowledgement, it bounded nothing, as RATE_LIMIT_BURST with RATE_LIMIT=off.
 */
import { isLeft } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/app/config.ts';

const problems = (env: Record<string, string>) => {
  const parsed = parseConfig(env);
  return isLeft(parsed) ? parsed.left.join('\n') : '';
};

describe('a Redis login given in two places', () => {
  it('REDIS_PASSWORD beside a REDIS_URL carrying a password is refused, naming both and what to do', () => {
    expect(problems({ REDIS_URL: 'redis://app:old@127.0.0.1:6379', REDIS_PASSWORD: 'new' })).toBe(
      'REDIS_PASSWORD: REDIS_URL carries a password already, which is the one used, so REDIS_PASSWORD would be ignored; give the password in one place (remove it from REDIS_URL, or unset REDIS_PASSWORD)',
    );
  });

  it('REDIS_USERNAME beside seeds carrying a user is refused, the seeds not shown', () => {
    const said = problems({ REDIS_CLUSTER_NODES: 'app:s3cret@127.0.0.1:7000', REDIS_USERNAME: 'other' });
    expect(said).toMatch(/^REDIS_USERNAME: REDIS_CLUSTER_NODES carries a user already/);
    expect(said).not.toMatch(/s3cret/);
  });

  it('each variable still fills in what the target leaves out', () => {
    expect(problems({ REDIS_URL: 'redis://app@127.0.0.1:6379', REDIS_PASSWORD: 'pw' })).toBe('');
    expect(
      problems({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_USERNAME: 'app', REDIS_PASSWORD: 'pw' }),
    ).toBe('');
    expect(
      problems({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_USERNAME: 'app', REDIS_PASSWORD: 'pw' }),
    ).toBe('');
    expect(loadConfig({ REDIS_URL: 'redis://app@127.0.0.1:6379', REDIS_PASSWORD: 'pw' }).redisPassword).toBe(
      'pw',
    );
  });
});

describe('REPLICA_WAIT_MS with local durability', () => {
  it('is refused, naming DURABILITY and what to do', () => {
    expect(problems({ REDIS_URL: 'redis://127.0.0.1:6379', REPLICA_WAIT_MS: '200' })).toBe(
      'REPLICA_WAIT_MS: has no effect with DURABILITY local (the default without REDIS_CLUSTER_NODES), where no acknowledgement waits for a replica (got "200"); unset it, or set DURABILITY=replicated',
    );
    expect(
      problems({ DURABILITY: 'local', REDIS_CLUSTER_NODES: '127.0.0.1:7000', REPLICA_WAIT_MS: '200' }),
    ).toMatch(/^REPLICA_WAIT_MS: has no effect with DURABILITY=local,/);
  });

  it('is taken with replicated durability, given or the default on a cluster', () => {
    expect(problems({ DURABILITY: 'replicated', REPLICA_WAIT_MS: '200' })).toBe('');
    expect(problems({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REPLICA_WAIT_MS: '200' })).toBe('');
    expect(problems({ REPLICA_WAIT_MS: ' ' })).toBe('');
  });

  it('is left to the warning at start on a process without the api role, which reads neither', () => {
    // A deployment's shared settings, with DURABILITY given to its API processes only.
    expect(
      problems({
        REDIS_URL: 'redis://127.0.0.1:6379',
        ROLES: 'projector,dispatcher',
        REPLICA_WAIT_MS: '200',
      }),
    ).toBe('');
  });
});
