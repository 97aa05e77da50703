/**
 * The Redis path against the model and the routing oracle, over scenarios that mix what the other
 * property families meet only apart or narrowly: levels up to 5 on agents and minimum levels up to 5
 * on contacts, transfers and routing steps; one contact with steps, preferred agents, a channel and a
 * maximum wait of its own at once; agents going away, offline or removed (and registered again)
 * while they hold offers; bursts of contacts in one projector run; priority aging and every agent
 * selection under offers; two dispatchers racing in most scenarios. Each decision is held against
 * rule 1 at its recorded position, as in `property.test.ts` (`scenarioRunner`).
 * PROPERTY_EDGES_RUNS for another count (PROPERTY_FULL=1: 100); EDGES_SEED to replay a failure.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { routingSkill } from '../../src/domain/values.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import {
  type Action,
  agentArb,
  type Capacity,
  emptyStats,
  type Pacing,
  type Scenario,
  scenarioRunner,
} from '../support/routing-property.ts';

const NAMES = ['a', 'b', 'c'] as const;

/** An agent's skills with levels 1..5, as routing strings ("a", "a#2" ... "a#5"). */
const agentSkillsArb = fc
  .uniqueArray(fc.record({ name: fc.constantFrom(...NAMES), level: fc.integer({ min: 1, max: 5 }) }), {
    minLength: 1,
    maxLength: 3,
    selector: (x) => x.name,
  })
  .map((xs) =>
    xs.flatMap(({ name, level }) => Array.from({ length: level }, (_, i) => routingSkill(name, i + 1))),
  );
/** A contact's requirements with minimum levels 1..5 (mostly low, so that someone fits). */
const requirementsArb = fc
  .uniqueArray(fc.record({ name: fc.constantFrom(...NAMES), minLevel: fc.constantFrom(1, 1, 2, 3, 4, 5) }), {
    minLength: 1,
    maxLength: 2,
    selector: (x) => x.name,
  })
  .map((xs) => xs.map(({ name, minLevel }) => routingSkill(name, minLevel)));

const capacityArb: fc.Arbitrary<Capacity> = fc.oneof(
  fc.integer({ min: 1, max: 2 }),
  fc
    .record(
      { chat: fc.integer({ min: 1, max: 3 }), voice: fc.integer({ min: 1, max: 2 }) },
      { requiredKeys: [] },
    )
    .filter((c) => Object.keys(c).length > 0)
    .map((c) => c as Record<string, number>),
);

/** A contact with any of steps, preferred agents, a channel and its own maximum wait, together. */
const queueArb = (n: number): fc.Arbitrary<Action> =>
  fc.record(
    {
      kind: fc.constant('queue' as const),
      reuse: fc.constant(null),
      skills: requirementsArb,
      priority: fc.constantFrom(0, 1, 3, 9),
      channel: fc.constantFrom('chat', 'chat', 'voice'),
      steps: fc
        .array(
          fc.record(
            {
              afterMs: fc.integer({ min: 1, max: 60 }),
              skills: requirementsArb,
              priority: fc.constantFrom(0, 5, 9),
            },
            { requiredKeys: ['afterMs', 'skills'] },
          ),
          { minLength: 1, maxLength: 3 },
        )
        .map((steps) =>
          steps
            .sort((x, y) => x.afterMs - y.afterMs)
            .filter((st, i, all) => i === 0 || all[i - 1]!.afterMs < st.afterMs),
        ),
      preferred: fc.record({
        agents: fc.array(agentArb(n), { minLength: 1, maxLength: 3 }),
        forMs: fc.constantFrom(5, 20, 50),
      }),
      maxWaitMs: fc.constantFrom(30, 70, 120),
    },
    { requiredKeys: ['kind', 'reuse', 'skills', 'priority'] },
  );

const settingsArb = fc.record(
  {
    kind: fc.constant('settings' as const),
    offerTimeoutMs: fc.constantFrom(0, 20, 40, 40),
    wrapUpMs: fc.constantFrom(0, 15, 30),
    missed: fc.constantFrom('away' as const, 'available' as const, 'offline' as const),
    maxWaitMs: fc.constantFrom(null, null, 90),
    channels: fc.constant<string[]>(['chat', 'voice']),
    priorityWeightMs: fc.constantFrom(1, 10, 40),
    agentSelection: fc.constantFrom(
      'longest-available' as const,
      'most-skilled' as const,
      'most-skilled' as const,
      'least-occupied' as const,
    ),
  },
  { requiredKeys: ['kind', 'offerTimeoutMs', 'wrapUpMs', 'missed', 'maxWaitMs', 'channels'] },
);

