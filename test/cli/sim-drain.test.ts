/**
 * The simulator's drain after its run: the feed hands on a chunk's events at once, those after
 * the one that ended the run too, and the run ignored them (it was ending) while the feed's
 * position moved past them; the drain read on after that position, so they were never counted
 * (a wrap-up of one of the run's agents, seen in the log and not in the summary). The drain now
 * reads on after the last event the run took.
 */
import { pino } from 'pino';
import { SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import type { LiveFeed } from '../../src/cli/sim/live-feed.ts';
import { Simulator } from '../../src/cli/sim/simulator.ts';
import { comparePositions } from '../support/audit.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';
import { simOptions } from './sim-support.ts';

const WS = `sim-drain-${Date.now()}`;
let redis: TestRedis;
let sb: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  const config = loadConfig({
    AUTH: 'off',
    REDIS_URL: redis.url,
    PORT: '0',
    LOG_LEVEL: 'silent',
    WORKSPACES: WS,
  });
  sb = await startSwitchboard(config, pino({ level: 'silent' }));
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

describe("simulate: the drain after the run's end", () => {
  it('counts the events the feed handed on once the run was ending', async () => {
    const sim = new Simulator(simOptions({ url: sb.url!, workspace: WS, agents: 1 }));
    // The run's parts, driven here one by one: its feed, its end, its drain.
    const run = sim as unknown as {
      tag: string;
      ending: boolean;
      live: LiveFeed;
      wrapUps: number;
      drain(): Promise<void>;
    };
    const agentId = `${run.tag}.agent-1`;
    const client = new SwitchboardClient({ url: sb.url!, workspace: WS, retries: 0 });
    await client.putSettings({ wrapUpMs: 60_000 });
    await run.live.open('0-0');
    // The run has ended (its last contact done); the feed goes on handing on what follows.
    run.ending = true;
    await client.registerAgent({ id: agentId, skills: ['billing'] });
    await client.setAgentState(agentId, 'available');
    await client.queueContact({ id: 'drain-1', skills: ['billing'] });
    await waitFor(
      'the contact assigned',
      async () => (await client.getContact('drain-1')).state === 'assigned',
    );
    await client.completeContact('drain-1');
    let wrapUp = '';
    for await (const e of client.allEvents({ types: ['WrapUpStarted'] })) wrapUp = e.position;
    expect(wrapUp).not.toBe('');
    await waitFor('the feed past the wrap-up', () => comparePositions(run.live.position, wrapUp) >= 0);
    await run.drain();
    run.live.close();
    expect(run.wrapUps, 'wrap-ups of the run counted').toBe(1);
  });
});
