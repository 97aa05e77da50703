/**
 * ADVERTISE_ADDRESS took no IPv6 host in any form ([::1]:8080 and ::1:8080 were refused), though
 * HOST takes IPv6 and the rest of the path carries it: the registry's member is host:port read at
 * the last colon, and the HAProxy backend sync adds the server as [addr]:port, the form HAProxy's
 * server address takes. It is now taken written as URLs write it, [addr]:port, and shown to work
 * end to end: a real HAProxy, synced from the registry, reaches an instance on [::1]. The bare
 * form (::1:8080) is refused, saying to write the brackets. And a value that looks like an IPv4
 * address with letters at the end (10.0.0.1a) was taken as a host name and looked up; it is now
 * refused (in HOST too), naming the variable.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { isLeft } from 'fp-ts/lib/Either.js';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { registerInstance } from '../../src/adapters/redis/instance-registry.ts';
import { loadConfig, parseConfig } from '../../src/app/config.ts';
import { syncBackendsOnce } from '../../src/topology/haproxy/backend-sync.ts';
import { ensureSelfSignedCert } from '../../src/topology/haproxy/config.ts';
import { haproxyRuntime } from '../../src/topology/haproxy/runtime.ts';
import { startRedisServer } from '../../src/topology/redis-server.ts';
import { MAIN_BUNDLE } from '../support/main-build.ts';
import { waitFor } from '../support/wait.ts';
import { httpGet, startLocalHaproxy, startTinyHttp, tempDir } from '../topology/helpers.ts';

const problems = (env: Record<string, string>) => {
  const parsed = parseConfig(env);
  return isLeft(parsed) ? parsed.left.join('\n') : '';
};

/** The main command's exit code and stderr with `env` (it is ended after 8 s if it starts). */
async function runMain(env: Record<string, string>): Promise<{ code?: number; stderr?: string } | undefined> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sb-advertise-'));
  const main = existsSync(MAIN_BUNDLE) ? [MAIN_BUNDLE] : ['--import', 'tsx', 'src/main.ts'];
  const failed = await promisify(execFile)(process.execPath, main, {
    env: { ...process.env, PORT: '0', DATA_DIR: dataDir, ...env },
    timeout: 8000,
  }).then(
    () => undefined,
    (err: { code?: number; stderr?: string }) => err,
  );
  rmSync(dataDir, { recursive: true, force: true });
  return failed;
}

