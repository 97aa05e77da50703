/**
 * The simulator's time limit and interrupt during its set-up: a registration Switchboard did not
 * answer held the run until the try's timeout and its backoffs (up to 15 s a try, then Retry-After
 * waits) past --max-seconds, and a first Ctrl-C likewise. The run now ends at its limit or its
 * interrupt whatever phase it is in; what is still on its way is left to the cleanup.
 */
import { describe, expect, it } from 'vitest';
import { Simulator } from '../../src/cli/sim/simulator.ts';
import { sleep } from '../support/wait.ts';
import { interceptRequests, simOptions, simSwitchboard } from './sim-support.ts';

const WS = `sim-setup-${Date.now()}`;
const sb = simSwitchboard({ WORKSPACES: `${WS}-a,${WS}-b` });

/** A simulator whose agents' registrations are answered only after 5 s (a Switchboard that hangs). */
function heldRegistrations(ws: string, maxSeconds: number): Simulator {
  const sim = new Simulator(simOptions({ url: sb.url, workspace: ws, agents: 2, contacts: 3, maxSeconds }));
  interceptRequests(sim, async (method, path, send) => {
    if (method === 'POST' && /\/agents$/.test(path)) await sleep(5000);
    return send();
  });
  return sim;
}

describe('simulate: the run ends at its limit or interrupt during its set-up', () => {
  it('ends at --max-seconds while a registration is not answered', async () => {
    const sim = heldRegistrations(`${WS}-a`, 1);
    const began = performance.now();
    const s = await sim.run();
    const tookS = (performance.now() - began) / 1000;
    expect(s.endedBy).toBe('time-limit');
    expect(tookS).toBeLessThan(3);
    expect(s.errors, JSON.stringify(s.errorsByStatus)).toBe(0);
    await sim.cleanup();
  });

  it('ends at an interrupt while a registration is not answered', async () => {
    const sim = heldRegistrations(`${WS}-b`, 60);
    const began = performance.now();
    setTimeout(() => sim.interrupt(), 300);
    const s = await sim.run();
    const tookS = (performance.now() - began) / 1000;
    expect(s.endedBy).toBe('interrupted');
    expect(tookS).toBeLessThan(3);
    await sim.cleanup();
  });
});
