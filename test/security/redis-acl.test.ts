/**
 * The Redis ACL user Switchboard logs in as (src/adapters/redis/acl.ts): it may run the commands
 * Switchboard uses on `sb:*` keys and nothing else (administration, keyspace listing, keys of
 * others, not even from inside a Lua script); Switchboard works end to end with it on a single
 * server and on a Redis Cluster (through a failover) without one denial in the servers' ACL LOG; every command a Lua
 * step calls is granted; and the private redis-server of `npm start` keeps its passwords in
 * owner-only files, hashed in the ACL file, off the command line, the same across restarts.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { APP_ACL_RULES, APP_COMMANDS, APP_USER } from '../../src/adapters/redis/acl.ts';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { startRedisCluster } from '../../src/topology/redis-cluster.ts';
import { credentialsFile, startPrivateRedis } from '../../src/topology/redis-server.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';
import { routeOneContact, startOn } from './redis-flow.ts';

/** How Redis refuses a command, or a key, that a script's caller may not use. */
const DENIED_IN_SCRIPT = /can't run this command|can't access at least one of the keys|NOPERM/i;

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Denials in a server's ACL LOG (as the admin), for the Switchboard user. */
async function denials(admin: Redis): Promise<string[]> {
  const log = (await admin.call('ACL', 'LOG')) as unknown[][];
  return log
    .map((entry) => {
      const f: Record<string, unknown> = {};
      for (let i = 0; i + 1 < entry.length; i += 2) f[String(entry[i])] = entry[i + 1];
      return f;
    })
    .filter((f) => f.username === APP_USER)
    .map((f) => `${f.reason} ${f.object} (${f.context})`);
}

