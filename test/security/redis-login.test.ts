/**
 * Redis's password stays out of what Switchboard shows and logs, and a refused login is Redis
 * being unavailable:
 * - `mask` (every URL or seed a message, a log line or /status shows) hides a password whatever it
 *   holds (a URL need not encode ',' or ':' in it), and GET /status shows the masked target;
 * - when Redis refuses the login (its ACL user disabled, or its password changed under a running
 *   process, docs/SECURITY.md "Rotating"), a request answers 503 /problems/redis-unavailable, not
 *   500, and no log line carries the password (ioredis puts `AUTH <user> <password>` on the error).
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_ACL_RULES } from '../../src/adapters/redis/acl.ts';
import { mask } from '../../src/adapters/redis/client.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { createLogger } from '../../src/app/logger.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';
import { bearer, keyOf } from './harness.ts';

const WS = 'redis-login';
const USER = 'redis-login-user';
const PASSWORD = 'Pass,word:8f3a1c';
let redis: TestRedis;
let sb: Running;
const lines: string[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  const admin = redis.adminClient();
  await admin.call('ACL', 'SETUSER', USER, 'reset', 'on', `>${PASSWORD}`, ...APP_ACL_RULES);
  admin.disconnect();
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  sb = await startSwitchboard(
    loadConfig({
      ...redis.env,
      REDIS_URL: `redis://${USER}:${PASSWORD}@${redis.host}:${redis.port}`,
      AUTH: 'on',
      PORT: '0',
      ROLES: 'api',
      WORKSPACES: WS,
      LOG_LEVEL: 'info',
    }),
    createLogger('info', {}, sink),
  );
});

afterAll(async () => {
  const admin = redis?.adminClient();
  await admin?.call('ACL', 'SETUSER', USER, 'on');
  await sb?.stop();
  await admin?.call('ACL', 'DELUSER', USER);
  admin?.disconnect();
  await redis?.stop();
});

describe("Redis's password", () => {
  it('is masked in every target shown, whatever characters it holds', async () => {
    expect(mask('redis://u:ab,cd@h:6379')).toBe('redis://u:***@h:6379');
    expect(mask('rediss://u:a:b@c@h:6379/0')).toBe('rediss://u:***@h:6379/0');
    expect(mask('redis://h:6379')).toBe('redis://h:6379');
    expect(mask('u:p@h1:1,u:q@h2:2')).toBe('u:***@h1:1,u:***@h2:2');
    expect(mask('redis://a:b@h1:1,redis://c:d@h2:2')).toBe('redis://a:***@h1:1,redis://c:***@h2:2');
    // Seeds whose password holds an "@", a space or a "/" (base64): not a character of it shown,
    // in /status (REDIS_CLUSTER_NODES accepts the first two) nor in the refusal of the third.
    expect(mask('u:pa@ss@h1:1,u:pa@ss@h2:2')).toBe('u:***@h1:1,u:***@h2:2');
    expect(mask('redis://u:pa@ss@h1:1,redis://u:pa@ss@h2:2')).toBe('redis://u:***@h1:1,redis://u:***@h2:2');
    expect(mask('u:p w@h1:1,u:p w@h2:2')).toBe('u:***@h1:1,u:***@h2:2');
    expect(mask('u@h1:1,h2:2')).toBe('u@h1:1,h2:2');
    const refused = (() => {
      try {
        loadConfig({ REDIS_CLUSTER_NODES: 'u:ab/Zq9+x@127.0.0.1:7000,u:ab/Zq9+x@127.0.0.1:7001' });
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    })();
    expect(refused).toContain('REDIS_CLUSTER_NODES');
    expect(refused).not.toContain('Zq9');
    const status = await sb.api!.inject({ url: '/status' });
    expect(status.body).not.toContain(PASSWORD);
    expect(status.body).toContain(`redis://${USER}:***@`);
  });

  it('a refused login answers 503 redis-unavailable and logs no password', async () => {
    const key = await keyOf(sb.redis, WS, 'auditor');
    const ok = await sb.api!.inject({ url: `/v1/workspaces/${WS}/keys/me`, headers: bearer(key.key) });
    expect(ok.statusCode).toBe(200);

    const admin = redis.adminClient();
    await admin.call('ACL', 'SETUSER', USER, 'off');
    await admin.call('CLIENT', 'KILL', 'USER', USER);
    admin.disconnect();
    await sleep(1500); // past the key cache (500 ms); every reconnection is refused

    const r = await sb.api!.inject({ url: `/v1/workspaces/${WS}/keys/me`, headers: bearer(key.key) });
    expect(r.headers['content-type']).toMatch(/application\/problem\+json/);
    expect({ status: r.statusCode, type: r.json().type }).toEqual({
      status: 503,
      type: '/problems/redis-unavailable',
    });
    const logs = lines.join('');
    expect(logs).toContain('WRONGPASS');
    expect(logs).not.toContain(PASSWORD);
  });
});
