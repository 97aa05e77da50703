/**
 * The Redis path against the model and the routing oracle, over scenarios where every part of the
 * policy is on at once and time passes: priority aging in every scenario (its weight changed while
 * contacts wait, or refused when removed), each agent selection, offers always (answered, rejected,
 * expired under each missed-offer presence, withdrawn), wrap-ups of the workspace's and the agents'
 * own, contacts with steps that change their priority, preferred agents, channels and a maximum wait
 * of their own, transfers to other levels and priorities, and completions sent with an agent key's
 * `agentId` (the holder's, or another agent's: a 403). The other property families meet most of these
 * apart; a count of the scenarios that exercise each feature (`stats.features`) is logged.
 * PROPERTY_EDGES2_RUNS for another count (PROPERTY_FULL=1: 150); EDGES2_SEED to replay a failure.
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
  SELECTIONS,
  type Selection,
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
  .uniqueArray(fc.record({ name: fc.constantFrom(...NAMES), minLevel: fc.constantFrom(1, 1, 1, 2, 3, 5) }), {
    minLength: 1,
    maxLength: 2,
    selector: (x) => x.name,
  })
  .map((xs) => xs.map(({ name, minLevel }) => routingSkill(name, minLevel)));

const capacityArb: fc.Arbitrary<Capacity> = fc.oneof(
  fc.integer({ min: 1, max: 3 }),
  fc
    .record(
      { chat: fc.integer({ min: 1, max: 3 }), voice: fc.integer({ min: 1, max: 2 }) },
      { requiredKeys: [] },
    )
    .filter((c) => Object.keys(c).length > 0)
    .map((c) => c as Record<string, number>),
);
const wrapUpArb = fc.constantFrom(0, 10, 25);

const stepsArb = fc
  .array(
    fc.record(
      {
        afterMs: fc.integer({ min: 1, max: 50 }),
        skills: requirementsArb,
        priority: fc.integer({ min: 0, max: 9 }),
      },
      { requiredKeys: ['afterMs', 'skills'] },
    ),
    { minLength: 1, maxLength: 3 },
  )
  .map((steps) =>
    steps
      .sort((x, y) => x.afterMs - y.afterMs)
      .filter((st, i, all) => i === 0 || all[i - 1]!.afterMs < st.afterMs),
  );

/** A contact with any of steps, preferred agents, a channel and a maximum wait of its own. */
const queueArb = (n: number): fc.Arbitrary<Action> =>
  fc.record(
    {
      kind: fc.constant('queue' as const),
      reuse: fc.constant(null),
      skills: requirementsArb,
      priority: fc.integer({ min: 0, max: 9 }),
      channel: fc.constantFrom('chat', 'chat', 'voice', 'voice', 'email'),
      steps: stepsArb,
      preferred: fc.record({
        agents: fc.array(agentArb(n), { minLength: 1, maxLength: 3 }),
        forMs: fc.constantFrom(5, 20, 45),
      }),
      maxWaitMs: fc.constantFrom(25, 60, 110),
    },
    { requiredKeys: ['kind', 'reuse', 'skills', 'priority'] },
  );

/** Settings with aging and offers on (the actions below remove aging now and then). */
const settingsArb = (selection: fc.Arbitrary<Selection>) =>
  fc.record({
    kind: fc.constant('settings' as const),
    offerTimeoutMs: fc.constantFrom(15, 40, 90, 90),
    wrapUpMs: wrapUpArb,
    missed: fc.constantFrom('away' as const, 'available' as const, 'offline' as const),
    maxWaitMs: fc.constantFrom(null, 70, 130),
    channels: fc.constantFrom<string[]>(['chat', 'voice'], ['chat', 'email', 'voice']),
    priorityWeightMs: fc.constantFrom(1, 7, 30, 3_600_000),
    agentSelection: selection,
  });

const actionsArb = (n: number, selection: Selection): fc.Arbitrary<Action[]> =>
  fc.oneof(
    { weight: 7, arbitrary: queueArb(n).map((a) => [a]) },
    { weight: 1, arbitrary: fc.array(queueArb(n), { minLength: 5, maxLength: 12 }) },
    {
      weight: 6,
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
    {
      weight: 9,
      arbitrary: fc
        .record({
          kind: fc.constant('answer' as const),
          accept: fc.constantFrom(true, true, false),
          pick: fc.nat(),
          wrongAgent: fc.constantFrom(false, false, false, true),
        })
        .map((a) => [a]),
    },
    {
      weight: 1,
      arbitrary: fc
        .record({
          kind: fc.constant('withdraw' as const),
          pick: fc.nat(),
          how: fc.constantFrom('away' as const, 'offline' as const, 'remove' as const),
        })
        .map((a) => [a]),
    },
    {
      weight: 8,
      arbitrary: fc
        .record(
          {
            kind: fc.constant('complete' as const),
            pick: fc.nat(),
            from: fc.constantFrom('assigned' as const, 'assigned' as const, 'any' as const),
            as: fc.constantFrom('holder' as const, 'holder' as const, 'other' as const),
          },
          { requiredKeys: ['kind', 'pick', 'from'] },
        )
        .map((a) => [a]),
    },
    {
      weight: 3,
      arbitrary: fc
        .record({
          kind: fc.constant('transfer' as const),
          pick: fc.nat(),
          skills: requirementsArb,
          priority: fc.constantFrom(null, 0, 5, 9),
        })
        .map((a) => [a]),
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
            wrapUpMs: fc.oneof(wrapUpArb, fc.constant(null)),
          },
          { requiredKeys: ['kind', 'agent'] },
        )
        .map((a) => [a]),
    },
    {
      weight: 1,
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
      weight: 1,
      arbitrary: fc
        .record({ kind: fc.constant('abandon' as const), pick: fc.nat(), known: fc.constant(true) })
        .map((a) => [a]),
    },
    {
      weight: 5,
      arbitrary: fc
        .record({ kind: fc.constant('clock' as const), waitMs: fc.constantFrom(0, 10, 25, 50) })
        .map((a) => [a]),
    },
    // Mostly the weight changed while contacts wait; now and then another selection (refused while
    // an agent can take work) or aging removed (refused while contacts wait).
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          settingsArb(fc.constantFrom(selection, selection, selection, ...SELECTIONS)),
          fc.constantFrom(false, false, false, true),
        )
        .map(([st, unaged]): Action[] => [unaged ? { ...st, priorityWeightMs: undefined } : st]),
    },
  );

