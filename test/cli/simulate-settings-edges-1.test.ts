/**
 * The simulator's settings for a run (src/cli/sim/simulator.ts, `applySettings`): those asked for
 * are PUT, and the summary's `settings` are the ones in force after that PUT, as GET /settings reads
 * them. A policy setting asked back to its default (`--priority-weight 0`: null, `--agent-selection
 * longest-available`) is left out of PUT's answer: the summary must not keep the value the
 * workspace had before.
 */
import { describe, expect, it } from 'vitest';
import { Simulator } from '../../src/cli/sim/simulator.ts';
import { inProcessApi } from '../support/api.ts';
import { simOptions } from './sim-support.ts';

const WS = 'sim-settings-e1';
const api = inProcessApi([WS]);

interface Applying {
  applySettings(): Promise<void>;
  settings: Record<string, unknown>;
}

describe('simulate, settings asked back to their defaults', () => {
  it('the run records the settings in force, not the policy the workspace had before', async () => {
    await api.ok('PUT', WS, '/settings', {
      priorityWeightMs: 1000,
      agentSelection: 'most-skilled',
      wrapUpMs: 5,
    });
    const sim = new Simulator(
      simOptions({
        url: api.running.url ?? '',
        workspace: WS,
        settings: { priorityWeightMs: null, agentSelection: 'longest-available' },
      }),
    );
    const run = sim as unknown as Applying;
    await run.applySettings();
    const inForce = await api.ok('GET', WS, '/settings');
    expect(inForce).toEqual({
      offerTimeoutMs: 0,
      wrapUpMs: 5,
      missedOfferPresence: 'away',
      maxWaitMs: null,
      channels: ['voice'],
    });
    expect(run.settings).toEqual(inForce);
  });
});
