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
import { sleep } from '../support/wait.ts';
import { interceptRequests, isCreate, logged, simOptions } from './sim-support.ts';

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

describe('simulate: while the projections lag', () => {
  it('retries the read-back that answered 503 position-not-reached, and runs with the settings asked', async () => {
    // An API alone: nothing applies the PUT until the projector starts, 0.6 s after the PUT's 202
    // (past the read-back's first wait, 300 ms: it answers 503 position-not-reached).
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
    let projector: Promise<unknown> | undefined;
    interceptRequests(sim, async (method, path, send) => {
      const r = await send();
      if (method === 'PUT' && /\/settings$/.test(path) && r.status === 202)
        projector = sleep(600).then(() => start({ ROLES: 'projector,dispatcher' }));
      return r;
    });
    const s = await sim.run();
    expect(projector, 'PUT /settings answered 202').toBeDefined();
    await projector;
    await sim.cleanup();
    expect(s.settings.wrapUpMs).toBe(100);
    expect(s.retries).toBeGreaterThan(0);
    expect(s.errors, JSON.stringify(s.errorsByStatus)).toBe(0);
  });
  it("an abandon that went ahead of its contact's create and was answered 202 is sent again", async () => {
    const ws = `${WS}-abandon`;
    // An API alone for this workspace: every command answered 202 until the projector starts, 2 s
    // in. The create is held 1 s on its way, the customer's patience 0.2 s: the abandon is
    // appended first (refused once applied, with no event), the create after it.
    const api = await start({
      ROLES: 'api',
      PORT: '0',
      COMMAND_TIMEOUT_MS: '300',
      QUERY_TIMEOUT_MS: '300',
      WORKSPACES: ws,
    });
    const sim = new Simulator(
      simOptions({
        url: api.url!,
        workspace: ws,
        agents: 0,
        contacts: 1,
        rate: 10,
        patienceS: 0.2,
        maxSeconds: 6,
      }),
    );
    interceptRequests(sim, async (method, path, send) => {
      if (isCreate(method, path)) await sleep(1000);
      return send();
    });
    const projector = new Promise<void>((resolve, reject) =>
      setTimeout(
        () => start({ ROLES: 'projector,dispatcher', WORKSPACES: ws }).then(() => resolve(), reject),
        2000,
      ),
    );
    const s = await sim.run();
    await projector;
    await sim.cleanup();
    expect(s.endedBy).toBe('done');
    expect(s.abandoned).toBe(1);
    expect(s.errors, JSON.stringify(s.errorsByStatus)).toBe(0);
    expect(await logged(api.url!, ws, 'ContactAbandoned')).toBe(1);
  });
});