const pacingArb: fc.Arbitrary<Pacing> = fc.record({
  runs: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }),
  batches: fc.array(fc.constantFrom(1, 2, 3, 64), { minLength: 1, maxLength: 3 }),
  maxReads: fc.constantFrom(8, 40, 2048),
  race: fc.constantFrom(true, true, false),
  enumerateMax: fc.constantFrom(0, 64),
  stepBudgetMs: fc.constantFrom(0, 0.001, 2),
});

const everythingArb = (selection: Selection): fc.Arbitrary<Scenario> =>
  fc.integer({ min: 2, max: 5 }).chain((n) =>
    fc.record({
      agents: fc.array(
        fc
          .tuple(agentSkillsArb, capacityArb, fc.option(wrapUpArb, { freq: 2, nil: undefined }))
          .map(([skills, capacity, wrapUpMs]) => ({
            skills,
            capacity,
            ...(wrapUpMs === undefined ? {} : { wrapUpMs }),
          })),
        { minLength: n, maxLength: n },
      ),
      actions: fc
        .tuple(
          settingsArb(fc.constant(selection)),
          fc.array(actionsArb(n, selection), { minLength: 25, maxLength: 60 }),
        )
        .map(([settings, later]): Action[] => [
          settings,
          ...Array.from({ length: n }, (_, agent): Action => ({ kind: 'state', agent, state: 'available' })),
          ...later.flat(),
          // Time passes at the end, so the wrap-ups and offers under way end (and are checked).
          { kind: 'clock', waitMs: 100 },
        ]),
      pacing: pacingArb,
      alphabet: fc.constant(NAMES),
    }),
  );

describe('Redis routing agrees with the model with the whole policy on: aging, selections, offers, steps, preferences, channels, transfers, agent-key completions', () => {
  let server: TestRedis;
  let redis: RedisClient;
  let raceClient: RedisClient;
  const stats = emptyStats();
  let runScenario: (s: Scenario) => Promise<void>;

  beforeAll(async () => {
    server = await startTestRedis();
    redis = server.client();
    raceClient = server.client();
    runScenario = scenarioRunner(redis, raceClient, `pf${Date.now().toString(36)}`, stats);
  });

  afterAll(async () => {
    console.log(JSON.stringify({ features: stats.features }));
    redis?.disconnect();
    raceClient?.disconnect();
    await server?.stop();
  });

  const runs = Number(process.env.PROPERTY_EDGES2_RUNS ?? (process.env.PROPERTY_FULL === '1' ? 150 : 45));
  it(
    `${runs} scenarios with aging, each selection, offers, wrap-ups, steps, preferences, channels, maximum waits and transfers at once`,
    async () => {
      for (const selection of SELECTIONS)
        await fc.assert(fc.asyncProperty(everythingArb(selection), runScenario), {
          numRuns: Math.ceil(runs / SELECTIONS.length),
          ...(process.env.EDGES2_SEED ? { seed: Number(process.env.EDGES2_SEED) } : {}),
        });
      console.log(
        JSON.stringify({
          scenarios: stats.counter,
          commands: stats.commandsRun,
          assignments: stats.assignmentsSeen,
          rejections: stats.rejectionsSeen,
          timersFired: stats.timersFired,
          bySelection: stats.policyStats.bySelection,
        }),
      );
      expect(stats.assignmentsSeen).toBeGreaterThan(runs);
      expect(stats.timersFired).toBeGreaterThan(runs);
      // Each feature this family is for was exercised in some scenario (those reached in fewer
      // than about 10 of 45 scenarios, such as the offline missed presence or a least-occupied
      // completion, are in the logged counts only: a floor on them would fail a run by chance).
      for (const feature of [
        'decided:aged',
        'aged:ContactStepped',
        'aged:PreferenceEnded',
        'aged:AssignmentExpired',
        'aged:AssignmentRejected',
        'aged:ContactTransferred',
        'aged:ContactExpired',
        'aged:WrapUpEnded',
        'complete:agent-key',
        'settings:weight-changed-while-queued',
        'most-skilled:AssignmentAccepted',
        'least-occupied:AssignmentAccepted',
      ])
        expect(stats.features[feature] ?? 0, feature).toBeGreaterThan(0);
    },
    process.env.PROPERTY_FULL === '1' ? 900_000 : 120_000,
  );
});
