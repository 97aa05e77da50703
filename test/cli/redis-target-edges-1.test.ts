/**
 * The command-line tools (audit, rebuild, keys) read the Redis settings of the environment as
 * `npm start` does, and refuse what it refuses. They let a login given twice pass (REDIS_PASSWORD
 * beside a URL that carries one: the URL's used, the variable ignored without a word, where npm
 * start refuses it), took the first seed's login when the seeds carried different ones and TLS for
 * every seed when only some were rediss://, tried to log in as a REDIS_USERNAME with a space, and
 * ended on "could not run: ENOENT ... report it" for a REDIS_TLS_* file that is not there. Each is
 * now refused as npm start refuses it, naming the flag or the variable as the user gave it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isLeft } from 'fp-ts/lib/Either.js';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/app/config.ts';
import { parseRedisTarget } from '../../src/cli/redis-target.ts';
import { OptionChecker } from '../../src/cli/sim/options.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-target-edges-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tool = (values: Record<string, string>, env: Record<string, string>) => {
  const check = new OptionChecker();
  const got = parseRedisTarget(values, { DATA_DIR: dir, ...env }, check);
  return { problems: check.problems.join('\n'), target: got.target };
};
const started = (env: Record<string, string>) => {
  const parsed = parseConfig({ DATA_DIR: dir, ...env });
  return isLeft(parsed) ? parsed.left.join('\n') : '';
};

describe('a Redis login given in two places', () => {
  it('REDIS_PASSWORD beside a REDIS_URL carrying a password is refused, as npm start refuses it', () => {
    const env = { REDIS_URL: 'redis://app:old@127.0.0.1:6379', REDIS_PASSWORD: 'new' };
    expect(started(env)).toMatch(/^REDIS_PASSWORD: REDIS_URL carries a password already/);
    expect(tool({}, env).problems).toBe(
      'REDIS_PASSWORD: REDIS_URL carries a password already, which is the one used, so REDIS_PASSWORD would be ignored; give the password in one place (remove it from REDIS_URL, or unset REDIS_PASSWORD)',
    );
  });

  it('names --redis-url when the flag carries it, and never shows the password', () => {
    const said = tool({ 'redis-url': 'redis://app:s3cret@127.0.0.1:6379' }, { REDIS_PASSWORD: 'other' });
    expect(said.problems).toMatch(
      /^REDIS_PASSWORD: --redis-url carries a password already, .* \(remove it from --redis-url, or unset REDIS_PASSWORD\)$/,
    );
    expect(said.problems).not.toMatch(/s3cret/);
  });

  it('REDIS_USERNAME beside seeds carrying a user is refused, naming the flag or the variable', () => {
    const env = { REDIS_CLUSTER_NODES: 'app:s3cret@127.0.0.1:7000', REDIS_USERNAME: 'other' };
    expect(started(env)).toMatch(/^REDIS_USERNAME: REDIS_CLUSTER_NODES carries a user already/);
    expect(tool({}, env).problems).toMatch(/^REDIS_USERNAME: REDIS_CLUSTER_NODES carries a user already/);
    const flag = tool({ 'cluster-nodes': 'app:s3cret@127.0.0.1:7000' }, { REDIS_USERNAME: 'other' });
    expect(flag.problems).toMatch(/^REDIS_USERNAME: --cluster-nodes carries a user already/);
    expect(flag.problems).not.toMatch(/s3cret/);
  });

  it('each variable still fills in what the target leaves out', () => {
    const url = tool({}, { REDIS_URL: 'redis://app@127.0.0.1:6379', REDIS_PASSWORD: 'pw' });
    expect(url.problems).toBe('');
    expect(url.target).toMatchObject({ password: 'pw' });
    const seeds = tool(
      { 'cluster-nodes': '127.0.0.1:7000' },
      { REDIS_USERNAME: 'app', REDIS_PASSWORD: 'pw' },
    );
    expect(seeds.problems).toBe('');
    expect(seeds.target).toMatchObject({ username: 'app', password: 'pw' });
  });
});

describe('seeds of one cluster', () => {
  it('carrying different logins are refused, not logged in to with the first one', () => {
    const env = { REDIS_CLUSTER_NODES: 'a:one@127.0.0.1:7000,b:two@127.0.0.1:7001' };
    expect(started(env)).toBe('REDIS_CLUSTER_NODES: every seed that carries a login must carry the same one');
    expect(tool({}, env).problems).toBe(
      'REDIS_CLUSTER_NODES: every seed that carries a login must carry the same one',
    );
    expect(tool({ 'cluster-nodes': env.REDIS_CLUSTER_NODES }, {}).problems).toBe(
      '--cluster-nodes: every seed that carries a login must carry the same one',
    );
  });

  it('some rediss:// and some not are refused, not all connected to with TLS', () => {
    const env = { REDIS_CLUSTER_NODES: 'redis://127.0.0.1:7000,rediss://127.0.0.1:7001' };
    expect(started(env)).toBe('REDIS_CLUSTER_NODES: use rediss:// for every seed or for none');
    expect(tool({}, env).problems).toBe('REDIS_CLUSTER_NODES: use rediss:// for every seed or for none');
  });
});

describe('the login and TLS variables themselves', () => {
  it('a REDIS_USERNAME with a space is refused, as npm start refuses it', () => {
    const env = { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_USERNAME: 'app user' };
    expect(started(env)).toBe('REDIS_USERNAME: must be a user name without spaces');
    expect(tool({}, env).problems).toBe('REDIS_USERNAME: must be a user name without spaces');
  });

  it('a REDIS_TLS_* file that is not there is refused by name, not left to end the tool on ENOENT', () => {
    const missing = path.join(dir, 'no-such-ca.pem');
    const env = { REDIS_URL: 'rediss://127.0.0.1:6379', REDIS_TLS_CA: missing };
    expect(started(env)).toBe(`REDIS_TLS_CA: no such file: "${missing}"`);
    expect(tool({}, env).problems).toBe(`REDIS_TLS_CA: no such file: "${missing}"`);
  });
});
