/**
 * The main command as an operator runs it: `node src/main.ts` with configuration from the
 * environment. Proves that without REDIS_URL it runs a private redis-server with AOF under
 * DATA_DIR (and keeps data across restarts), that SIGTERM is a clean exit that takes the private
 * Redis along and closes WebSockets with 1001 (and is clean too when the signal comes during the
 * start, or while Redis does not answer), that bad configuration exits 2 naming each bad
 * variable, and that /status reports `paused` while Redis does not answer and `running` again
 * by itself once it does.
 */

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { type Status, SwitchboardClient, SwitchboardError } from 'switchboard/client';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startRedisServer } from '../../src/topology/redis-server.ts';
import {
  childProcesses,
  killAllProcesses,
  PROJECT_ROOT,
  pidAlive,
  StrayProcesses,
  startProcess,
} from '../support/processes.ts';
import { startTestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

/** What /status says of Redis and the live feed (the client types the rest). */
interface StatusMore {
  redis: { target: string; reachable: boolean };
  subscribers: number;
}

/** The SwitchboardError a call fails with (the test fails if it succeeds). */
const failure = (p: Promise<unknown>): Promise<SwitchboardError> =>
  p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => {
      if (!(e instanceof SwitchboardError)) throw e;
      return e;
    },
  );

const ALL_ROLES = 'api,projector,dispatcher';
const strays = new StrayProcesses();
const dirs: string[] = [];

