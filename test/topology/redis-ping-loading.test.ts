/**
 * A redis-server started on an AOF it takes a while to load is "started" only once it has loaded
 * it. While it loads, a client that has not logged in gets -NOAUTH (the login check comes before
 * the loading one), which the start's PING took for an answer: `npm start` then went on while its
 * private Redis loaded, its commands timed out (the first admin key not made, "Command timed
 * out" from every role) and the API listened on a Redis that answered -LOADING.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { type PrivateRedis, startPrivateRedis } from '../../src/topology/redis-server.ts';

const dirs: string[] = [];
const servers: PrivateRedis[] = [];

afterAll(async () => {
  for (const s of servers) await s.server.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('a redis-server loading its AOF', () => {
  it('the private Redis is started only once its AOF is loaded: its first command is answered, not -LOADING', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-ping-loading-'));
    dirs.push(dataDir);
    // An AOF that takes about 2.5 s to load (each entry sleeps 1 ms as it is replayed; the server
    // answers clients between every 1,024 entries).
    const aof = path.join(dataDir, 'appendonlydir');
    mkdirSync(aof, { mode: 0o700 });
    writeFileSync(path.join(aof, 'appendonly.aof.manifest'), 'file appendonly.aof.1.incr.aof seq 1 type i\n');
    const sleep = '*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$5\r\n0.001\r\n';
    writeFileSync(
      path.join(aof, 'appendonly.aof.1.incr.aof'),
      `*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n${sleep.repeat(2300)}`,
    );

    const started = await startPrivateRedis(dataDir);
    servers.push(started);
    // Logged in as Switchboard logs in, with no ready check of its own: what the start promised.
    const client = new Redis(started.url, {
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
      lazyConnect: true,
    });
    try {
      await client.connect();
      const answer = await client.ping().catch((err: Error) => err.message);
      expect(answer).toBe('PONG');
    } finally {
      client.disconnect();
    }
  }, 15_000);
});
