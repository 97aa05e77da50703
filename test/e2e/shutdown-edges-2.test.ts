/**
 * An API instance's stop with Redis frozen. The stop gave up on Redis (its leases lapse, exit 0)
 * only after the API part had ended: leaving the registry, then the server's close, whose last
 * hooks hand the live sockets' WS_MAX_PER_KEY slots back and QUIT the counting connection, each
 * waiting out the 2 s command timeout first, so an instance with live subscribers took far longer
 * than a worker to stop. Now the same give-up (Redis lost, or two checks in a row unanswered) cuts
 * those waits too: the stop ends within a few seconds, exit 0, the subscribers closed with 1001,
 * and the log says the slots are not handed back but lapse. A wait given up on did cut the client
 * at once, so a Redis that answered again during the load balancer's drain served none of the
 * requests still arriving: the client is cut only once the stop is done.
 */

import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type RedisServerHandle, startRedisServer } from '../../src/topology/redis-server.ts';
import { openLiveSocket } from '../support/live-open.ts';
import { killAllProcesses, startProcess } from '../support/processes.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = 'shutdown-edges-2';
const servers: RedisServerHandle[] = [];

afterAll(async () => {
  await killAllProcesses();
  for (const s of servers) {
    s.kill('SIGCONT');
    await s.stop();
  }
});

describe('an API instance stopping with Redis frozen', () => {
  it('with live subscribers under WS_MAX_PER_KEY and a registration: exit 0 within a few seconds, sockets closed 1001', async () => {
    const redis = await startRedisServer({ appendonly: false });
    servers.push(redis);
    const sb = await startProcess({
      roles: 'api',
      redisUrl: redis.url,
      env: {
        WORKSPACES: WS,
        DISCOVER_WORKSPACES: 'false',
        WS_MAX_PER_KEY: '10',
        ADVERTISE_ADDRESS: 'auto',
        LB_DRAIN_MS: '0',
        SHUTDOWN_TIMEOUT_MS: '6000',
        LOG_LEVEL: 'info',
      },
    });
    await waitFor('registered', () => sb.logText().includes('registered for the load balancer'), {
      timeoutMs: 10_000,
    });
    const codes: number[] = [];
    const sockets: WebSocket[] = [];
    for (let i = 0; i < 3; i++) {
      const opened = await openLiveSocket(sb.url!, `/v1/workspaces/${WS}/events/live`);
      if (!('socket' in opened)) throw new Error(`refused: ${opened.status} ${opened.body}`);
      opened.socket.on('close', (code) => codes.push(code));
      opened.socket.on('error', () => {});
      sockets.push(opened.socket);
    }
    redis.kill('SIGSTOP');
    await sleep(300);
    const began = Date.now();
    expect(await sb.stop(20_000), sb.logText()).toBe(0);
    const took = Date.now() - began;
    expect(took, sb.logText()).toBeLessThan(6_000);
    expect(sb.logText()).not.toContain('shutdown took too long');
    await waitFor('the sockets closed', () => codes.length === sockets.length, { timeoutMs: 2_000 });
    expect(codes).toEqual([1001, 1001, 1001]);
    expect(sb.logText()).toContain('socket slots of this process are not handed back');
    // While stopping, the pause does not clear by itself: its lines do not say it will.
    const stopping = sb.logText().slice(sb.logText().indexOf('shutting down'));
    expect(stopping).toContain('Redis is unreachable while stopping');
    expect(stopping).not.toContain('clears by itself');
    for (const s of sockets) if (s.readyState !== WebSocket.CLOSED) s.terminate();
  }, 40_000);

  it('a Redis that answers again during the drain still serves it: the client is cut only once the stop is done', async () => {
    const redis = await startRedisServer({ appendonly: false });
    servers.push(redis);
    const ws = `${WS}-back`;
    const sb = await startProcess({
      roles: 'api,projector',
      redisUrl: redis.url,
      env: {
        WORKSPACES: ws,
        DISCOVER_WORKSPACES: 'false',
        ADVERTISE_ADDRESS: 'auto',
        LB_DRAIN_MS: '6000',
        SHUTDOWN_TIMEOUT_MS: '10000',
        LOG_LEVEL: 'info',
      },
    });
    await waitFor('registered', () => sb.logText().includes('registered for the load balancer'), {
      timeoutMs: 10_000,
    });
    // Frozen past two checks before the stop: leaving the registry is given up on at once, then
    // the drain serves on while Redis answers again.
    redis.kill('SIGSTOP');
    await waitFor('the pause', () => sb.logText().includes('paused: Redis is unreachable'), {
      timeoutMs: 10_000,
    });
    await sleep(2_500);
    sb.kill('SIGTERM');
    await waitFor('the stop to give up on Redis', () => sb.logText().includes('not waiting for it'), {
      timeoutMs: 10_000,
    });
    redis.kill('SIGCONT');
    let status = 0;
    let body = '';
    let tries = 0;
    await waitFor(
      'a command answered during the drain',
      async () => {
        const res = await fetch(`${sb.url}/v1/workspaces/${ws}/agents`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ id: `a${++tries}`, skills: ['x'] }),
        }).catch(() => undefined);
        status = res?.status ?? 0;
        body = (await res?.text()) ?? '';
        return status === 201;
      },
      { timeoutMs: 4_000, everyMs: 200 },
    ).catch(() => {});
    expect(status, `${body}\n${sb.logText()}`).toBe(201);
    expect(await sb.exited, sb.logText()).toBe(0);
  }, 40_000);
});