/** Resolves true when something accepts a TCP connection on the loopback port. */
function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.createConnection({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

afterAll(async () => {
  await killAllProcesses();
  // A private redis-server outlives its parent only if the test failed half-way: do not leak it.
  strays.killAll();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('the main command', () => {
  it('without REDIS_URL runs a private redis-server with AOF under DATA_DIR and stops it on SIGTERM, or killed outright', async () => {
    // DATA_DIR as a user gives it: relative to the working directory, and not there yet.
    const parent = await mkdtemp(path.join(os.tmpdir(), 'sb-main-'));
    dirs.push(parent);
    const dataDir = path.join(parent, 'nested', 'data');
    const relative = path.relative(PROJECT_ROOT, dataDir);
    expect(path.isAbsolute(relative)).toBe(false);
    // API keys on, as a user runs it: the first start makes the admin key of default.
    // Info lines: the order of the key's and the listener's lines is asserted.
    const sb = await startProcess({
      roles: ALL_ROLES,
      env: { DATA_DIR: relative, AUTH: 'on', LOG_LEVEL: 'info' },
    });
    // No retries: each call here is one request, its answer the one asserted.
    const anonymous = new SwitchboardClient({ url: sb.url!, retries: 0 });

    const status = (await anonymous.status()) as Status & StatusMore;
    expect(status.state).toBe('running');
    expect(status.auth).toBe('on');
    // The key is stored before the API listens: whoever reads it once the port answers (as the
    // guide does right after npm start) finds it.
    const keyFile = path.join(dataDir, 'admin-key');
    expect(existsSync(keyFile)).toBe(true);
    await waitFor('the listening line', () => sb.logText().includes('switchboard is listening'), {
      timeoutMs: 5_000,
    });
    const stdout = sb
      .logText()
      .split('\n')
      .filter((l) => l.includes(' out] '));
    const stored = stdout.findIndex((l) => l.includes('created an admin API key'));
    const listening = stdout.findIndex((l) => l.includes('switchboard is listening'));
    expect(stored, stdout.join('\n')).toBeGreaterThanOrEqual(0);
    expect(stored, stdout.join('\n')).toBeLessThan(listening);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const adminKey = readFileSync(keyFile, 'utf8').trim();
    expect(adminKey).toMatch(/^sb_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    await waitFor('the key to be printed once', () => sb.logText().includes(adminKey), { timeoutMs: 5_000 });
    expect(status.roles).toEqual(['api', 'projector', 'dispatcher']);
    const redisPort = Number(new URL(status.redis.target).port);
    expect(redisPort).toBeGreaterThan(0);
    const redisChild = childProcesses(sb.pid).find((c) => c.comm.startsWith('redis-server'));
    expect(redisChild, `a redis-server child of ${sb.pid}`).toBeDefined();
    strays.add(redisChild!.pid);
    expect(await portOpen(redisPort)).toBe(true);
    expect(
      existsSync(path.join(dataDir, 'appendonlydir')) || existsSync(path.join(dataDir, 'appendonly.aof')),
      `AOF under ${dataDir}: ${readdirSync(dataDir).join(', ')}`,
    ).toBe(true);

    // It serves: a command applied by the in-process projector.
    const refused = await failure(anonymous.registerAgent({ id: 'kept-agent', skills: ['English'] }));
    expect(refused.status).toBe(401);
    expect(refused.type).toBe('/problems/unauthorized');
    // The challenge header: a SwitchboardError carries no headers, `send` returns the whole answer.
    const challenge = await anonymous.send('POST', '/v1/workspaces/default/agents', {
      body: { id: 'kept-agent', skills: ['English'] },
      idempotencyKey: 'kept-agent-anonymous',
    });
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const created = await anonymous
      .with({ key: adminKey })
      .registerAgent({ id: 'kept-agent', skills: ['English'] });
    expect(created.status, JSON.stringify(created)).toBe(201);

    expect(await sb.stop(), sb.logText()).toBe(0);
    await waitFor('the private redis-server to end', () => !pidAlive(redisChild!.pid), { timeoutMs: 5_000 });
    expect(await portOpen(redisPort)).toBe(false);

    // The data survived in the AOF: a new process on the same DATA_DIR still knows the agent.
    // The second start makes no new key: the stored one still works, and is printed no more.
    const again = await startProcess({ roles: ALL_ROLES, env: { DATA_DIR: relative, AUTH: 'on' } });
    const againRedis = childProcesses(again.pid).find((c) => c.comm.startsWith('redis-server'));
    if (againRedis) strays.add(againRedis.pid);
    const agent = await new SwitchboardClient({ url: again.url!, key: adminKey, retries: 0 }).getAgent(
      'kept-agent',
    );
    expect(readFileSync(keyFile, 'utf8').trim()).toBe(adminKey);
    expect(again.logText()).not.toContain(adminKey);
    expect(agent.id).toBe('kept-agent');
    // Killed outright (kill -9: no exit hook runs), it still takes its private redis-server with it
    // (the parent-death signal), which would otherwise hold the port and DATA_DIR for good.
    expect(againRedis, `a redis-server child of ${again.pid}`).toBeDefined();
    const againStatus = (await new SwitchboardClient({ url: again.url!, retries: 0 }).status()) as Status &
      StatusMore;
    const againPort = Number(new URL(againStatus.redis.target).port);
    expect(await portOpen(againPort)).toBe(true);
    again.kill('SIGKILL');
    await waitFor('the second redis-server to end', () => !pidAlive(againRedis!.pid), { timeoutMs: 5_000 });
    expect(await portOpen(againPort)).toBe(false);
  }, 60_000);

  it('a SIGTERM during the start (the private redis-server spawned) still stops it and exits 0', async () => {
    // Ctrl-C or a service manager's stop right after `npm start`: the private redis-server runs
    // before the API listens. Killed by the signal, the process would leave it running on
    // DATA_DIR, where the next start would run a second one on the same AOF.
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-main-early-'));
    dirs.push(dataDir);
    const sb = await startProcess({ roles: ALL_ROLES, env: { DATA_DIR: dataDir }, waitReady: false });
    let redisChild: { pid: number } | undefined;
    await waitFor(
      'the private redis-server to be spawned',
      () => {
        redisChild = childProcesses(sb.pid).find((c) => c.comm.startsWith('redis-server'));
        return redisChild !== undefined;
      },
      { timeoutMs: 20_000, everyMs: 5 },
    );
    strays.add(redisChild!.pid);
    sb.kill('SIGTERM');
    expect(await sb.exited, sb.logText()).toBe(0);
    await waitFor('the private redis-server to end', () => !pidAlive(redisChild!.pid), { timeoutMs: 5_000 });
  }, 40_000);

  it('on SIGHUP (its terminal closed) stops as on SIGTERM: exit 0, the private redis-server stopped', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-main-hup-'));
    dirs.push(dataDir);
    const sb = await startProcess({ roles: ALL_ROLES, env: { DATA_DIR: dataDir } });
    const redisChild = childProcesses(sb.pid).find((c) => c.comm.startsWith('redis-server'));
    expect(redisChild, `a redis-server child of ${sb.pid}`).toBeDefined();
    strays.add(redisChild!.pid);
    sb.kill('SIGHUP');
    expect(await sb.exited, sb.logText()).toBe(0);
    await waitFor('the private redis-server to end', () => !pidAlive(redisChild!.pid), { timeoutMs: 5_000 });
  }, 40_000);

  it('on SIGTERM closes live WebSockets with 1001 and still exits 0', async () => {
    const redis = await startTestRedis();
    try {
      const sb = await startProcess({ roles: ['api'], redis });
      const socket = new WebSocket(`${sb.url!.replace('http', 'ws')}/v1/workspaces/default/events/live`);
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
      );
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      });
      const client = new SwitchboardClient({ url: sb.url!, retries: 0 });
      await waitFor(
        'the subscriber to be registered',
        async () => ((await client.status()) as Status & StatusMore).subscribers === 1,
      );

      const exit = sb.stop();
      const close = await closed;
      expect(close.code).toBe(1001);
      expect(close.reason).toMatch(/shutting down/);
      expect(await exit, sb.logText()).toBe(0);
    } finally {
      await redis.stop();
    }
  }, 30_000);

  it('on SIGTERM, an instance registered for the load balancer drains, then has SHUTDOWN_TIMEOUT_MS: exit 0', async () => {
    // The drain (LB_DRAIN_MS) is longer than SHUTDOWN_TIMEOUT_MS: the timeout counts after it.
    const redis = await startTestRedis();
    try {
      const sb = await startProcess({
        roles: ['api'],
        redis,
        env: { ADVERTISE_ADDRESS: 'auto', LB_DRAIN_MS: '1500', SHUTDOWN_TIMEOUT_MS: '1000' },
      });
      const began = Date.now();
      expect(await sb.stop(), sb.logText()).toBe(0);
      expect(Date.now() - began).toBeGreaterThanOrEqual(1400);
      expect(sb.logText()).not.toContain('shutdown took too long');
    } finally {
      await redis.stop();
    }
  }, 30_000);

  it('on SIGTERM while Redis does not answer, hands its leases back within SHUTDOWN_TIMEOUT_MS: exit 0', async () => {
    // Six workspaces, each with a dispatcher, an interval projection and an archiver lease: the
    // lease releases must not each wait out Redis's command timeout in turn.
    const redis = await startRedisServer({ appendonly: false });
    try {
      const workspaces = ['s1', 's2', 's3', 's4', 's5', 's6'];
      const sb = await startProcess({
        roles: 'projector,dispatcher,archiver',
        redisUrl: redis.url,
        env: { WORKSPACES: workspaces.join(','), DISCOVER_WORKSPACES: 'false', LOG_LEVEL: 'info' },
      });
      await waitFor(
        'every lease taken',
        () =>
          sb
            .logText()
            .split('\n')
            .filter((l) => l.includes('lease taken')).length >= 18,
        { timeoutMs: 15_000 },
      );
      redis.kill('SIGSTOP');
      try {
        expect(await sb.stop(20_000), sb.logText()).toBe(0);
        expect(sb.logText()).not.toContain('shutdown took too long');
      } finally {
        redis.kill('SIGCONT');
      }
    } finally {
      await redis.stop();
    }
  }, 60_000);

  it('exits 2 on bad configuration, naming every bad variable', async () => {
    const sb = await startProcess({
      roles: 'cook',
      env: { PORT: 'abc' },
      waitReady: false,
      name: 'bad-config',
    });
    expect(await sb.exited).toBe(2);
    const stderr = sb.logs.filter((l) => l.includes(' err] ')).join('\n');
    expect(stderr).toMatch(/PORT/);
    expect(stderr).toMatch(/abc/);
    expect(stderr).toMatch(/ROLES/);
    expect(stderr).toMatch(/cook/);
  }, 30_000);

  it('reports paused with a reason while Redis does not answer, and running again by itself', async () => {
    const redis = await startRedisServer({ appendonly: false });
    try {
      const sb = await startProcess({ roles: ['api'], redisUrl: redis.url });
      // No retries: each call is one request (a 503 is the answer asserted), waiting up to 20 s.
      const client = new SwitchboardClient({ url: sb.url!, retries: 0, timeoutMs: 20_000 });
      const status = () => client.status();
      expect((await status()).state).toBe('running');

      redis.kill('SIGSTOP');
      const frozenAt = Date.now();
      const paused = await waitFor(
        'state paused',
        async () => {
          const s = await status();
          return s.state === 'paused' ? s : undefined;
        },
        { timeoutMs: 10_000 },
      );
      const pausedAfterMs = Date.now() - frozenAt;
      expect(paused.reason).toMatch(/Redis/);
      expect(paused.reason).toContain(String(redis.port));
      expect((await failure(client.health())).status).toBe(503);

      // A command sent while Redis is frozen fails fast with 503 instead of hanging...
      const sentAt = Date.now();
      const during = await failure(
        client.registerAgent({ id: 'during-pause', skills: ['English'] }, { idempotencyKey: 'during-pause' }),
      );
      expect(during.status).toBe(503);
      expect(during.type).toBe('/problems/redis-unavailable');
      expect(Date.now() - sentAt).toBeLessThan(4000);

      redis.kill('SIGCONT');
      const resumedAt = Date.now();
      await waitFor('state running', async () => (await status()).state === 'running', { timeoutMs: 10_000 });
      const runningAfterMs = Date.now() - resumedAt;
      expect(await client.health()).toEqual({ status: 'ok' });
      // ...and the retry with the same Idempotency-Key lands exactly once. No projector runs in
      // this process, so the outcome is not known in time: 202, durable.
      const retry = await client.registerAgent(
        { id: 'during-pause', skills: ['English'] },
        { idempotencyKey: 'during-pause' },
      );
      expect([201, 202]).toContain(retry.status);
      const check = new Redis(redis.url);
      try {
        const entries = await check.xrange('sb:{default}:commands', '-', '+');
        expect(entries.filter(([, f]) => f.includes('during-pause')).length).toBe(1);
      } finally {
        check.disconnect();
      }
      console.log(JSON.stringify({ suite: 'main-command', pausedAfterMs, runningAfterMs }));
      expect(await sb.stop(), sb.logText()).toBe(0);
    } finally {
      await redis.stop();
    }
  }, 40_000);
});
