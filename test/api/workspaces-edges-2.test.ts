/**
 * A process serving dozens of workspaces, one of them damaged (its Redis keys of the wrong type,
 * before the process starts): it starts, and the others are served (commands applied, contacts
 * routed, their /metrics figures read), while the damaged one answers a documented problem.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const GOOD = Array.from({ length: 30 }, (_, i) => `ws${i}`);
const BROKEN = 'broken';

let redis: TestRedis;
let running: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  const admin = redis.adminClient();
  const k = workspaceKeys(BROKEN);
  for (const key of [k.commands, k.events, k.meta, k.wake, k.stats, k.timers, k.intervals, k.lease])
    await admin.set(key, 'damaged');
  await admin.hset(k.archiverLease, 'x', 'y');
  admin.disconnect();
  const config = loadConfig({
    AUTH: 'off',
    ...redis.env,
    PORT: '0',
    LOG_LEVEL: 'silent',
    COMMAND_TIMEOUT_MS: '1000',
    LB_DRAIN_MS: '0',
    WORKSPACES: [BROKEN, ...GOOD].join(','),
    DISCOVER_WORKSPACES: 'false',
  });
  running = await startSwitchboard(config, pino({ level: 'silent' }));
}, 30_000);

afterAll(async () => {
  await running?.stop();
  await redis?.stop();
});

async function call(method: 'GET' | 'POST', url: string, payload?: unknown) {
  const res = await running.api!.inject({ method, url, ...(payload ? { payload: payload as object } : {}) });
  return { status: res.statusCode, body: res.body };
}

describe('dozens of workspaces, one with damaged keys', () => {
  it('serves the others', async () => {
    await Promise.all(
      GOOD.map(async (ws) => {
        const base = `/v1/workspaces/${ws}`;
        const posts: [string, unknown][] = [
          ['/agents', { id: 'ann', skills: ['x'] }],
          ['/agents/ann/state', { state: 'available' }],
          ['/contacts', { id: 'c1', skills: ['x'] }],
        ];
        for (const [path, body] of posts) {
          const r = await call('POST', `${base}${path}`, body);
          expect(r.status, `${ws} ${path}: ${r.body}`).toBeLessThan(300);
        }
        await waitFor(
          `${ws}'s contact assigned`,
          async () => JSON.parse((await call('GET', `${base}/contacts/c1`)).body).state === 'assigned',
          { timeoutMs: 5000, everyMs: 20 },
        );
      }),
    );
    const broken = await call('POST', `/v1/workspaces/${BROKEN}/agents`, { id: 'ann', skills: ['x'] });
    expect(broken.status, broken.body).toBeGreaterThanOrEqual(500);
    expect(JSON.parse(broken.body).type, broken.body).toMatch(/^\/problems\//);
    const metrics = await call('GET', '/metrics');
    expect(metrics.status).toBe(200);
    for (const ws of GOOD) expect(metrics.body).toContain(`switchboard_workspace_up{workspace="${ws}"} 1`);
    expect(metrics.body).toContain(`switchboard_workspace_up{workspace="${BROKEN}"} 0`);
    expect((await call('GET', '/health')).status).toBe(200);
    const status = await call('GET', '/status');
    expect(status.status, status.body).toBe(200);
  }, 20_000);
});
