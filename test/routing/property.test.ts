/**
 * The Redis path (append → projector Lua → dispatcher Lua) against the pure model and the routing
 * oracle, over random scenarios with realistic batching: the projector applies random runs of
 * commands before a dispatcher step, dispatch steps take from 1 to many decisions (and a few reads,
 * so walks resume across steps), and two dispatchers race. Every AssignmentMade is re-checked
 * against rule 1 for the state at its recorded position (`meta.basedOn`); after every drained
 * step no queued contact has an eligible agent; rejections and the documents and sets agree.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { startTestRedis, type TestRedis, testTarget } from '../support/redis.ts';
import {
  backlogArb,
  channelsArb,
  emptyStats,
  extremesArb,
  LIFECYCLE_FACTS,
  largeArb,
  lifecycleArb,
  policyArb,
  type Scenario,
  SELECTIONS,
  scenarioRunner,
  smallArb,
} from '../support/routing-property.ts';

describe('Redis routing agrees with the model and the oracle', () => {
  let server: TestRedis;
  let redis: RedisClient;
  let raceClient: RedisClient;
  const stats = emptyStats();
  const { factsSeen, channelStats, policyStats, extremeStats, ownWrapUpStats } = stats;
  let runScenario: (s: Scenario) => Promise<void>;

  beforeAll(async () => {
    server = await startTestRedis();
    redis = server.client();
    raceClient = server.client();
    // Unique per run, so a shared Redis (SWITCHBOARD_TEST_REDIS_URL) never sees a workspace twice.
    runScenario = scenarioRunner(redis, raceClient, `p${Date.now().toString(36)}`, stats);
  });

  afterAll(async () => {
    // Per routing feature, the scenarios that exercised it.
    console.log(JSON.stringify({ features: stats.features }));
    redis?.disconnect();
    raceClient?.disconnect();
    await server?.stop();
  });

  // On the cluster target the same rule runs with keys spread by hash tag over three masters: a
  // fraction of the single target's scenarios (60 random ones, 10 of each family) say so as well
  // as all of them would, since the routing is the same Lua and what the cluster adds (every key
  // of a step in its workspace's slot, the cluster client) is met by every scenario.
  // PROPERTY_SMALL_RUNS for any other count; PROPERTY_FULL=1 for the full size: 600 small
  // scenarios and 100 of each family on either target.
  const full = process.env.PROPERTY_FULL === '1';
  const cluster = testTarget() === 'cluster';
  const runsOf = (name: string, single: number, onCluster: number) =>
    Number(process.env[name] ?? (full ? Math.max(single, 100) : cluster ? onCluster : single));
  // A full run takes several times the CI size's time.
  const timeoutMs = (ci: number) => (full ? 10 * ci : ci);
  const smallRuns = Number(process.env.PROPERTY_SMALL_RUNS ?? (full ? 600 : cluster ? 40 : 150));
  /** A family's fast-check options: its count, and <NAME>_SEED and <NAME>_NO_SHRINK to replay a failure. */
  const familyRun = (name: string, numRuns: number) => ({
    numRuns,
    ...(process.env[`${name}_SEED`] ? { seed: Number(process.env[`${name}_SEED`]) } : {}),
    ...(process.env[`${name}_NO_SHRINK`] ? { endOnFailure: true } : {}),
  });
  const backlogRuns = runsOf('BACKLOG_RUNS', 45, 15);
  const largeRuns = runsOf('LARGE_RUNS', 15, 5);
  it(
    `${smallRuns} random small scenarios, ${backlogRuns} with a backlog and ${largeRuns} with over a hundred agents`,
    async () => {
      await fc.assert(fc.asyncProperty(smallArb, runScenario), { numRuns: smallRuns });
      await fc.assert(fc.asyncProperty(backlogArb, runScenario), { numRuns: backlogRuns });
      await fc.assert(fc.asyncProperty(largeArb, runScenario), { numRuns: largeRuns });
      console.log(
        JSON.stringify({
          scenarios: stats.counter,
          commands: stats.commandsRun,
          assignments: stats.assignmentsSeen,
          rejections: stats.rejectionsSeen,
          audits: stats.audits,
          timersFired: stats.timersFired,
        }),
      );
      // The scenarios do exercise both paths.
      expect(stats.assignmentsSeen).toBeGreaterThan(200);
      expect(stats.rejectionsSeen).toBeGreaterThan(50);
      // 30 - 50 s on the 2-core machine (the cluster target is the slower): room for a busier one.
    },
    timeoutMs(180_000),
  );

  const channelRuns = runsOf('CHANNEL_RUNS', 30, 10);
  it(
    `${channelRuns} scenarios of channels and proficiency: contacts on several channels needing minimum levels, agents with room per channel and levels, with the lifecycle`,
    async () => {
      const before = { assignmentsSeen: stats.assignmentsSeen, rejectionsSeen: stats.rejectionsSeen };
      channelStats.perChannelAssignments = 0;
      await fc.assert(fc.asyncProperty(channelsArb, runScenario), familyRun('CHANNEL', channelRuns));
      console.log(
        JSON.stringify({
          channels: { ...channelStats, assignments: stats.assignmentsSeen - before.assignmentsSeen },
        }),
      );
      // The floors below are for 40 scenarios, scaled to the count run. Many contacts here need a
      // channel nobody declared, so 10 scenarios (the cluster target's count) give 17 – 61
      // assignments: the floor is one for every two scenarios.
      expect(stats.assignmentsSeen - before.assignmentsSeen).toBeGreaterThan(channelRuns / 2);
      // Agents with room per channel were given contacts; undeclared channels were refused.
      expect(channelStats.perChannelAssignments).toBeGreaterThan(channelRuns / 4);
      expect(channelStats.undeclared).toBeGreaterThan(0);
    },
    timeoutMs(180_000),
  );

  const policyRuns = runsOf('POLICY_RUNS', 30, 10);
  it(
    `${policyRuns} scenarios of routing policy: priority aging, most-skilled and least-occupied selection, changed as they run, with levels, channels and the lifecycle`,
    async () => {
      const before = { assignmentsSeen: stats.assignmentsSeen };
      policyStats.aged = 0;
      policyStats.bySelection = {};
      for (const first of SELECTIONS)
        await fc.assert(
          fc.asyncProperty(policyArb(first), runScenario),
          familyRun('POLICY', Math.ceil(policyRuns / SELECTIONS.length)),
        );
      console.log(
        JSON.stringify({
          policy: { ...policyStats, assignments: stats.assignmentsSeen - before.assignmentsSeen },
        }),
      );
      expect(stats.assignmentsSeen - before.assignmentsSeen).toBeGreaterThan(policyRuns);
      // Each policy decided something: aged contacts assigned, and decisions under each selection.
      expect(policyStats.aged).toBeGreaterThan(policyRuns / 4);
      for (const sel of SELECTIONS)
        expect(policyStats.bySelection[sel] ?? 0, sel).toBeGreaterThan(policyRuns / 8);
    },
    timeoutMs(240_000),
  );

  const extremeRuns = runsOf('EXTREME_RUNS', 12, 6);
  it(
    `${extremeRuns} scenarios of extremes: priorities 0 and 9, the narrowest and widest aging weights, capacities lowered below what agents hold`,
    async () => {
      for (const first of SELECTIONS)
        await fc.assert(
          fc.asyncProperty(extremesArb(first), runScenario),
          familyRun('EXTREME', Math.ceil(extremeRuns / SELECTIONS.length)),
        );
      console.log(JSON.stringify({ extremes: extremeStats }));
    },
    timeoutMs(120_000),
  );

  const lifecycleRuns = runsOf('LIFECYCLE_RUNS', 30, 10);
  it(
    `${lifecycleRuns} scenarios of the work lifecycle: offers answered, rejected and expired, wrap-ups, maximum waits`,
    async () => {
      const before = {
        assignmentsSeen: stats.assignmentsSeen,
        timersFired: stats.timersFired,
        cleared: ownWrapUpStats.cleared,
      };
      await fc.assert(fc.asyncProperty(lifecycleArb, runScenario), familyRun('LIFECYCLE', lifecycleRuns));
      console.log(
        JSON.stringify({
          assignments: stats.assignmentsSeen - before.assignmentsSeen,
          timersFired: stats.timersFired,
          facts: Object.fromEntries(factsSeen),
          ownWrapUps: ownWrapUpStats,
        }),
      );
      expect(stats.assignmentsSeen - before.assignmentsSeen).toBeGreaterThan(lifecycleRuns);
      expect(stats.timersFired - before.timersFired).toBeGreaterThan(lifecycleRuns / 2);
      // Every part of the lifecycle happened: offers accepted, rejected and expired, wrap-ups begun
      // and ended, contacts expired and transferred.
      for (const fact of LIFECYCLE_FACTS) expect(factsSeen.get(fact) ?? 0, fact).toBeGreaterThan(0);
      // Agents' own wrap-up times were removed, not only set (UpdateAgent wrapUpMs null).
      expect(ownWrapUpStats.cleared - before.cleared).toBeGreaterThan(0);
    },
    timeoutMs(180_000),
  );
});
