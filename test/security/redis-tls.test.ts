/**
 * TLS to Redis: a redis-server that listens for TLS only (`--port 0 --tls-port`, Debian's build
 * has TLS), with certificates made here by the openssl CLI (a private CA, the server's certificate
 * for 127.0.0.1, a client certificate) and the Switchboard ACL user. Switchboard started with
 * `REDIS_URL=rediss://switchboard:<pw>@127.0.0.1:<port>` and `REDIS_TLS_CA` routes a contact end to
 * end; without the CA it does not trust the server; plain redis:// finds no server; a server that
 * asks for client certificates (`tls-auth-clients yes`) takes one given by REDIS_TLS_CERT/KEY
 * and refuses a client without one.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, type RedisTarget } from '../../src/adapters/redis/client.ts';
import {
  type RedisServerHandle,
  type RedisServerTls,
  startRedisServer,
} from '../../src/topology/redis-server.ts';
import { loginUrl, newCredentials, switchboardUsers } from '../../src/topology/redis-users.ts';
import { routeOneContact, startOn } from './redis-flow.ts';

interface Pki {
  readonly ca: string;
  readonly server: { cert: string; key: string };
  readonly client: { cert: string; key: string };
}

/** A private CA and two certificates it signs (EC P-256: quick to make), with the openssl CLI. */
function makePki(dir: string): Pki {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=sb-test-ca',
  );
  const sign = (name: string, ext: string) => {
    writeFileSync(path.join(dir, `${name}.ext`), `${ext}\n`);
    openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    );
    return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  };
  return {
    ca: path.join(dir, 'ca.crt'),
    server: sign('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost'),
    client: sign('client', 'extendedKeyUsage=clientAuth'),
  };
}

/** Whether a client of `target` can PING: 'PONG', or the error it got. */
async function ping(target: RedisTarget): Promise<string> {
  const redis = connectRedis(target, {
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2000,
    enableOfflineQueue: true,
  });
  let lastError = '';
  redis.on('error', (err: Error) => {
    lastError = err.message;
  });
  try {
    return await redis.ping();
  } catch (err) {
    return `${(err as Error).message} ${lastError}`;
  } finally {
    redis.disconnect();
  }
}

describe('TLS to Redis (rediss://)', () => {
  let dir: string;
  let pki: Pki;
  const credentials = newCredentials();
  let server: RedisServerHandle;

  const start = (authClients: boolean) => {
    const tls: RedisServerTls = {
      certFile: pki.server.cert,
      keyFile: pki.server.key,
      caFile: pki.ca,
      authClients,
    };
    return startRedisServer({
      tls,
      users: switchboardUsers(credentials),
      adminPassword: credentials.admin.password,
    });
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sb-redis-tls-'));
    pki = makePki(dir);
    // Debian's redis-server is built with TLS (it links libssl); a build without it rejects --tls-port.
    server = await start(false).catch((err: Error) => {
      throw new Error(
        `redis-server could not start with TLS; is it built with BUILD_TLS=yes?\n${err.message}`,
      );
    });
  });
  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('routes a contact end to end over TLS as the ACL user (REDIS_URL=rediss://, REDIS_TLS_CA)', async () => {
    expect(server.url).toMatch(/^rediss:\/\/127\.0\.0\.1:\d+$/);
    const url = loginUrl(credentials.app, server.host, server.port, 'rediss');
    const running = await startOn({ REDIS_URL: url, REDIS_TLS_CA: pki.ca }, 'tls-flow');
    try {
      await routeOneContact(running, 'tls-flow');
      const status = (await (await fetch(`${running.url}/status`)).json()) as {
        redis?: { target?: string };
      };
      expect(JSON.stringify(status)).not.toContain(credentials.app.password);
      // The ACL user is who logged in (over the TLS-only port).
      const admin = connectRedis({
        url: loginUrl(credentials.admin, server.host, server.port, 'rediss'),
        tls: { caFile: pki.ca },
      });
      try {
        const clients = String(await admin.call('CLIENT', 'LIST'));
        expect(clients).toMatch(/user=switchboard/);
      } finally {
        admin.disconnect();
      }
    } finally {
      await running.stop();
    }
  });

  it('does not trust the server without its CA, and finds no plain-text port', async () => {
    const url = loginUrl(credentials.app, server.host, server.port, 'rediss');
    expect(await ping({ url })).toMatch(/self[- ]signed|unable to verify|certificate/i);
    expect(await ping({ url: loginUrl(credentials.app, server.host, server.port) })).not.toBe('PONG');
    expect(await ping({ url, tls: { caFile: pki.ca } })).toBe('PONG');
  });

  it('gives a client certificate (REDIS_TLS_CERT, REDIS_TLS_KEY) to a server that asks for one', async () => {
    const strict = await start(true);
    try {
      const url = loginUrl(credentials.app, strict.host, strict.port, 'rediss');
      expect(await ping({ url, tls: { caFile: pki.ca } })).not.toBe('PONG');
      expect(
        await ping({ url, tls: { caFile: pki.ca, certFile: pki.client.cert, keyFile: pki.client.key } }),
      ).toBe('PONG');
      const running = await startOn(
        {
          REDIS_URL: `rediss://${strict.host}:${strict.port}`,
          REDIS_USERNAME: credentials.app.user,
          REDIS_PASSWORD: credentials.app.password,
          REDIS_TLS_CA: pki.ca,
          REDIS_TLS_CERT: pki.client.cert,
          REDIS_TLS_KEY: pki.client.key,
        },
        'tls-mutual',
      );
      try {
        await routeOneContact(running, 'tls-mutual');
      } finally {
        await running.stop();
      }
    } finally {
      await strict.stop();
    }
  });
});
