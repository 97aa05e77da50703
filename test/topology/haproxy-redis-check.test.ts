/**
 * HAProxy's layer-7 Redis check (AUTH haproxy-check / +OK, PING / +PONG, QUIT / +OK) against a
 * real redis-server with the least-privilege ACL user, read back through the runtime API:
 * - UP when the user can log in and PING;
 * - DOWN when AUTH fails (user switched off; then, separately, password changed), when PING is
 *   refused (user loses +ping), when the server is frozen (SIGSTOP: port open, no answer),
 *   and when the server is killed; back UP after each repair.
 * Check interval 200 ms, fall 2, rise 2, check read timeout 300 ms (a wrong reply is judged
 * when it expires: DOWN after fall x (inter + timeout)). Timings are logged as JSON.
 */
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSelfSignedCert, writeHaproxyConfig } from '../../src/topology/haproxy/config.ts';
import { type HaproxyHandle, startHaproxy } from '../../src/topology/haproxy/process.ts';
import { type HaproxyRuntime, haproxyRuntime } from '../../src/topology/haproxy/runtime.ts';
import { HAPROXY_CHECK_RULES } from '../../src/topology/redis-cluster.ts';
import { freePort, type RedisServerHandle, startRedisServer } from '../../src/topology/redis-server.ts';
import { timed, waitFor } from '../support/wait.ts';
import { tempDir } from './helpers.ts';

const PASSWORD = 'hc-secret-1';
const USER = 'haproxy-check';

let tmp: { dir: string; remove(): Promise<void> };
let redisSrv: RedisServerHandle;
let admin: Redis;
let hp: HaproxyHandle;
let rt: HaproxyRuntime;
let redisPort: number;
const timings: Record<string, number> = {};

async function status(): Promise<string> {
  return (await rt.serverState('redis', 'redis1'))?.status ?? 'missing';
}

/** Time until the server's status is exactly `want` (UP / DOWN). */
async function until(want: 'UP' | 'DOWN', label: string, timeoutMs = 8000): Promise<number> {
  const { elapsedMs } = await timed(
    waitFor(`redis1 ${want} (${label})`, async () => (await status()) === want, { timeoutMs, everyMs: 25 }),
  );
  timings[label] = elapsedMs;
  return elapsedMs;
}

beforeAll(async () => {
  tmp = await tempDir('redischeck');
  redisSrv = await startRedisServer({
    args: ['--user', USER, 'on', `>${PASSWORD}`, ...HAPROXY_CHECK_RULES],
  });
  admin = new Redis(redisSrv.port, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: true });
  admin.on('error', () => undefined); // the last test kills the server; reconnect errors are expected
  await admin.connect();
  const runDir = path.join(tmp.dir, 'run');
  const pem = await ensureSelfSignedCert(path.join(tmp.dir, 'certs'));
  redisPort = await freePort();
  const configPath = await writeHaproxyConfig({
    runDir,
    tlsPem: pem,
    redisCheckPassword: PASSWORD,
    httpPort: await freePort(),
    tlsPort: await freePort(),
    statsPort: await freePort(),
    redisPort,
    redisServers: [{ host: redisSrv.host, port: redisSrv.port }],
    redisCheckInter: '200ms',
    checkTimeout: '300ms',
  });
  hp = await startHaproxy({ configPath, socket: path.join(runDir, 'haproxy.sock') });
  rt = haproxyRuntime(hp.socket);
});

afterAll(async () => {
  console.log(JSON.stringify({ test: 'haproxy-redis-check', timingsMs: timings }));
  admin?.disconnect();
  await hp?.stop();
  await redisSrv?.stop();
  await tmp?.remove();
});

describe('HAProxy layer-7 Redis check', () => {
  it('the ACL user can only AUTH, PING and QUIT', async () => {
    const acl = (await admin.call('ACL', 'GETUSER', USER)) as unknown[];
    const commands = String(acl[acl.indexOf('commands') + 1]);
    expect(commands).toContain('-@all');
    expect(commands).toContain('+ping');
    expect(commands).toContain('+auth');
    const probe = new Redis(redisSrv.port, '127.0.0.1', {
      username: USER,
      password: PASSWORD,
      enableReadyCheck: false, // the check user may not run INFO
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    await probe.connect();
    expect(await probe.ping()).toBe('PONG');
    await expect(probe.get('any')).rejects.toThrow(/NOPERM/);
    await expect(probe.call('INFO')).rejects.toThrow(/NOPERM/);
    probe.disconnect();
  });

  it('is UP with a working user, and clients reach Redis through the frontend', async () => {
    await until('UP', 'initialUp');
    const s = await rt.serverState('redis', 'redis1');
    expect(s?.checkStatus).toBe('L7OK');
    const viaHaproxy = new Redis(redisPort, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
    await viaHaproxy.connect();
    await viaHaproxy.set('sb:topology:probe', 'through-haproxy');
    expect(await admin.get('sb:topology:probe')).toBe('through-haproxy');
    viaHaproxy.disconnect();
    // `show servers state` agrees: srv_op_state 2 = running.
    const state = await rt.command('show servers state redis');
    expect(state).toMatch(/^\d+ redis \d+ redis1 \S+ 2 /m);
  });

  it('goes DOWN when AUTH fails (user off) and back UP when it is on again', async () => {
    await admin.call('ACL', 'SETUSER', USER, 'off');
    await until('DOWN', 'authUserOff_down');
    expect((await rt.serverState('redis', 'redis1'))?.checkStatus).toMatch(/^L7/);
    await admin.call('ACL', 'SETUSER', USER, 'on');
    await until('UP', 'authUserOff_up');
  });

  it('goes DOWN when the password changes and back UP when it is restored', async () => {
    await admin.call('ACL', 'SETUSER', USER, 'resetpass', '>another-password');
    await until('DOWN', 'wrongPassword_down');
    await admin.call('ACL', 'SETUSER', USER, 'resetpass', `>${PASSWORD}`);
    await until('UP', 'wrongPassword_up');
  });

  it('goes DOWN when PING is refused (AUTH still succeeds) and back UP', async () => {
    await admin.call('ACL', 'SETUSER', USER, '-ping');
    await until('DOWN', 'pingDenied_down');
    await admin.call('ACL', 'SETUSER', USER, '+ping');
    await until('UP', 'pingDenied_up');
  });

  it('goes DOWN while the server is frozen (SIGSTOP: port open, no reply) and UP after', async () => {
    // Stopped until HAProxy has marked it DOWN (after about 1.4 s), then continued.
    redisSrv.kill('SIGSTOP');
    try {
      await until('DOWN', 'frozen_down');
    } finally {
      redisSrv.kill('SIGCONT');
    }
    await until('UP', 'frozen_up');
  });

  it('goes DOWN when redis-server is killed', async () => {
    admin.disconnect();
    redisSrv.kill('SIGKILL');
    await until('DOWN', 'killed_down');
    expect((await rt.serverState('redis', 'redis1'))?.checkStatus).toMatch(/^L4/);
  });
});
