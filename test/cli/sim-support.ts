/**
 * What the simulator suites that drive `Simulator` in process share: its options with quiet
 * defaults (no rejects, no misses, one priority), each suite giving what its point needs.
 */
import type { SimOptions } from '../../src/cli/sim/simulator.ts';

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
