/**
 * An API instance's heartbeat into the registry while Redis does not answer (stopped with SIGSTOP,
 * test/support/freeze.ts: the single target only, as this folder is). A heartbeat every tick
 * fails, and each failure used to be told, one warning a second per instance for as long as the
 * outage lasted. A run of failures is now told as it starts and then once per `reportEveryMs`
 * with the count so far, and the landing that ends it once, with how many failed.
 */
import { describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { registerInstance } from '../../src/adapters/redis/instance-registry.ts';
import { type Frozen, freezeRedis } from '../support/freeze.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

describe('the instance heartbeat while Redis does not answer', () => {
  const suite = suiteRedis();

  it('tells a run of failures as it starts and then every reportEveryMs, and its end once', async () => {
    // Heartbeats every 40 ms, each failing after a 60 ms command timeout while Redis is stopped.
    const redis = connectRedis({ url: suite.server.url }, { commandTimeout: 60 });
    const admin = suite.server.adminClient();
    const errors: { registered: boolean; failures: number }[] = [];
    const recovered: number[] = [];
    let frozen: Frozen | undefined;
    let registered = false;
    const registration = await registerInstance(
      redis,
      { host: '127.0.0.1', port: 1 },
      {
        key: `sb:test-instances:${Date.now()}`,
        intervalMs: 40,
        reportEveryMs: 500,
        onRegistered: () => {
          registered = true;
        },
        onError: (_err, registered, failures) => errors.push({ registered, failures }),
        onRecovered: (failures) => recovered.push(failures),
      },
    );
    try {
      // The first tries may outlast the short timeout while the connection is made.
      await waitFor('the instance registered', () => registered, { timeoutMs: 5000 });
      await sleep(100);
      errors.length = 0;
      frozen = await freezeRedis(admin, { atMostMs: 5000 });
      await sleep(1_300);
      await frozen.thaw();
      await waitFor('a heartbeat to land again', () => recovered.length > 0, { timeoutMs: 5000 });
      const failed = recovered[0]!;
      // Some twenty failed in 1.3 s; told three times (at the first, after 0.5 s and after 1 s), not twenty.
      expect(failed).toBeGreaterThanOrEqual(8);
      expect(errors.length).toBeGreaterThanOrEqual(2);
      expect(errors.length).toBeLessThanOrEqual(4);
      expect(errors[0]).toEqual({ registered: true, failures: 1 });
      expect(errors.at(-1)!.failures).toBeLessThanOrEqual(failed);
      await sleep(200);
      expect(recovered).toEqual([failed]); // told once
    } finally {
      await frozen?.thaw();
      await registration.stop();
      admin.disconnect();
      redis.disconnect();
    }
  });
});
