/**
 * The environment `npm run topology` gives each Switchboard process it starts
 * (src/topology/local/members.ts, memberEnv): the shell's settings pass through, except those
 * that name another Redis or a TLS file its cluster does not take, one port for several processes,
 * or a registration a worker refuses. Exported in the shell (a user who also runs `npm start`
 * against a TLS Redis, or sets METRICS_PORT or ADVERTISE_ADDRESS for it), each made every member
 * refused at start and restarted again and again for as long as the launcher ran.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/app/config.ts';
import { memberEnv } from '../../src/topology/local/members.ts';
import { tempDir } from './helpers.ts';

const SEEDS = '127.0.0.1:17001,127.0.0.1:17002,127.0.0.1:17003';
const LOGIN = { user: 'switchboard', password: 'pw-of-the-cluster' };

describe('a member of the local topology, started from a shell with settings of its own', () => {
  it('starts with the launcher’s cluster, login and ports whatever the shell exports', async () => {
    const dir = await tempDir('member-env');
    try {
      const ca = path.join(dir.dir, 'ca.pem');
      writeFileSync(ca, 'not read: the file only has to be there');
      const shell: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        REDIS_URL: 'rediss://elsewhere.example:6380',
        REDIS_TLS_CA: ca,
        REDIS_TLS_CERT: ca,
        REDIS_TLS_KEY: ca,
        REDIS_USERNAME: 'someone-else',
        REDIS_PASSWORD: 'another-password',
        METRICS_PORT: '9464',
        ADVERTISE_ADDRESS: 'auto',
        RATE_LIMIT: '200',
      };
      const members = [
        { roles: 'api', port: 18201 },
        { roles: 'projector' },
        { roles: 'dispatcher' },
      ] as const;
      for (const m of members) {
        const env = memberEnv(shell, dir.dir, '10.0.0.1', m, SEEDS, LOGIN, '127.0.0.1', undefined);
        const parsed = parseConfig(env);
        expect(E.isRight(parsed) ? '' : parsed.left.join('; '), `${m.roles}: refused at start`).toBe('');
        if (E.isLeft(parsed)) continue;
        const c = parsed.right;
        expect(c.redisClusterNodes, m.roles).toEqual(SEEDS.split(','));
        expect(c.redisUrl, m.roles).toBeUndefined();
        expect([c.redisUsername, c.redisPassword], m.roles).toEqual([LOGIN.user, LOGIN.password]);
        expect(c.metricsPort, m.roles).toBeUndefined();
        expect(c.advertise, m.roles).toEqual(
          m.roles === 'api' ? { host: '127.0.0.1', port: 18201 } : undefined,
        );
        // What the launcher does not decide is the user's: it passes through.
        expect(c.rateLimit?.perSecond, m.roles).toBe(200);
      }
    } finally {
      await dir.remove();
    }
  });
});
