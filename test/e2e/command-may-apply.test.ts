/**
 * A command whose append Redis did not answer in time: the request is answered 503
 * redis-unavailable, yet the append was sent and Redis runs it once it goes on, so the command may
 * have been applied. The detail said only "Redis is not reachable right now; retry with the same
 * Idempotency-Key": a client that sent no key and retried (`POST /contacts` without an `id`)
 * made the contact twice. It says now that the command may have been applied, as the 502 and 504
 * of HAProxy do, and what to do without a key. A read's 503 keeps its "nothing was read".
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { freezeRedis } from '../support/freeze.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'command-may-apply';
const B = `/v1/workspaces/${WS}`;

describe('a command Redis did not answer in time', () => {
  let redis: TestRedis;
  let running: Running;

  beforeAll(async () => {
    redis = await startTestRedis();
    running = await startSwitchboard(
      loadConfig({ AUTH: 'off', ...redis.env, PORT: '0', LOG_LEVEL: 'silent', WORKSPACES: WS }),
      pino({ level: 'silent' }),
    );
    await projectorReady(running.redis, [WS]);
  });

  afterAll(async () => {
    await running?.stop();
    await redis?.stop();
  });

  it('is answered 503 saying it may have been applied, and it was once Redis went on', async () => {
    const admin = redis.adminClient();
    try {
      await admin.ping();
      // The workspace in use on this instance (its tail started), as in a running deployment.
      const first = await running.api!.inject({
        method: 'POST',
        url: `${B}/contacts`,
        payload: { id: 'c0', skills: ['s'] },
      });
      expect(first.statusCode, first.body).toBe(201);
      // Redis held still: the append's bytes wait in its socket, unanswered, until it goes on.
      const frozen = await freezeRedis(admin, { atMostMs: 15_000 });
      let res: Awaited<ReturnType<NonNullable<Running['api']>['inject']>>;
      try {
        res = await running.api!.inject({
          method: 'POST',
          url: `${B}/contacts`,
          payload: { id: 'c1', skills: ['s'] },
        });
      } finally {
        await frozen.thaw();
      }
      expect(res.statusCode, res.body).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      const body = res.json();
      expect(body).toMatchObject({ type: '/problems/redis-unavailable', status: 503 });
      expect(body.detail).toMatch(/may have been applied/);
      expect(body.detail).toMatch(/Idempotency-Key/);
      // It was: the contact is there, queued, once Redis went on.
      const c = await waitFor(
        'the contact applied',
        async () => {
          const r = await running.api!.inject({ method: 'GET', url: `${B}/contacts/c1` });
          return r.statusCode === 200 ? r.json() : undefined;
        },
        { timeoutMs: 10_000, everyMs: 100 },
      );
      expect(c).toMatchObject({ id: 'c1', state: 'queued' });
    } finally {
      admin.disconnect();
    }
  }, 60_000);
});
