/**
 * What the simulator suites that drive `Simulator` in process share: its options with quiet
 * defaults (no rejects, no misses, one priority), each suite giving what its point needs; a
 * Switchboard for the suite; the simulator's requests held on their way; the log's events counted.
 */
import { pino } from 'pino';
import { type EventType, SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import type { HttpResult } from '../../src/cli/sim/http.ts';
import type { SimOptions, Simulator } from '../../src/cli/sim/simulator.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

export function simOptions(o: Pick<SimOptions, 'url' | 'workspace'> & Partial<SimOptions>): SimOptions {
  return {
    seed: 1,
    agents: 2,
    contacts: 1,
    rate: 1,
    handleMinS: 1,
    handleMaxS: 1,
    patienceS: 10,
    maxSeconds: 5,
    acceptMinS: 0.1,
    acceptMaxS: 0.1,
    rejectRate: 0,
    missRate: 0,
    missBreakS: 1,
    priorities: 1,
    levels: false,
    capacity: 1,
    ...o,
  };
}

/**
 * A redis-server and a Switchboard in this process (every role, keys off, workspaces discovered)
 * for the suite: started before its tests, stopped after. `env` adds to its configuration.
 */
export function simSwitchboard(env: Record<string, string> = {}): { readonly url: string } {
  let redis: TestRedis | undefined;
  let sb: Running | undefined;
  beforeAll(async () => {
    redis = await startTestRedis();
    const config = loadConfig({ AUTH: 'off', REDIS_URL: redis.url, PORT: '0', LOG_LEVEL: 'silent', ...env });
    sb = await startSwitchboard(config, pino({ level: 'silent' }));
  });
  afterAll(async () => {
    await sb?.stop();
    await redis?.stop();
  });
  return {
    get url() {
      return sb!.url!;
    },
  };
}

/**
 * Passes the simulator's HTTP requests through `around` (a request held on its way, an answer held
 * on its way back, a status noted): `send` makes the request as the simulator would have.
 */
export function interceptRequests(
  sim: Simulator,
  around: (method: string, path: string, send: () => Promise<HttpResult>) => Promise<HttpResult>,
): void {
  const http = (sim as unknown as { http: { request: (...a: unknown[]) => Promise<HttpResult> } }).http;
  const request = http.request.bind(http);
  http.request = (...a: unknown[]) => around(a[0] as string, a[1] as string, () => request(...a));
}

/** Whether a request is a contact's create (POST /contacts). */
export const isCreate = (method: string, path: string): boolean =>
  method === 'POST' && /\/contacts$/.test(path);

/** How many events of `type` the log of workspace `ws` holds. */
export async function logged(url: string, ws: string, type: EventType): Promise<number> {
  let n = 0;
  const client = new SwitchboardClient({ url, workspace: ws, retries: 0 });
  for await (const e of client.allEvents({ types: [type] })) if (e.type === type) n++;
  return n;
}
