/**
 * The simulator's live feed refused for good (its API key revoked mid-run: the server closes the
 * feed and refuses the reconnection 401): the run can no longer see what happens, so it ends at
 * once, `endedBy: 'feed-lost'`, naming the failure, rather than sending into the dark until its
 * time limit.
 */
import { describe, expect, it } from 'vitest';
import { createApiKey, revokeApiKey } from '../../src/adapters/redis/api-keys.ts';
import { Simulator } from '../../src/cli/sim/simulator.ts';
import { inProcessApi } from '../support/api.ts';
import { sleep } from '../support/wait.ts';
import { simOptions } from './sim-support.ts';

const WS = `sim-feed-lost-${Date.now()}`;
const api = inProcessApi([WS], { env: { AUTH: 'on' } });

describe('simulate, a live feed refused for good', () => {
  it('ends the run at once with endedBy feed-lost, not at its time limit', async () => {
    const { key, info } = await createApiKey(api.running.redis, { workspace: WS, role: 'admin' });
    const sim = new Simulator(
      simOptions({
        url: api.running.url!,
        key,
        workspace: WS,
        seed: 3,
        // One contact every 4 s, over a time limit of 40 s: the run has long to go.
        contacts: 10,
        rate: 0.25,
        patienceS: 30,
        maxSeconds: 40,
      }),
    );
    const started = Date.now();
    const running = sim.run();
    await sleep(1_500);
    await revokeApiKey(api.running.redis, WS, info.keyId);
    const summary = await running;
    const tookMs = Date.now() - started;
    expect(summary.endedBy).toBe('feed-lost');
    expect(summary.lastLiveFailure).toMatch(/401/);
    expect(tookMs).toBeLessThan(15_000);
  });
});
