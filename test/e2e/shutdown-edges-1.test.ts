/**
 * A stop that cannot finish its work. (1) SIGTERM while Redis is unreachable (refused, or silent):
 * the workers' last commands (the end of a step, their leases handed back, QUIT) each waited out
 * the 2 s command timeout in turn, about 7 s in all, so a SHUTDOWN_TIMEOUT_MS of 4 s ended in
 * `shutdown took too long` and exit 1; now the connection is closed once Redis is seen
 * unreachable (its connection lost, or two checks in a row unanswered), the stop ends within a few
 * seconds, exit 0, and the last lines say the leases lapse rather than being handed back; so does a
 * SIGTERM during the start with Redis silent from the first, which was forced at 5 s (exit 1). A
 * Redis that stalls past one check and answers the next is waited for: the leases are handed back
 * (a stop that gave up at the first unanswered check let them lapse). (2) A stop forced by SHUTDOWN_TIMEOUT_MS with a private
 * redis-server: the server was killed, but its private-redis.json (where the tools look for it)
 * stayed, where a second signal's exit removes it.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { type RedisServerHandle, startRedisServer } from '../../src/topology/redis-server.ts';
import {
  childProcesses,
  killAllProcesses,
  pidAlive,
  StrayProcesses,
  startProcess,
} from '../support/processes.ts';
import { sleep, waitFor } from '../support/wait.ts';

const servers: RedisServerHandle[] = [];
const strays = new StrayProcesses();
const dirs: string[] = [];

afterAll(async () => {
  await killAllProcesses();
  strays.killAll();
  for (const s of servers) {
    s.kill('SIGCONT');
    await s.stop();
  }
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('a stop whose work cannot finish', () => {
  for (const [how, signal] of [
    ['refused (killed)', 'SIGKILL'],
    ['silent (frozen)', 'SIGSTOP'],
  ] as const) {
    it(`with Redis ${how}, the workers stop within SHUTDOWN_TIMEOUT_MS: exit 0, saying its leases lapse`, async () => {
      const redis = await startRedisServer({ appendonly: false });
      servers.push(redis);
      const sb = await startProcess({
        roles: 'projector,dispatcher,archiver',
        redisUrl: redis.url,
        env: {
          WORKSPACES: 'shutdown-edges',
          DISCOVER_WORKSPACES: 'false',
          SHUTDOWN_TIMEOUT_MS: '6000',
          LOG_LEVEL: 'info',
        },
      });
      await waitFor('the leases taken', () => sb.logText().includes('lease taken'), { timeoutMs: 10_000 });
      redis.kill(signal);
      await sleep(300);
      const began = Date.now();
      expect(await sb.stop(15_000), sb.logText()).toBe(0);
      expect(Date.now() - began, sb.logText()).toBeLessThan(6_000);
      expect(sb.logText()).not.toContain('shutdown took too long');
      expect(sb.logText()).toContain('lease of this process is not handed back');
    }, 30_000);
  }

  it('with Redis stalled past one check and answering the next, the stop waits for it and hands its leases back', async () => {
    const redis = await startRedisServer({ appendonly: false });
    servers.push(redis);
    const sb = await startProcess({
      roles: 'projector,dispatcher,archiver',
      redisUrl: redis.url,
      env: {
        WORKSPACES: 'shutdown-stall',
        DISCOVER_WORKSPACES: 'false',
        SHUTDOWN_TIMEOUT_MS: '8000',
        LOG_LEVEL: 'info',
      },
    });
    await waitFor('the leases taken', () => sb.logText().includes('lease taken'), { timeoutMs: 10_000 });
    const client = new Redis(redis.url);
    const k = workspaceKeys('shutdown-stall');
    expect(await client.exists(k.lease, k.archiverLease)).toBe(2);
    // A stall (a fork, a long command) that one check (1 s timeout, one a second) cannot miss,
    // then Redis answers: the check after it (at least 2 s after the failed one began) is answered.
    redis.kill('SIGSTOP');
    sb.kill('SIGTERM');
    await sleep(2_200);
    redis.kill('SIGCONT');
    expect(await sb.exited, sb.logText()).toBe(0);
    expect(sb.logText()).not.toContain('not handed back');
    expect(await client.exists(k.lease, k.archiverLease), 'the leases handed back').toBe(0);
    client.disconnect();
  }, 30_000);

  it('a SIGTERM during the start, Redis silent from the first (the admin key, the leases waiting on it): exit 0 within SHUTDOWN_TIMEOUT_MS', async () => {
    const redis = await startRedisServer({ appendonly: false });
    servers.push(redis);
    redis.kill('SIGSTOP');
    const sb = await startProcess({
      roles: 'api,projector,dispatcher,archiver',
      redisUrl: redis.url,
      waitReady: false,
      env: { AUTH: 'on', SHUTDOWN_TIMEOUT_MS: '7000', LOG_LEVEL: 'info' },
    });
    // Signalled once the start is under way (its first line: the signals are heard by then), not
    // at a fixed time, which a loaded machine's module load outlasted (killed by the signal).
    await waitFor('the start under way', () => sb.logText().includes('"level"'), { timeoutMs: 15_000 });
    await sleep(500);
    expect(await sb.stop(15_000), sb.logText()).toBe(0);
    expect(sb.logText()).not.toContain('shutdown took too long');
    expect(sb.logText()).toContain('lease of this process is not handed back');
  }, 30_000);

  it('a stop forced by SHUTDOWN_TIMEOUT_MS takes its private redis-server and its private-redis.json along: exit 1', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-shutdown-edges-'));
    dirs.push(dataDir);
    const sb = await startProcess({
      roles: 'dispatcher',
      env: { DATA_DIR: dataDir, SHUTDOWN_TIMEOUT_MS: '300', LOG_LEVEL: 'info' },
    });
    const server = childProcesses(sb.pid).find((c) => c.comm.startsWith('redis-server'));
    expect(server, `a redis-server child of ${sb.pid}`).toBeDefined();
    strays.add(server!.pid);
    expect(existsSync(path.join(dataDir, 'private-redis.json'))).toBe(true);
    // Frozen: no command of the stop is answered before the 300 ms are up.
    process.kill(server!.pid, 'SIGSTOP');
    sb.kill('SIGTERM');
    expect(await sb.exited, sb.logText()).toBe(1);
    expect(sb.logText()).toContain('shutdown took too long');
    await waitFor('the private redis-server to end', () => !pidAlive(server!.pid), { timeoutMs: 2_000 });
    expect(existsSync(path.join(dataDir, 'private-redis.json')), sb.logText()).toBe(false);
  }, 30_000);
});