describe('the Switchboard ACL user', () => {
  let server: TestRedis;
  let admin: Redis;

  beforeAll(async () => {
    server = await startTestRedis();
    admin = new Redis(server.adminUrl);
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  it('is refused every command outside its list, and keys outside sb:*', async () => {
    const app = new Redis(server.url, { maxRetriesPerRequest: 0 });
    try {
      expect(await app.call('ACL', 'WHOAMI').catch((e: Error) => e.message)).toMatch(/NOPERM/);
      const refused: [string, ...(string | number)[]][] = [
        ['FLUSHALL'],
        ['FLUSHDB'],
        ['CONFIG', 'GET', '*'],
        ['CONFIG', 'SET', 'appendonly', 'no'],
        ['KEYS', '*'],
        ['SCAN', 0],
        ['DEBUG', 'SLEEP', 0],
        ['SHUTDOWN', 'NOSAVE'],
        ['ACL', 'LIST'],
        ['MONITOR'],
        ['SLOWLOG', 'GET'],
        ['CLIENT', 'LIST'],
        ['CLIENT', 'KILL', 'TYPE', 'normal'],
        ['SCRIPT', 'FLUSH'],
        ['FUNCTION', 'FLUSH'],
        ['FUNCTION', 'DELETE', 'anything'],
        ['FUNCTION', 'DUMP'],
        ['FUNCTION', 'LIST'],
        ['REPLICAOF', '127.0.0.1', 1],
        ['BGSAVE'],
        ['MIGRATE', '127.0.0.1', 1, 'sb:{x}:k', 0, 1000],
        ['RENAME', 'sb:{x}:a', 'sb:{x}:b'],
        ['PUBLISH', 'sb', 'hello'],
        ['GET', 'other:key'],
        ['SET', 'session:42', 'x'],
        ['XADD', 'not-sb', '*', 'f', 'v'],
        ['DEL', 'sb'],
      ];
      for (const [command, ...args] of refused) {
        const answer = await app.call(command, ...args).then(
          (r) => `answered ${JSON.stringify(r)}`,
          (e: Error) => e.message,
        );
        // DEBUG is also off in the server's configuration (enable-debug-command), which answers first.
        const expected = command === 'DEBUG' ? /^NOPERM|^ERR DEBUG command not allowed/ : /^NOPERM/;
        expect(answer, `${command} ${args.join(' ')}`).toMatch(expected);
        // And the ACL itself says no, whatever the server's configuration.
        const dryRun = await admin.call('ACL', 'DRYRUN', APP_USER, command, ...args.map(String));
        expect(String(dryRun), `ACL DRYRUN ${command}`).toMatch(/no permissions/);
      }
      // Lua runs with the caller's rights: a script cannot reach further than the user.
      const inScript = async (lua: string) =>
        app.eval(lua, 0).then(
          (r) => `answered ${JSON.stringify(r)}`,
          (e: Error) => e.message,
        );
      expect(await inScript("return redis.call('FLUSHALL')")).toMatch(DENIED_IN_SCRIPT);
      expect(await inScript("return redis.call('RENAME', 'sb:{x}:a', 'sb:{x}:b')")).toMatch(DENIED_IN_SCRIPT);
      expect(await inScript("return redis.call('SET', 'other:key', 'x')")).toMatch(DENIED_IN_SCRIPT);
      // Nothing was done by any of them.
      expect(await admin.exists('other:key', 'session:42', 'not-sb')).toBe(0);
      expect(await admin.call('CONFIG', 'GET', 'appendonly')).toEqual(['appendonly', 'no']);
    } finally {
      app.disconnect();
    }
  });

  it('may do what Switchboard does on its own keys', async () => {
    const app = server.client();
    try {
      const k = 'sb:{acl-own}:';
      expect(await app.set(`${k}lease`, 'me', 'PX', 1000, 'NX')).toBe('OK');
      expect(await app.xadd(`${k}commands`, '*', 'type', 'X')).toMatch(/^\d+-\d+$/);
      expect(await app.xgroup('CREATE', `${k}commands`, 'projector', '0')).toBe('OK');
      expect(await app.hset(`${k}meta`, 'applied', '0-0')).toBe(1);
      expect(await app.zadd(`${k}wake`, 0, 'w')).toBe(1);
      expect(await app.bzpopmin(`${k}wake`, 1)).toEqual([`${k}wake`, 'w', '0']);
      expect(await app.eval("return redis.call('HGET', KEYS[1], 'applied')", 1, `${k}meta`)).toBe('0-0');
      expect(await app.time()).toHaveLength(2);
      expect(await app.sadd('sb:workspaces', 'acl-own')).toBeGreaterThanOrEqual(0);
    } finally {
      app.disconnect();
    }
  });

  it('runs Switchboard end to end (every role) without one denial', async () => {
    await admin.call('ACL', 'LOG', 'RESET');
    const running = await startOn(server.env, 'acl-flow');
    try {
      await routeOneContact(running, 'acl-flow');
      const status = await fetch(`${running.url}/status`);
      expect(status.status).toBe(200);
    } finally {
      await running.stop();
    }
    expect(await denials(admin)).toEqual([]);
  });
});

describe('the ACL list', () => {
  it('grants every command a Lua step calls (ACL checks them inside scripts too)', () => {
    const lua = execFileSync('grep', ['-rhoE', "redis\\.p?call\\(\\s*'[A-Za-z]+'", SRC, '--include=*.lua'])
      .toString()
      .match(/'[A-Za-z]+'/g)!
      .map((c) => c.slice(1, -1).toLowerCase());
    const granted = new Set(APP_COMMANDS.map((c) => c.split('|')[0]));
    expect([...new Set(lua)].filter((c) => !granted.has(c))).toEqual([]);
  });

  it('grants no administrative or keyspace-wide command, and no channel', () => {
    const never = ['flushall', 'flushdb', 'config', 'keys', 'scan', 'debug', 'shutdown', 'acl', 'monitor'];
    const more = ['slowlog', 'script', 'module', 'replicaof', 'slaveof', 'migrate', 'restore'];
    const granted = APP_COMMANDS.map((c) => c.split('|')[0]);
    expect(granted.filter((c) => [...never, ...more].includes(c!))).toEqual([]);
    expect(APP_COMMANDS.filter((c) => c.startsWith('client|'))).toEqual(['client|setname']);
    // Of FUNCTION, only LOAD (Switchboard's own libraries): no DELETE, FLUSH, RESTORE, DUMP, LIST.
    expect(APP_COMMANDS.filter((c) => c.startsWith('function'))).toEqual(['function|load']);
    expect(APP_ACL_RULES.slice(0, 4)).toEqual(['resetkeys', '~sb:*', 'resetchannels', '-@all']);
  });

  it('is the one the Docker Compose topology gives its Redis nodes, and Switchboard logs in as it there', () => {
    // The nodes' ACL file is written at start from infra/redis/users.acl.tmpl (the password as a
    // hash from a secret); test/infra/docker.test.ts loads it into a real redis-server.
    const template = readFileSync(new URL('../../infra/redis/users.acl.tmpl', import.meta.url), 'utf8');
    const line = template.split('\n').find((l) => l.startsWith(`user ${APP_USER} `));
    const [, , on, password, ...rules] = (line ?? '').split(' ');
    expect(on).toBe('on');
    expect(password).toBe('#{{REDIS_SWITCHBOARD_PASSWORD_SHA256}}');
    expect(rules).toEqual(APP_ACL_RULES);
    const compose = parse(readFileSync(new URL('../../infra/docker-compose.yml', import.meta.url), 'utf8'), {
      merge: true,
    }) as { services: Record<string, { environment?: Record<string, string> }> };
    for (const service of ['api', 'workers'])
      expect(compose.services[service]?.environment).toMatchObject({ REDIS_USERNAME: APP_USER });
  });
});

describe('on a Redis Cluster', () => {
  it('runs Switchboard end to end as the ACL user (slot map, redirects, WAIT, a failover) without one denial', async () => {
    const cluster = await startRedisCluster({});
    const { app, admin } = cluster.credentials;
    const masters = cluster.nodes.filter((n) => n.role === 'master');
    const seeds = masters.map((n) => `${app.user}:${app.password}@${n.host}:${n.port}`).join(',');
    let victim = -1;
    try {
      const running = await startOn({ REDIS_CLUSTER_NODES: seeds }, 'acl-cluster');
      try {
        await routeOneContact(running, 'acl-cluster');
        // The workspace's master dies: the client follows the promoted replica (READONLY and
        // READWRITE on the connections whose role changed), and routing goes on.
        const probe = new Redis(masters[0]!.port, masters[0]!.host, { password: admin.password });
        const slot = Number(await probe.cluster('KEYSLOT', 'sb:{acl-cluster}:commands'));
        const ranges = (await probe.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
        probe.disconnect();
        const port = ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
        victim = cluster.servers.findIndex((s) => s.port === port);
        cluster.servers[victim]!.kill('SIGKILL');
        await waitFor(
          'the replica promoted',
          async () => (await cluster.roles()).filter((r) => r.role === 'master').length === 3,
          { timeoutMs: 20_000, everyMs: 100 },
        );
        await routeOneContact(running, 'acl-cluster', 2);
      } finally {
        await running.stop();
      }
      for (const n of cluster.nodes.filter((_, i) => i !== victim)) {
        const node = new Redis(n.port, n.host, { password: admin.password, maxRetriesPerRequest: 1 });
        try {
          expect(await denials(node), `${n.role} ${n.port}`).toEqual([]);
        } finally {
          node.disconnect();
        }
      }
      // The cluster client of another tool, logged in by REDIS_USERNAME/REDIS_PASSWORD instead.
      const tool = connectRedis({
        clusterNodes: masters.map((n) => `${n.host}:${n.port}`),
        username: app.user,
        password: app.password,
      });
      try {
        expect(await tool.hget('sb:{acl-cluster}:meta', 'applied')).toMatch(/^\d+-\d+$/);
        await expect(tool.call('CONFIG', 'GET', 'dir')).rejects.toThrow(/NOPERM/);
      } finally {
        tool.disconnect();
      }
    } finally {
      await cluster.stop();
    }
  }, 60_000);
});

describe('the private redis-server of npm start', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sb-private-acl-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps its passwords owner-only, hashed in the ACL file, off the command line, the same after a restart', async () => {
    const first = await startPrivateRedis(dir, { appendonly: false });
    const { app, admin } = first.credentials;
    try {
      for (const file of [credentialsFile(dir), path.join(dir, 'users.acl')])
        expect((statSync(file).mode & 0o777).toString(8), file).toBe('600');
      const acl = readFileSync(path.join(dir, 'users.acl'), 'utf8');
      expect(acl).not.toContain(app.password);
      expect(acl).not.toContain(admin.password);
      expect(acl).toMatch(/^user switchboard on #[0-9a-f]{64} resetkeys ~sb:\* resetchannels -@all \+/m);
      const cmdline = readFileSync(`/proc/${first.server.process.pid}/cmdline`, 'utf8');
      expect(cmdline).not.toContain(app.password);
      expect(cmdline).not.toContain(admin.password);
      // The default user needs the admin password; the URL Switchboard gets is the ACL user's.
      expect(new URL(first.url).username).toBe(APP_USER);
      const anonymous = new Redis(first.server.port, first.server.host, {
        enableReadyCheck: false,
        maxRetriesPerRequest: 0,
      });
      await expect(anonymous.get('sb:{x}:k')).rejects.toThrow(/NOAUTH/);
      anonymous.disconnect();
      const viaUrl = new Redis(first.url, { maxRetriesPerRequest: 0 });
      expect(await viaUrl.set('sb:{private}:k', 'v')).toBe('OK');
      await expect(viaUrl.call('FLUSHALL')).rejects.toThrow(/NOPERM/);
      viaUrl.disconnect();
    } finally {
      await first.server.stop();
    }
    const again = await startPrivateRedis(dir, { appendonly: false });
    try {
      expect(again.credentials).toEqual(first.credentials);
      const viaUrl = new Redis(again.url, { maxRetriesPerRequest: 0 });
      expect(await viaUrl.ping()).toBe('PONG');
      viaUrl.disconnect();
    } finally {
      await again.server.stop();
    }
    expect(readdirSync(dir)).toContain('redis-credentials.json');
  });

  it('makes a DATA_DIR it does not find owner-only (0700): its AOF, archive and admin key stay unread by others', async () => {
    const fresh = path.join(dir, 'fresh', 'data');
    const started = await startPrivateRedis(fresh);
    try {
      expect((statSync(fresh).mode & 0o777).toString(8)).toBe('700');
      expect(readdirSync(fresh)).toContain('appendonlydir');
    } finally {
      await started.server.stop();
    }
  });
});
