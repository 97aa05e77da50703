/**
 * A customer who hangs up before the contact's create was answered (a slow or retried POST): the
 * simulator's abandon went ahead of the create, found no contact (404) and counted an error, and
 * the run exited 1 on a loaded machine, while the contact it created stayed queued. The abandon is
 * now sent again once the create is answered: the contact is abandoned, and the run has no error.
 */
import { pino } from 'pino';
import { SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { Simulator } from '../../src/cli/sim/simulator.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { simOptions } from './sim-support.ts';

const WS = `sim-early-${Date.now()}`;
let redis: TestRedis;
let sb: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  const config = loadConfig({
    AUTH: 'off',
    REDIS_URL: redis.url,
    PORT: '0',
    LOG_LEVEL: 'silent',
    WORKSPACES: WS,
  });
  sb = await startSwitchboard(config, pino({ level: 'silent' }));
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

describe('simulate: a customer who hangs up before the create is answered', () => {
  it('abandons the contact once it is there, with no error', async () => {
    const sim = new Simulator(
      simOptions({
        url: sb.url!,
        workspace: WS,
        agents: 0,
        contacts: 1,
        rate: 10,
        patienceS: 0.2,
        maxSeconds: 6,
      }),
    );
    // The create held 1 s on its way (a slow network or a retried POST): the patience (0.2 s)
    // runs out first, and the abandon reaches Switchboard before the contact does.
    const http = (sim as unknown as { http: { request: (...a: unknown[]) => Promise<unknown> } }).http;
    const send = http.request.bind(http);
    const abandons: number[] = [];
    http.request = async (...a: unknown[]) => {
      const [method, path] = a as [string, string];
      if (method === 'POST' && /\/contacts$/.test(path)) await new Promise((r) => setTimeout(r, 1000));
      const r = await send(...a);
      if (/\/abandon$/.test(path)) abandons.push((r as { status: number }).status);
      return r;
    };
    const s = await sim.run();
    await sim.cleanup();
    expect(abandons[0], 'the first abandon found no contact').toBe(404);
    expect(s.errors, JSON.stringify(s.errorsByStatus)).toBe(0);
    expect(s.abandoned).toBe(1);
    expect(s.stillQueued).toBe(0);
    let logged = 0;
    const client = new SwitchboardClient({ url: sb.url!, workspace: WS, retries: 0 });
    for await (const e of client.allEvents({ types: ['ContactAbandoned'] }))
      if (e.type === 'ContactAbandoned') logged++;
    expect(logged).toBe(1);
  });
});
