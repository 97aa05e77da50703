/**
 * The simulator's drain after its run: the feed hands on a chunk's events at once, those after
 * the one that ended the run too, and the run ignored them (it was ending) while the feed's
 * position moved past them; the drain read on after that position, so they were never counted
 * (a wrap-up of one of the run's agents, seen in the log and not in the summary). The drain now
 * reads on after the last event the run took.
 */
import { SwitchboardClient } from 'switchboard/client';
import { describe, expect, it } from 'vitest';
import type { LiveFeed } from '../../src/cli/sim/live-feed.ts';
import { Simulator } from '../../src/cli/sim/simulator.ts';
import { comparePositions } from '../support/audit.ts';
import { waitFor } from '../support/wait.ts';
import { simOptions, simSwitchboard } from './sim-support.ts';

const WS = `sim-drain-${Date.now()}`;
const sb = simSwitchboard({ WORKSPACES: WS });

describe("simulate: the drain after the run's end", () => {
  it('counts the events the feed handed on once the run was ending', async () => {
    const sim = new Simulator(simOptions({ url: sb.url, workspace: WS, agents: 1 }));
    // The run's parts, driven here one by one: its feed, its end, its drain.
    const run = sim as unknown as {
      tag: string;
      ending: boolean;
      live: LiveFeed;
      wrapUps: number;
      wrapUpsEnded: number;
      drain(): Promise<void>;
    };
    const agentId = `${run.tag}.agent-1`;
    const client = new SwitchboardClient({ url: sb.url, workspace: WS, retries: 0 });
    await client.putSettings({ wrapUpMs: 300 });
    await client.registerAgent({ id: agentId, skills: ['billing'] });
    await client.setAgentState(agentId, 'available');
    await run.live.open('0-0');
    /** One contact served by the agent and completed; its wrap-up's start and end, once the feed has them. */
    let served = 0;
    const serve = async (id: string) => {
      served++;
      await client.queueContact({ id, skills: ['billing'] });
      await waitFor(`${id} assigned`, async () => (await client.getContact(id)).state === 'assigned');
      await client.completeContact(id);
      // Its wrap-up ended (by its timer, 300 ms on), and the feed past it.
      const last = await waitFor(`${id}'s wrap-up ended`, async () => {
        let ended = 0;
        let at = '';
        for await (const e of client.allEvents({ types: ['WrapUpEnded'] })) {
          ended++;
          at = e.position;
        }
        return ended === served ? at : undefined;
      });
      await waitFor('the feed past the wrap-up', () => comparePositions(run.live.position, last) >= 0);
    };
    // The first while the run goes on: taken, counted.
    await serve('drain-1');
    expect([run.wrapUps, run.wrapUpsEnded]).toEqual([1, 1]);
    // The run has ended (its last contact done); the feed goes on handing on what follows.
    run.ending = true;
    await serve('drain-2');
    expect([run.wrapUps, run.wrapUpsEnded], 'nothing taken once the run is ending').toEqual([1, 1]);
    await run.drain();
    run.live.close();
    // Each counted once: the second from the drain, the first not again.
    expect([run.wrapUps, run.wrapUpsEnded], 'wrap-ups of the run counted').toEqual([2, 2]);
  });
});