const actionsArb = (n: number): fc.Arbitrary<Action[]> =>
  fc.oneof(
    { weight: 6, arbitrary: queueArb(n).map((a) => [a]) },
    // A burst: many contacts in one projector run (the pacing's runs are long).
    { weight: 1, arbitrary: fc.array(queueArb(n), { minLength: 6, maxLength: 16 }) },
    {
      weight: 7,
      arbitrary: fc
        .record({
          kind: fc.constant('state' as const),
          agent: agentArb(n),
          state: fc.constantFrom(
            'available' as const,
            'available' as const,
            'away' as const,
            'offline' as const,
          ),
        })
        .map((a) => [a]),
    },
    // Removed, often while holding an offer, and now and then registered again at once.
    {
      weight: 2,
      arbitrary: fc
        .tuple(agentArb(n), agentSkillsArb, capacityArb, fc.boolean())
        .map(([agent, skills, capacity, again]): Action[] => [
          { kind: 'remove', agent },
          ...(again
            ? [
                { kind: 'register', agent, skills, capacity } as Action,
                { kind: 'state', agent, state: 'available' } as Action,
              ]
            : []),
        ]),
    },
    {
      weight: 2,
      arbitrary: fc
        .record(
          {
            kind: fc.constant('update' as const),
            agent: agentArb(n),
            skills: agentSkillsArb,
            capacity: capacityArb,
          },
          { requiredKeys: ['kind', 'agent'] },
        )
        .map((a) => [a]),
    },
    {
      weight: 5,
      arbitrary: fc
        .record({
          kind: fc.constant('answer' as const),
          accept: fc.constantFrom(true, true, false),
          pick: fc.nat(),
          wrongAgent: fc.constant(false),
        })
        .map((a) => [a]),
    },
    // The agent holding an offer goes away, offline or is removed (the offer withdrawn), and
    // sometimes comes back at once in the same run.
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.record({
            kind: fc.constant('withdraw' as const),
            pick: fc.nat(),
            how: fc.constantFrom('away' as const, 'offline' as const, 'remove' as const),
          }),
          fc.option(agentArb(n), { nil: undefined }),
        )
        .map(([w, back]): Action[] => [
          w,
          ...(back === undefined ? [] : [{ kind: 'state', agent: back, state: 'available' } as Action]),
        ]),
    },
    {
      weight: 4,
      arbitrary: fc
        .record({
          kind: fc.constant('complete' as const),
          pick: fc.nat(),
          from: fc.constant('assigned' as const),
        })
        .map((a) => [a]),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({
          kind: fc.constant('transfer' as const),
          pick: fc.nat(),
          skills: requirementsArb,
          priority: fc.constantFrom(null, 0, 9),
        })
        .map((a) => [a]),
    },
    {
      weight: 1,
      arbitrary: fc
        .record({ kind: fc.constant('abandon' as const), pick: fc.nat(), known: fc.constant(true) })
        .map((a) => [a]),
    },
    {
      weight: 3,
      arbitrary: fc
        .record({ kind: fc.constant('clock' as const), waitMs: fc.constantFrom(0, 15, 30, 50) })
        .map((a) => [a]),
    },
    { weight: 1, arbitrary: settingsArb.map((a) => [a]) },
  );

const pacingArb: fc.Arbitrary<Pacing> = fc.record({
  runs: fc.array(fc.integer({ min: 1, max: 24 }), { minLength: 1, maxLength: 4 }),
  batches: fc.array(fc.constantFrom(1, 2, 3, 64), { minLength: 1, maxLength: 3 }),
  maxReads: fc.constantFrom(8, 40, 2048),
  race: fc.constantFrom(true, true, false),
  enumerateMax: fc.constantFrom(0, 64),
  stepBudgetMs: fc.constantFrom(0, 0.001, 2),
});

const edgesArb: fc.Arbitrary<Scenario> = fc.integer({ min: 2, max: 6 }).chain((n) =>
  fc.record({
    agents: fc.array(fc.record({ skills: agentSkillsArb, capacity: capacityArb }), {
      minLength: n,
      maxLength: n,
    }),
    actions: fc
      .tuple(
        settingsArb.map((st) => ({ ...st, offerTimeoutMs: 40 })),
        fc.array(actionsArb(n), { minLength: 25, maxLength: 70 }),
      )
      .map(([settings, later]): Action[] => [
        settings,
        ...Array.from({ length: n }, (_, agent): Action => ({ kind: 'state', agent, state: 'available' })),
        ...later.flat(),
      ]),
    pacing: pacingArb,
    alphabet: fc.constant(NAMES),
  }),
);

describe('Redis routing agrees with the model over mixed edges: levels to 5, steps with preferences and channels, offers withdrawn', () => {
  let server: TestRedis;
  let redis: RedisClient;
  let raceClient: RedisClient;
  const stats = emptyStats();
  let runScenario: (s: Scenario) => Promise<void>;

  beforeAll(async () => {
    server = await startTestRedis();
    redis = server.client();
    raceClient = server.client();
    runScenario = scenarioRunner(redis, raceClient, `pe${Date.now().toString(36)}`, stats);
  });

  afterAll(async () => {
    // Per routing feature, the scenarios that exercised it.
    console.log(JSON.stringify({ features: stats.features }));
    redis?.disconnect();
    raceClient?.disconnect();
    await server?.stop();
  });

  const runs = Number(process.env.PROPERTY_EDGES_RUNS ?? (process.env.PROPERTY_FULL === '1' ? 100 : 30));
  it(
    `${runs} scenarios mixing levels, steps, preferences, channels, offers, removals, bursts, policy and races`,
    async () => {
      await fc.assert(fc.asyncProperty(edgesArb, runScenario), {
        numRuns: runs,
        ...(process.env.EDGES_SEED ? { seed: Number(process.env.EDGES_SEED) } : {}),
      });
      console.log(
        JSON.stringify({
          scenarios: stats.counter,
          commands: stats.commandsRun,
          assignments: stats.assignmentsSeen,
          rejections: stats.rejectionsSeen,
          timersFired: stats.timersFired,
          facts: Object.fromEntries(stats.factsSeen),
          bySelection: stats.policyStats.bySelection,
        }),
      );
      // The scenarios decide something and the lifecycle runs.
      expect(stats.assignmentsSeen).toBeGreaterThan(runs);
      expect(stats.timersFired).toBeGreaterThan(runs / 2);
      for (const fact of ['AssignmentRejected', 'ContactStepped', 'PreferenceEnded', 'ContactExpired'])
        expect(stats.factsSeen.get(fact) ?? 0, fact).toBeGreaterThan(0);
    },
    process.env.PROPERTY_FULL === '1' ? 900_000 : 120_000,
  );
});
