/**
 * A process that starts servers as Switchboard and the launcher do (a redis-server, an HAProxy),
 * and a Switchboard process as the end-to-end suites do (test/support/processes.ts), prints their
 * pids as one JSON line, and waits: the starter that ending-with-starter.test.ts kills outright.
 * Run through tsx: `node --import tsx <this> <dir>`.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startHaproxy } from '../../src/topology/haproxy/process.ts';
import { freePort, startRedisServer } from '../../src/topology/redis-server.ts';
import { startProcess } from '../support/processes.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: starter-fixture.ts <dir>');
const redis = await startRedisServer({ dataDir: path.join(dir, 'redis') });
const socket = path.join(dir, 'haproxy.sock');
const configPath = path.join(dir, 'haproxy.cfg');
writeFileSync(
  configPath,
  [
    'global',
    `    stats socket ${socket} mode 600 level admin`,
    'defaults',
    '    mode http',
    '    timeout connect 1s',
    '    timeout client 5s',
    '    timeout server 5s',
    'frontend f',
    `    bind 127.0.0.1:${await freePort()}`,
    '    http-request return status 200',
    '',
  ].join('\n'),
);
const haproxy = await startHaproxy({ configPath, socket });
const switchboard = await startProcess({
  roles: 'api',
  redisUrl: redis.url,
  env: { AUTH: 'off', DATA_DIR: path.join(dir, 'switchboard') },
});
process.stdout.write(
  `${JSON.stringify({ redis: redis.process.pid, haproxy: haproxy.pid, switchboard: switchboard.pid, redisPort: redis.port })}\n`,
);
setInterval(() => undefined, 1 << 30);
