/**
 * The simulator's settings applied while the projections lag: PUT /settings answered 202 (not
 * applied within the command's wait) and its read-back (GET /settings?minPosition=) 503
 * position-not-reached, which the simulator took for a fatal error and ended the run before it
 * began (exit 1). The reads are retried as commands are: the run goes on once they are applied.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { Simulator } from '../../src/cli/sim/simulator.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { simOptions } from './sim-support.ts';

const WS = `sim-settings-${Date.now()}`;
let redis: TestRedis;
const running: Running[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  for (const r of running) await r.stop();
  await redis?.stop();
});

const start = async (env: Record<string, string>) => {
  const config = loadConfig({
    AUTH: 'off',
    REDIS_URL: redis.url,
    LOG_LEVEL: 'silent',
    WORKSPACES: WS,
    ...env,
  });
  const r = await startSwitchboard(config, pino({ level: 'silent' }));
  running.push(r);
  return r;
};

describe('simulate: settings applied while the projections lag', () => {
  it('retries the read-back that answered 503 position-not-reached, and runs with the settings asked', async () => {
    // An API alone: nothing applies the PUT until the projector starts, 1.2 s into the run (past
    // the command's wait and the read's, 300 ms each).
    const api = await start({ ROLES: 'api', PORT: '0', COMMAND_TIMEOUT_MS: '300', QUERY_TIMEOUT_MS: '300' });
    const sim = new Simulator(
      simOptions({
        url: api.url!,
        workspace: WS,
        agents: 1,
        contacts: 1,
        rate: 10,
        patienceS: 1,
        maxSeconds: 8,
        settings: { wrapUpMs: 100 },
      }),
    );
    const projector = new Promise<void>((resolve, reject) =>
      setTimeout(() => start({ ROLES: 'projector,dispatcher' }).then(() => resolve(), reject), 1200),
    );
    const s = await sim.run();
    await projector;
    await sim.cleanup();
    expect(s.settings.wrapUpMs).toBe(100);
    expect(s.retries).toBeGreaterThan(0);
    expect(s.errors, JSON.stringify(s.errorsByStatus)).toBe(0);
  });
});
