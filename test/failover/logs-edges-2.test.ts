/**
 * A Redis at its memory limit (maxmemory, noeviction) as the operator reads a running process's
 * log: the lease lines, the dispatcher's failed transaction (EXECABORT, the OOM inside it) and the
 * rate limit's counting each said "check
 * that Redis is up" (which answers, so it sends the operator to the wrong place); they now say to
 * raise maxmemory or free memory, as the projector's and the 503's lines do. A live subscriber
 * that fails on a batch says what its client missed and what to do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkspaceTail } from '../../src/adapters/redis/tail.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { capturedLogger } from '../support/log-capture.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = 'logs-edges-2';
let redis: TestRedis;
let sb: Running;
const { logger: log, lines } = capturedLogger('info');

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSwitchboard(
    loadConfig({
      ...redis.env,
      AUTH: 'off',
      PORT: '0',
      LB_DRAIN_MS: '0',
      WORKSPACES: WS,
      DISCOVER_WORKSPACES: 'false',
      COMMAND_TIMEOUT_MS: '1000',
      LEASE_TTL_MS: '1000',
    }),
    log,
  );
  await projectorReady(sb.redis, [WS]);
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

const send = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) =>
  sb.api!.inject({
    method,
    url: `/v1/workspaces/${WS}${url}`,
    ...(payload !== undefined
      ? { headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) }
      : {}),
  });

describe('warn lines of a Redis at its memory limit', () => {
  it('the leases, the dispatcher and the rate limit say to raise maxmemory or free memory', async () => {
    expect((await send('PUT', '/settings', { offerTimeoutMs: 1500 })).statusCode).toBe(200);
    expect((await send('POST', '/agents', { id: 'a1', skills: ['English'] })).statusCode).toBe(201);
    expect((await send('POST', '/agents/a1/state', { state: 'available' })).statusCode).toBe(200);
    expect((await send('POST', '/contacts', { id: 'c1', skills: ['English'] })).statusCode).toBe(201);
    await waitFor('the offer made', async () => {
      const c = JSON.parse((await send('GET', '/contacts/c1')).body) as { state: string };
      return c.state === 'offered' ? true : undefined;
    });
    const from = lines.length;
    const admin = redis.adminClient();
    try {
      await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
      await admin.call('CONFIG', 'SET', 'maxmemory', '1');
      // The offer falls due while Redis refuses writes: the dispatcher's step fails (a transaction
      // Redis aborts: EXECABORT, its OOM in the errors before it); the leases cannot be renewed; a
      // request cannot be counted.
      await send('GET', '/contacts/c1');
      const seen = (re: RegExp) => lines.slice(from).some((l) => re.test(String(l.msg)));
      await waitFor(
        'the lease, clock step and rate limit lines',
        () =>
          seen(/registry; keeping leases/) && seen(/let through uncounted/) && seen(/^workspace loop failed/)
            ? true
            : undefined,
        { timeoutMs: 8000 },
      );
    } finally {
      await admin.call('CONFIG', 'SET', 'maxmemory', '0');
      admin.disconnect();
    }
    const loud = lines.slice(from).filter((l) => Number(l.level) >= 40 && l.msg !== 'request');
    expect(
      loud
        .filter(
          (l) => /OOM|EXECABORT/.test(String(l.err)) && !/raise maxmemory or free memory/.test(String(l.msg)),
        )
        .map((l) => l.msg),
      'warn lines about an OOM refusal that do not say to raise maxmemory or free memory',
    ).toEqual([]);
    expect(loud.filter((l) => /check that redis is up/i.test(String(l.msg))).map((l) => l.msg)).toEqual([]);
  }, 25_000);

  it('a live subscriber that fails on a batch: what its client missed, and what to do', async () => {
    const tail = new WorkspaceTail(sb.redis, WS, log);
    const from = lines.length;
    tail.subscribeBatches(() => {
      throw new Error('boom');
    });
    try {
      await tail.ready;
      await sleep(200);
      expect((await send('POST', '/contacts', { id: 'c2', skills: ['English'] })).statusCode).toBe(201);
      const line = await waitFor('the failed batch line', () =>
        lines.slice(from).find((l) => String(l.msg).startsWith('live subscriber failed on a batch')),
      );
      expect(line.msg).toMatch(/missed/);
      expect(line.msg).toMatch(/reconnecting with after=/);
      expect(line.from).toMatch(/^\d+-\d+$/);
    } finally {
      tail.stop();
    }
  });
});
