/**
 * An API instance whose Redis goes away, checked by load balancers (HAProxy's `/health` check,
 * every second per HAProxy): what the operator reads in its log at info. A user saw a warn line
 * for every check answered `503` (a `request` line of `/health`: sixty a minute per HAProxy for
 * as long as Redis is away, and again during every drain), while the heartbeat's own warnings are
 * said once every 30 s. Now: `/health`'s 503 is its answer to the balancer (debug); the pause is
 * said once at warn as it starts, with what to do, and once at info when Redis answers again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { freezeRedis } from '../support/freeze.ts';
import { capturedLogger } from '../support/log-capture.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

let redis: TestRedis;
let sb: Running;
const { logger, lines } = capturedLogger('info');

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSwitchboard(
    loadConfig({
      ...redis.env,
      AUTH: 'off',
      PORT: '0',
      ROLES: 'api',
      LB_DRAIN_MS: '0',
      WORKSPACES: 'logs-edges-3',
      DISCOVER_WORKSPACES: 'false',
    }),
    logger,
  );
}, 30_000);

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
}, 30_000);

const health = async () => (await sb.api!.inject({ url: '/health' })).statusCode;

describe("an API instance's Redis away while load balancers check it", () => {
  it('says the pause once at warn and its end once at info, not a line per check', async () => {
    await waitFor('/health 200', async () => (await health()) === 200, { timeoutMs: 10_000, everyMs: 100 });
    const from = lines.length;
    const admin = redis.adminClient();
    const frozen = await freezeRedis(admin, { atMostMs: 20_000 });
    try {
      await waitFor('/health 503', async () => (await health()) === 503, { timeoutMs: 10_000, everyMs: 100 });
      // Three seconds of checks, ten a second (a few HAProxies).
      for (let i = 0; i < 30; i++) {
        expect(await health()).toBe(503);
        await sleep(100);
      }
    } finally {
      await frozen.thaw();
      admin.disconnect();
    }
    await waitFor('/health 200 again', async () => (await health()) === 200, {
      timeoutMs: 10_000,
      everyMs: 100,
    });
    const seen = lines.slice(from);
    const checks = seen.filter((l) => l.msg === 'request' && l.url === '/health');
    expect(checks, JSON.stringify(checks.slice(0, 3))).toEqual([]);
    await waitFor(
      'the end of the pause said',
      () => lines.slice(from).some((l) => l.level === 30 && /Redis answers again/.test(String(l.msg))),
      {
        timeoutMs: 5000,
      },
    );
    const paused = seen.filter((l) => (l.level as number) >= 40 && /unreachable/.test(String(l.msg)));
    expect(paused, JSON.stringify(seen)).toHaveLength(1);
    expect(String(paused[0]!.msg)).toMatch(/check that Redis is up and reachable/i);
  }, 60_000);
});
