/**
 * With the projector role in the API's process, the commands a tick appends are applied by a
 * projector step sent right behind them: outcomes as before, applied once, counted by the
 * projector; and only for the workspaces this process's projector serves, so another workspace's
 * commands stay unapplied until a projector serves it. A real Switchboard on a real Redis.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appliedPosition } from '../../src/adapters/redis/projection-reads.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

const SERVED = 'api-soon-served';
const OTHER = 'api-soon-other';
const log = pino({ level: 'silent' });
let redis: TestRedis;
let running: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  running = await startSwitchboard(
    loadConfig({
      AUTH: 'off',
      ...redis.env,
      PORT: '0',
      LOG_LEVEL: 'silent',
      ROLES: 'api,projector',
      WORKSPACES: SERVED,
      DISCOVER_WORKSPACES: 'false',
      COMMAND_TIMEOUT_MS: '400',
    }),
    log,
  );
  await projectorReady(running.redis, [SERVED]);
});

afterAll(async () => {
  await running?.stop();
  await redis?.stop();
});

const post = (ws: string, id: string) =>
  running.api!.inject({
    method: 'POST',
    url: `/v1/workspaces/${ws}/contacts`,
    payload: { id, skills: ['k'] },
  });

describe('the projector step behind the appends', () => {
  it('applies the commands of a served workspace, each once, with their outcomes', async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => post(SERVED, `c${i}`)));
    expect(answers.map((a) => a.statusCode)).toEqual(Array(30).fill(201));
    expect(new Set(answers.map((a) => (a.json() as { position: string }).position)).size).toBe(30);
    const again = await post(SERVED, 'c0');
    expect(again.statusCode).toBe(409);
    const status = (await running.api!.inject({ method: 'GET', url: '/status' })).json() as {
      projectorApplied: number;
    };
    expect(status.projectorApplied).toBe(31);
  });

  it('leaves the commands of a workspace no projector here serves to the one that serves it', async () => {
    const answer = await post(OTHER, 'x1');
    expect(answer.statusCode).toBe(202);
    expect(await appliedPosition(running.redis, OTHER)).toBe('0-0');
  });
});
