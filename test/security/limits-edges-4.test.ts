/**
 * After a count that failed (Redis not answering it within a second), the limits stop counting for
 * a second, so that requests do not each wait for Redis's trouble. That second was measured with
 * Date.now(): a host clock stepped back 60 s right after a failed count (an NTP step, a VM
 * resumed) turned the rate limit and the per-key WebSocket cap off for about 60 s. It is measured
 * by the monotonic clock now (docs/DEPLOYMENT.md, "Hosts' clocks": a host clock step moves no
 * timer). One count is made to fail with CLIENT PAUSE WRITE (the count is a write; the request's
 * reads go on), the process's Date.now is stepped back 60 s, and once the pause and the second
 * after it are over, requests past the limit are 429 again. Also: the order of the URL check and
 * authentication that src/adapters/http/limits.ts and docs/SECURITY.md ("Limits") describe.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { capturedLogger } from '../support/log-capture.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { bearer, keyOf } from './harness.ts';

const WS = 'limits-clock-step';
const PAUSE_MS = 1500;

let redis: TestRedis;
let sb: Running;
const { logger, lines } = capturedLogger('warn');

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSwitchboard(
    loadConfig({
      ...redis.env,
      PORT: '0',
      ROLES: 'api',
      WORKSPACES: WS,
      DISCOVER_WORKSPACES: 'false',
      AUTH: 'on',
      RATE_LIMIT: '1',
      RATE_LIMIT_BURST: '2',
      LB_DRAIN_MS: '0',
    }),
    logger,
  );
});

afterAll(async () => {
  vi.restoreAllMocks();
  await sb?.stop();
  await redis?.stop();
});

describe('the pause after a failed count, with the host clock stepped back', () => {
  it('lasts a second of the monotonic clock: requests past the limit are 429 again after it', async () => {
    await waitFor('the instance to see Redis', async () => (await fetch(`${sb.url}/health`)).status === 200);
    const headers = bearer((await keyOf(sb.redis, WS, 'supervisor')).key);
    const get = async () => {
      const res = await sb.api!.inject({ method: 'GET', url: `/v1/workspaces/${WS}/agents`, headers });
      return { status: res.statusCode, body: res.json() as { type?: string } };
    };
    const notCounted = () => lines.filter((l) => String(l.msg).startsWith('rate limit not counted'));

    const admin = redis.adminClient();
    try {
      // The count (a Lua step that writes) waits out the pause past its 1 s: it fails, and the
      // request goes on uncounted (its reads are not paused).
      await admin.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'WRITE');
      const during = await get();
      expect(during.status, JSON.stringify(during.body)).toBe(200);
      expect(notCounted().length, 'the count failed').toBeGreaterThanOrEqual(1);

      // The host's clock steps back a minute, right after the failure.
      const realNow = Date.now.bind(Date);
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 60_000);
      try {
        // The pause over (1.5 s from its start), and a second since the failed count.
        await sleep(PAUSE_MS);
        const statuses: number[] = [];
        for (let i = 0; i < 6; i++) {
          const r = await get();
          statuses.push(r.status);
          if (r.status !== 200) expect(r.body.type, JSON.stringify(r.body)).toBe('/problems/rate-limited');
        }
        // RATE_LIMIT=1/s with a burst of 2: of six requests at once, the third on are past it (two
        // at least, should a loaded machine take a second over them). Uncounted, all six were 200.
        expect(
          statuses.filter((s) => s === 429).length,
          `statuses ${statuses.join(', ')}`,
        ).toBeGreaterThanOrEqual(2);
      } finally {
        vi.restoreAllMocks();
      }
    } finally {
      admin.disconnect();
    }
  });

  it('the URL check comes after authentication: an over-long target is 414 once the key passes, 401 without one', async () => {
    const long = `?pad=${'a'.repeat(9000)}`;
    const headers = bearer((await keyOf(sb.redis, WS, 'supervisor')).key);
    const at = async (url: string, h: Record<string, string> = {}) => {
      const res = await sb.api!.inject({ method: 'GET', url, headers: h });
      return { status: res.statusCode, type: (res.json() as { type?: string }).type };
    };
    expect(await at(`/status${long}`)).toEqual({ status: 414, type: '/problems/uri-too-long' });
    expect(await at(`/v1/workspaces/${WS}/agents${long}`, headers)).toEqual({
      status: 414,
      type: '/problems/uri-too-long',
    });
    expect(await at(`/v1/workspaces/${WS}/agents${long}`)).toEqual({
      status: 401,
      type: '/problems/unauthorized',
    });
  });
});