describe('ADVERTISE_ADDRESS with an IPv6 host', () => {
  it('takes [addr]:port and resolves it to the address without brackets', () => {
    for (const a of ['[::1]:8080', '[fd00::5]:8080', '[2001:db8::20]:443', '[::ffff:10.0.0.5]:8080'])
      expect(problems({ ADVERTISE_ADDRESS: a }), a).toBe('');
    expect(loadConfig({ ADVERTISE_ADDRESS: '[fd00::5]:8080' }).advertise).toEqual({
      host: 'fd00::5',
      port: 8080,
    });
    expect(loadConfig({ ADVERTISE_ADDRESS: 'auto', HOST: '::1', PORT: '8080' }).advertise).toEqual({
      host: '::1',
      port: 8080,
    });
  });

  it('refuses the bare form, saying to write the brackets', () => {
    for (const a of ['::1:8080', 'fd00::5:8080'])
      expect(problems({ ADVERTISE_ADDRESS: a }), a).toMatch(
        /^ADVERTISE_ADDRESS: .*IPv6 .*in brackets, such as \[fd00::5\]:8080/,
      );
  });

  it('refuses a wildcard, a bad address or a bad port in brackets', () => {
    expect(problems({ ADVERTISE_ADDRESS: '[::]:8080' })).toMatch(
      /^ADVERTISE_ADDRESS: "::" is, an address that listens everywhere/,
    );
    for (const a of [
      '[fd00::g]:8080',
      '[10.0.0.5]:8080',
      '[api-1]:8080',
      '[::1]',
      '[::1]:0',
      '[::1]:99999',
      '[::1]8080',
    ])
      expect(problems({ ADVERTISE_ADDRESS: a }), a).toMatch(/^ADVERTISE_ADDRESS: must be host:port/);
  });

  it('an instance advertised at [::1] is added by the backend sync and reached through HAProxy', async () => {
    const tmp = await tempDir('advertise-v6');
    const redisSrv = await startRedisServer();
    const redis = new Redis(redisSrv.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
    const instance = await startTinyHttp('v6-instance', '::1');
    const { hp, httpPort } = await startLocalHaproxy(
      path.join(tmp.dir, 'run'),
      await ensureSelfSignedCert(path.join(tmp.dir, 'certs')),
      [],
      { apiCheckInter: '200ms', checkTimeout: '500ms' },
    );
    try {
      await redis.connect();
      const advertise = loadConfig({ ADVERTISE_ADDRESS: `[::1]:${instance.port}` }).advertise;
      expect(advertise).toEqual({ host: '::1', port: instance.port });
      const registration = await registerInstance(redis, advertise!, { key: 'sb:instances' });
      const rt = haproxyRuntime(hp.socket);
      const synced = await syncBackendsOnce(redis, rt);
      expect(synced.added).toHaveLength(1);
      const [server] = await rt.listServers('api');
      expect(server).toMatchObject({ host: '::1', port: instance.port });
      await waitFor(
        'the server UP',
        async () => (await rt.serverState('api', server!.name))?.status === 'UP',
        {
          timeoutMs: 5000,
        },
      );
      const res = await httpGet('127.0.0.1', httpPort, '/x');
      expect(res.status).toBe(200);
      expect(res.body).toBe('v6-instance');
      // The next pass finds the server it added as it is: nothing removed, nothing added.
      expect(await syncBackendsOnce(redis, rt)).toMatchObject({ added: [], removed: [] });
      await registration.stop();
    } finally {
      redis.disconnect();
      await hp.stop();
      await instance.close();
      await redisSrv.stop();
      await tmp.remove();
    }
  });

  it('the main command exits 2 on ADVERTISE_ADDRESS=::1:8080, naming it and the form to write', async () => {
    const failed = await runMain({ ADVERTISE_ADDRESS: '::1:8080' });
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toMatch(/ADVERTISE_ADDRESS: .*in brackets, such as \[fd00::5\]:8080/);
  });
});

describe('an IPv4 address with letters at the end', () => {
  const MANGLED = /looks like an IPv4 address with letters at the end.*four decimal numbers from 0 to 255/;

  it('is refused in ADVERTISE_ADDRESS and HOST, naming the variable', () => {
    for (const h of ['10.0.0.1a', '192.168.1.10x', '10.0.0.1a1', '10.1a', '10.0.0.1-b']) {
      expect(problems({ ADVERTISE_ADDRESS: `${h}:8080` }), h).toMatch(
        new RegExp(`^ADVERTISE_ADDRESS: must be host:port .*got "${h}:8080", .*${MANGLED.source}`),
      );
      expect(problems({ HOST: h }), h).toMatch(
        new RegExp(`^HOST: must be .*got "${h}", .*${MANGLED.source}`),
      );
    }
  });

  it('host names that merely hold digits stay taken', () => {
    for (const h of ['1a', '1a.2b', 'api-1.internal', '10a.example', 'cafe', '0x7f.internal', '10.0.0.api'])
      expect(problems({ HOST: h, ADVERTISE_ADDRESS: `${h}:8080` }), h).toBe('');
  });

  it('the main command exits 2 on ADVERTISE_ADDRESS=10.0.0.1a:8080, naming it', async () => {
    const failed = await runMain({ ADVERTISE_ADDRESS: '10.0.0.1a:8080' });
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toMatch(new RegExp(`ADVERTISE_ADDRESS: .*${MANGLED.source}`));
  });
});
