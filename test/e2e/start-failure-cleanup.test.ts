/**
 * A start that fails once the workers run (here: METRICS_PORT taken, opened last) hands back what
 * it took: the workspace's leases, and the instance's entry in the load balancer's registry. They
 * had stayed until they expired, as a crash's do, though the process said why it stopped.
 */
import net from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { globalKeys, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

const WS = 'start-failure';
let redis: TestRedis;
let taken: net.Server;

beforeAll(async () => {
  redis = await startTestRedis();
  taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  await new Promise<void>((resolve) => taken?.close(() => resolve()));
  await redis?.stop();
});

describe('a start that fails late', () => {
  it('hands back its leases and leaves the registry', async () => {
    const port = (taken.address() as net.AddressInfo).port;
    const reader = redis.client();
    try {
      const err = await startSwitchboard(
        loadConfig({
          ...redis.env,
          AUTH: 'off',
          HOST: '127.0.0.1',
          PORT: '0',
          METRICS_PORT: String(port),
          ADVERTISE_ADDRESS: 'auto',
          LOG_LEVEL: 'silent',
          WORKSPACES: WS,
          DISCOVER_WORKSPACES: 'false',
        }),
        pino({ level: 'silent' }),
      ).then(
        (running) => {
          void running.stop();
          return new Error('started');
        },
        (e: unknown) => e as NodeJS.ErrnoException,
      );
      expect(err).toMatchObject({ code: 'EADDRINUSE' });
      const k = workspaceKeys(WS);
      // The dispatcher's lease was taken at start (its workspace has a log): given back, not left to expire.
      expect(await reader.exists(k.lease, k.archiverLease, k.intervalsLease)).toBe(0);
      expect(await reader.zcard(globalKeys.instances)).toBe(0);
      // Nothing of the failed start comes back later (a lease round still under way).
      await new Promise((r) => setTimeout(r, 1500));
      expect(await reader.exists(k.lease, k.archiverLease, k.intervalsLease)).toBe(0);
      expect(await reader.zcard(globalKeys.instances)).toBe(0);
    } finally {
      reader.disconnect();
    }
  }, 30_000);
});
