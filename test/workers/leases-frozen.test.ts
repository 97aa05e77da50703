/**
 * A lease round while Redis does not answer: each of its commands waits out the command timeout.
 * One lease after the other, a round took a timeout per workspace, so a stop (which waits for the
 * round before it hands the leases back) outlasted SHUTDOWN_TIMEOUT_MS with a few workspaces, and
 * on a cluster the leases on a master that is down delayed the renewal of every other lease past
 * its lifetime. Redis stopped (SIGSTOP, test/support/freeze.ts) until the stop has ended: on the
 * single target only (vitest.config.ts).
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { WorkspaceRunner } from '../../src/app/workspace-runner.ts';
import { LeaseKeeper } from '../../src/dispatcher/leases.ts';
import { type Frozen, freezeRedis } from '../support/freeze.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

async function waitUntilStopped(running: () => boolean): Promise<void> {
  while (running()) await sleep(20);
}

describe('dispatcher leases while Redis does not answer', () => {
  const suite = suiteRedis();

  it('a lease round takes about one command timeout whatever the workspaces, and a stop ends as soon', async () => {
    const run = Date.now().toString(36);
    const workspaces = Array.from({ length: 10 }, (_, i) => `frozen-${run}-${i}`);
    const log = pino({ level: 'silent' });
    // A short command timeout, so the test is short: a round one at a time takes 11 of them.
    const redis = connectRedis({ url: suite.server.url }, { commandTimeout: 250 });
    const admin = suite.server.adminClient();
    let frozen: Frozen | undefined;
    try {
      const keeper = new LeaseKeeper(redis, `frozen-${run}`, log, { ttlMs: 20_000, renewEveryMs: 200 });
      const runner = new WorkspaceRunner(
        redis,
        { run: async (_ws, running) => void (await waitUntilStopped(running)) },
        log,
        { workspaces, discover: false, leases: keeper, discoverEveryMs: 200 },
      );
      runner.start();
      await waitFor('every lease taken', () => keeper.count === workspaces.length);
      frozen = await freezeRedis(admin, { atMostMs: 3000 });
      await sleep(300); // a round is under way, its commands held
      const started = Date.now();
      await runner.stop();
      const stopMs = Date.now() - started;
      console.log(JSON.stringify({ stopMs }));
      expect(stopMs, 'the stop waited a timeout per workspace').toBeLessThan(1500);
    } finally {
      await frozen?.thaw();
      admin.disconnect();
      redis.disconnect();
    }
  });
});
