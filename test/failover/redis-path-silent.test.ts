/**
 * The path to Redis goes silent (a NAT or firewall forgets the connections, a VM moves): bytes stop
 * flowing and nothing is closed, so the kernel tells nobody for a quarter of an hour. Redis itself
 * is fine, and a new connection reaches it. Switchboard notices the silence on each of its
 * connections and makes new ones: commands answer 201 again, the dispatcher assigns, and the live
 * feed of an instance delivers again, within seconds.
 *
 * Single Redis only: the relay stands in front of one server (a cluster client learns the nodes'
 * own addresses).
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { type SilentRelay, silentRelay } from '../support/silent-relay.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'silent-path';

describe('a silent path to Redis', () => {
  let redis: TestRedis;
  let relay: SilentRelay;
  let sb: Running;

  beforeAll(async () => {
    redis = await startTestRedis();
    relay = await silentRelay(redis.port);
    const url = new URL(redis.url);
    url.port = String(relay.port);
    sb = await startSwitchboard(
      loadConfig({
        REDIS_URL: url.toString(),
        AUTH: 'off',
        PORT: '0',
        LOG_LEVEL: 'silent',
        WORKSPACES: WS,
        DISCOVER_WORKSPACES: 'false',
        LIVE_HEARTBEAT_MS: '1000',
      }),
      pino({ level: 'silent' }),
    );
    await projectorReady(sb.redis, [WS]);
  });

  afterAll(async () => {
    await sb?.stop();
    await relay?.close();
    await redis?.stop();
  });

  const post = (path: string, body: Record<string, unknown>) =>
    sb.api!.inject({
      method: 'POST',
      url: `/v1/workspaces/${WS}${path}`,
      payload: body,
      headers: { 'idempotency-key': `${path}-${JSON.stringify(body)}` },
    });

  it('commands, routing and the live feed come back on new connections within seconds', async () => {
    expect((await post('/agents', { id: 'ann', skills: ['x'] })).statusCode).toBe(201);
    const feed = new WebSocket(`${sb.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live`);
    const events: { type: string; data: { contactId?: string } }[] = [];
    feed.on('message', (m) => {
      const e = JSON.parse(String(m)) as { type?: string; data: { contactId?: string } };
      if (e.type) events.push(e as { type: string; data: { contactId?: string } });
    });
    await new Promise<void>((resolve, reject) => {
      feed.once('open', () => resolve());
      feed.once('error', reject);
    });
    try {
      expect((await post('/agents/ann/state', { state: 'available' })).statusCode).toBe(200);
      expect((await post('/contacts', { id: 'before', skills: ['x'] })).statusCode).toBe(201);
      await waitFor(
        'the first assignment on the feed',
        () => events.some((e) => e.type === 'AssignmentMade'),
        {
          timeoutMs: 10_000,
          everyMs: 20,
        },
      );
      expect((await post('/contacts/before/complete', {})).statusCode).toBe(200);
      await waitFor('the completion on the feed', () => events.some((e) => e.type === 'ContactCompleted'), {
        timeoutMs: 10_000,
        everyMs: 20,
      });

      const open = relay.open;
      expect(open).toBeGreaterThan(2);
      relay.silence();
      const silencedAt = Date.now();

      // A contact queued (201: applied and answered) once new connections are made.
      let queued = 0;
      await waitFor(
        'POST /contacts to answer 201 again',
        async () => {
          queued = (await post('/contacts', { id: 'after', skills: ['x'] })).statusCode;
          return queued === 201 || queued === 200;
        },
        { timeoutMs: 40_000, everyMs: 250 },
      );
      const commandsBackMs = Date.now() - silencedAt;
      await waitFor(
        "the contact's assignment on the same live feed",
        () => events.some((e) => e.type === 'AssignmentMade' && e.data.contactId === 'after'),
        { timeoutMs: 40_000, everyMs: 20 },
      );
      const feedBackMs = Date.now() - silencedAt;
      console.log(
        JSON.stringify({ suite: 'redis-path-silent', connections: open, commandsBackMs, feedBackMs }),
      );
      expect(commandsBackMs).toBeLessThan(20_000);
      expect(feedBackMs).toBeLessThan(25_000);
    } finally {
      feed.terminate();
    }
  }, 120_000);
});
