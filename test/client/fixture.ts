/** Shared start-up of the client tests: a real redis-server and a Switchboard in this process. */
import { pino } from 'pino';
import { SwitchboardClient } from 'switchboard/client';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

export const log = pino({ level: 'silent' });

export interface ClientFixture {
  redis: TestRedis;
  main: Running;
  keys: Record<string, string>;
  env(more?: Record<string, string>): NodeJS.ProcessEnv;
  client(ws: string, more?: Partial<ConstructorParameters<typeof SwitchboardClient>[0]>): SwitchboardClient;
  stop(): Promise<void>;
}

export async function startClientFixture(
  workspaces: string[],
  more: Record<string, string> = {},
): Promise<ClientFixture> {
  const redis = await startTestRedis();
  const env = (m: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    ...redis.env,
    AUTH: 'on',
    PORT: '0',
    LOG_LEVEL: 'silent',
    // Stopped at once: no balancer to drain for (the drain: test/e2e/drain-edges-1.test.ts).
    LB_DRAIN_MS: '0',
    COMMAND_TIMEOUT_MS: '2000',
    ...more,
    ...m,
  });
  const main = await startSwitchboard(
    loadConfig(env({ WORKSPACES: workspaces.join(','), DISCOVER_WORKSPACES: 'false' })),
    log,
  );
  await projectorReady(main.redis, workspaces);
  const keys: Record<string, string> = {};
  for (const ws of workspaces)
    keys[ws] = (await createApiKey(main.redis, { workspace: ws, role: 'admin' })).key;
  return {
    redis,
    main,
    keys,
    env,
    client: (ws, m = {}) => new SwitchboardClient({ url: main.url!, workspace: ws, key: keys[ws], ...m }),
    async stop() {
      await main.stop();
      await redis.stop();
    },
  };
}

/** The error a call fails with (throws if it succeeds). */
export const failure = <E = import('switchboard/client').SwitchboardError>(p: Promise<unknown>): Promise<E> =>
  p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e as E,
  );
