/**
 * An API instance without worker roles reports the workspaces of the registry (those with a
 * command in the last hour). While Redis does not answer, that registry cannot be read either: the
 * scrape still names the workspaces it reported before, as `switchboard_workspace_up 0`, rather
 * than dropping every workspace series (the "Redis does not answer the scrapes" alert and the
 * dashboard's workspace list read that series). And an API instance started while Redis does not
 * answer starts, and registers for the load balancer once it does. Redis stopped (SIGSTOP,
 * test/support/freeze.ts) until the test has seen what it checks: single target.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveInstances } from '../../src/adapters/redis/instance-registry.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { freezeRedis } from '../support/freeze.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'metrics-api-only-paused';
let redis: TestRedis;
let sb: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSwitchboard(
    loadConfig({ ...redis.env, ROLES: 'api', AUTH: 'off', PORT: '0', COMMAND_TIMEOUT_MS: '200' }),
    pino({ level: 'silent' }),
  );
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

const upLines = async () =>
  (await sb.api!.inject({ url: '/metrics' })).body
    .split('\n')
    .filter((l) => l.startsWith('switchboard_workspace_up{'));

describe('an API-only instance scraped while Redis does not answer', () => {
  it('reports the workspaces it reported before as not up', async () => {
    // A command registers the workspace (no projector here: answered 202).
    const sent = await sb.api!.inject({
      method: 'POST',
      url: `/v1/workspaces/${WS}/agents`,
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ id: 'a1', skills: ['English'] }),
    });
    expect(sent.statusCode).toBe(202);
    expect(await upLines()).toEqual([`switchboard_workspace_up{workspace="${WS}"} 1`]);
    const admin = redis.adminClient();
    const frozen = await freezeRedis(admin, { atMostMs: 4000 });
    try {
      expect(await upLines()).toEqual([`switchboard_workspace_up{workspace="${WS}"} 0`]);
    } finally {
      await frozen.thaw();
      admin.disconnect();
    }
    await waitFor('the workspace up again', async () => (await upLines())[0]?.endsWith(' 1'));
  });

  it('starts while Redis does not answer, and registers for the load balancer once it does', async () => {
    // Started during a Redis failover: it starts paused, as it does without ADVERTISE_ADDRESS,
    // rather than failing on its first heartbeat; HAProxy adds it once the heartbeat lands.
    const admin = redis.adminClient();
    let other: Running | undefined;
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l));
        done();
      },
    });
    // Until the start has returned: it waits for its first heartbeat, which gets no answer.
    const frozen = await freezeRedis(admin, { atMostMs: 8000 });
    let thawedAt = Number.POSITIVE_INFINITY;
    try {
      other = await startSwitchboard(
        loadConfig({
          ...redis.env,
          ROLES: 'api',
          AUTH: 'off',
          HOST: '127.0.0.1',
          PORT: '0',
          ADVERTISE_ADDRESS: 'auto',
          LB_DRAIN_MS: '0',
        }),
        pino({ level: 'info' }, sink),
      );
      thawedAt = Date.now();
      await frozen.thaw();
      const port = Number(new URL(other.url!).port);
      await waitFor(
        'the instance in the registry',
        async () => (await liveInstances(sb.redis)).some((i) => i.port === port),
        { timeoutMs: 8000 },
      );
      await waitFor('the registration logged', () =>
        lines.some((l) => l.msg === 'registered for the load balancer'),
      );
      // Its first heartbeat failed: that is said, with what to do, and the registration is logged
      // once, when a heartbeat landed (no command is answered while Redis is stopped).
      const failed = lines.findIndex((l) =>
        String(l.msg).startsWith('not registered for the load balancer yet'),
      );
      const registered = lines.filter((l) => l.msg === 'registered for the load balancer');
      expect(failed, JSON.stringify(lines)).toBeGreaterThanOrEqual(0);
      expect(lines[failed]).toMatchObject({ level: 40, instance: { port } });
      expect(String(lines[failed]!.msg)).toContain('REDIS_URL');
      expect(registered).toHaveLength(1);
      expect(lines.indexOf(registered[0]!)).toBeGreaterThan(failed);
      expect(registered[0]!.time as number).toBeGreaterThanOrEqual(thawedAt);
    } finally {
      await frozen.thaw();
      admin.disconnect();
      await other?.stop();
    }
  });
});
