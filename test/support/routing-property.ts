/**
 * The property suites' scenarios of the Redis path (append → projector Lua → dispatcher Lua) against
 * the pure model and the routing oracle: the actions, the families of random scenarios, and
 * `scenarioRunner`, which plays one scenario and checks every decision against rule 1 at its
 * recorded position, the drained state, the rejections, the documents and the sets.
 */
import fc from 'fast-check';
import { isRight } from 'fp-ts/lib/Either.js';
import { expect } from 'vitest';
import { type Appended, appendCommand } from '../../src/adapters/redis/command-log.ts';
import { readEvents } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { appliedPosition, readAvailability } from '../../src/adapters/redis/projection-reads.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { auditWorkspace, WorkspaceAudit } from '../../src/audit/read.ts';
import {
  type DispatcherOptions,
  defaultDispatcherOptions,
  dispatchPending,
  fireTimers,
} from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import type { CommandRejectedData } from '../../src/domain/events.ts';
import {
  agentState,
  channelOf,
  decide,
  emptyWorkspace,
  evolve,
  type Fact,
  type Workspace,
} from '../../src/domain/model.ts';
import { contactOrder, nextAssignment, occupancy } from '../../src/domain/routing.ts';
import {
  canonicalSkills,
  comparePositions,
  onChannel,
  positionTime,
  routingSkill,
} from '../../src/domain/values.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../src/projections/projector.ts';

export const LIFECYCLE_FACTS = new Set([
  'PreferenceEnded',
  'ContactStepped',
  'AssignmentAccepted',
  'AssignmentRejected',
  'AssignmentExpired',
  'WrapUpStarted',
  'WrapUpEnded',
  'ContactExpired',
  'ContactTransferred',
]);

/** Agent ids chosen so that byte order matters in ties ('B' < 'a', 'a10' < 'a2'). */
export const AGENT_IDS = ['a2', 'a10', 'B', 'a', 'Z.9', 'c:x', 'b-1', 'b_1'] as const;
export const GHOST_AGENT = 'ghost';

/** An action as generated; targets are resolved against the scenario while it runs. */
export type Capacity = number | Record<string, number>;
export type Action =
  | { kind: 'register'; agent: number; skills: string[]; capacity: Capacity; wrapUpMs?: number }
  | { kind: 'state'; agent: number; state: 'available' | 'away' | 'offline' }
  /** `wrapUpMs` null removes the agent's own wrap-up time (the workspace's applies again). */
  | { kind: 'update'; agent: number; skills?: string[]; capacity?: Capacity; wrapUpMs?: number | null }
  | { kind: 'remove'; agent: number }
  | {
      kind: 'queue';
      reuse: number | null;
      skills: string[];
      priority: number;
      channel?: string;
      steps?: { afterMs: number; skills: string[]; priority?: number }[];
      /** Indexes of the scenario's agents it prefers, and for how long. */
      preferred?: { agents: number[]; forMs: number };
      /** The contact's own maximum wait (else the workspace's). */
      maxWaitMs?: number;
    }
  | { kind: 'abandon'; pick: number; known: boolean }
  | {
      kind: 'complete';
      pick: number;
      from: 'assigned' | 'any' | 'unknown';
      /** Sent with an agent key's `agentId`: the agent holding the contact, or another (refused, 403). */
      as?: 'holder' | 'other';
    }
  | { kind: 'forget'; keepMs: number; max: number }
  | {
      kind: 'settings';
      offerTimeoutMs: number;
      wrapUpMs: number;
      missed: 'available' | 'away' | 'offline';
      maxWaitMs: number | null;
      channels?: string[];
      priorityWeightMs?: number;
      agentSelection?: 'longest-available' | 'most-skilled' | 'least-occupied';
    }
  | { kind: 'answer'; accept: boolean; pick: number; wrongAgent: boolean }
  /** The agent holding an offer goes away or offline, or is removed: the offer is withdrawn. */
  | { kind: 'withdraw'; pick: number; how: 'away' | 'offline' | 'remove' }
  | { kind: 'clock'; waitMs: number }
  | { kind: 'transfer'; pick: number; skills: string[]; priority: number | null };

/** How the commands of a scenario reach the dispatcher. */
export interface Pacing {
  /** Commands appended (and projected) before each dispatch, cycled. */
  runs: number[];
  /** Decisions per dispatch step, cycled. */
  batches: number[];
  /** Reads per dispatch step: small values make walks resume across steps. */
  maxReads: number;
  /** Two dispatchers race on every dispatch. */
  race: boolean;
  /** 0: agents always walk the queue heads instead of looking their skill subsets up. */
  enumerateMax: number;
  /**
   * The projector's and dispatcher's steps' time budget (ms): 0.001 ends every step of more than 4
   * commands or decisions after its 4th, so the runs are applied and decided in steps cut anywhere.
   */
  stepBudgetMs: number;
}

export interface Scenario {
  /** `wrapUpMs`: the agent's own wrap-up time, instead of the workspace's. */
  agents: { skills: string[]; capacity: Capacity; wrapUpMs?: number }[];
  actions: Action[];
  pacing: Pacing;
  alphabet: readonly string[];
}

export const skillsArb = (alphabet: readonly string[], min: number, max: number) =>
  fc.uniqueArray(fc.constantFrom(...alphabet), { minLength: min, maxLength: max });

/**
 * Proficiency: an agent's skills with levels 1..3, and a contact's requirements with minimum
 * levels 1..3, as the stream carries them (routing strings: "a", "a#2", "a#3").
 */
export const leveledAgentSkillsArb = (alphabet: readonly string[], min: number, max: number) =>
  fc
    .uniqueArray(fc.record({ name: fc.constantFrom(...alphabet), level: fc.integer({ min: 1, max: 3 }) }), {
      minLength: min,
      maxLength: max,
      selector: (x) => x.name,
    })
    .map((xs) =>
      xs.flatMap(({ name, level }) => Array.from({ length: level }, (_, i) => routingSkill(name, i + 1))),
    );
export const requirementsArb = (alphabet: readonly string[], min: number, max: number) =>
  fc
    .uniqueArray(
      fc.record({ name: fc.constantFrom(...alphabet), minLevel: fc.integer({ min: 1, max: 3 }) }),
      {
        minLength: min,
        maxLength: max,
        selector: (x) => x.name,
      },
    )
    .map((xs) => xs.map(({ name, minLevel }) => routingSkill(name, minLevel)));

/** An agent index: one of the scenario's agents most of the time, sometimes one that never exists. */
export const agentArb = (n: number) =>
  fc.oneof({ weight: 12, arbitrary: fc.nat({ max: n - 1 }) }, { weight: 1, arbitrary: fc.constant(-1) });

export const actionArb = (n: number, alphabet: readonly string[]): fc.Arbitrary<Action> =>
  fc.oneof(
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('register' as const),
        agent: agentArb(n),
        skills: skillsArb(alphabet, 1, 3),
        capacity: fc.integer({ min: 1, max: 2 }),
      }),
    },
    {
      weight: 8,
      arbitrary: fc.record({
        kind: fc.constant('state' as const),
        agent: agentArb(n),
        state: fc.constantFrom(
          'available' as const,
          'available' as const,
          'available' as const,
          'away' as const,
          'offline' as const,
        ),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record(
        {
          kind: fc.constant('update' as const),
          agent: agentArb(n),
          skills: skillsArb(alphabet, 1, 3),
          capacity: fc.integer({ min: 1, max: 2 }),
        },
        { requiredKeys: ['kind', 'agent'] },
      ),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), agent: agentArb(n) }) },
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant('queue' as const),
        reuse: fc.oneof({ weight: 10, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat() }),
        skills: skillsArb(alphabet, 1, 3),
        priority: fc.integer({ min: 0, max: 3 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('abandon' as const), pick: fc.nat(), known: fc.boolean() }),
    },
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant('complete' as const),
        pick: fc.nat(),
        from: fc.constantFrom(
          'assigned' as const,
          'assigned' as const,
          'assigned' as const,
          'any' as const,
          'unknown' as const,
        ),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('forget' as const),
        keepMs: fc.constantFrom(0, 0, 1, 3, 60_000),
        max: fc.constantFrom(1, 2, 500),
      }),
    },
  );

export const pacingArb: fc.Arbitrary<Pacing> = fc.record({
  runs: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 5 }),
  batches: fc.array(fc.constantFrom(1, 1, 2, 3, 8, 64), { minLength: 1, maxLength: 4 }),
  maxReads: fc.constantFrom(8, 40, 2048),
  race: fc.boolean(),
  enumerateMax: fc.constantFrom(0, 64),
  stepBudgetMs: fc.constantFrom(0, 0.001, 2),
});

export const SMALL = ['a', 'b', 'c', 'd'] as const;
export const WIDE = ['a', 'b', 'c', 'd', 'e', 'f'] as const;

/** Few agents, whose ids make byte order matter in ties. */
export const smallArb: fc.Arbitrary<Scenario> = fc.integer({ min: 3, max: 8 }).chain((n) =>
  fc.record({
    agents: fc.array(
      fc.record({ skills: skillsArb(SMALL, 1, 3), capacity: fc.integer({ min: 1, max: 2 }) }),
      {
        minLength: n,
        maxLength: n,
      },
    ),
    actions: fc.array(actionArb(n, SMALL), { minLength: 10, maxLength: 80, size: 'medium' }),
    pacing: pacingArb,
    alphabet: fc.constant(SMALL),
  }),
);

export const BROAD = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'] as const;

/** A backlog first: many distinct skill sets queue before the agents come, so walks are long. */
export const backlogArb: fc.Arbitrary<Scenario> = fc.integer({ min: 4, max: 10 }).chain((n) =>
  fc.record({
    agents: fc.array(
      fc.record({ skills: skillsArb(BROAD, 3, 6), capacity: fc.integer({ min: 1, max: 2 }) }),
      {
        minLength: n,
        maxLength: n,
      },
    ),
    actions: fc
      .tuple(
        fc.array(
          fc.record({
            kind: fc.constant('queue' as const),
            reuse: fc.constant(null),
            skills: skillsArb(BROAD, 1, 3),
            priority: fc.integer({ min: 0, max: 2 }),
          }),
          { minLength: 30, maxLength: 80 },
        ),
        fc.array(actionArb(n, BROAD), { minLength: 30, maxLength: 100 }),
      )
      .map(([backlog, rest]): Action[] => [...backlog, ...rest]),
    pacing: pacingArb,
    alphabet: fc.constant(BROAD),
  }),
);

/**
 * An agent's own wrap-up time, instead of the workspace's (0, 15 or 30 there), on the same scale as
 * the clock's waits (0 - 45 ms): none, shorter, or longer than a few waits. Only where time passes
 * (the lifecycle and the families built on it): elsewhere no timer fires and a wrap-up never ends.
 */
export const agentWrapUpArb = fc.constantFrom(0, 0, 5, 25, 60, 150);
/** A registered agent with its own wrap-up time about one time in three. */
export const ownWrapUp = <T extends object>(
  agent: fc.Arbitrary<T>,
): fc.Arbitrary<T & { wrapUpMs?: number }> =>
  fc
    .tuple(agent, fc.option(agentWrapUpArb, { freq: 2, nil: undefined }))
    .map(([a, wrapUpMs]) => (wrapUpMs === undefined ? a : { ...a, wrapUpMs }));

/** The work lifecycle: offers answered, rejected or left to expire, wrap-ups, maximum waits; time passes. */
export const lifecycleActionArb = (n: number): fc.Arbitrary<Action> =>
  fc.oneof(
    { weight: 12, arbitrary: actionArb(n, SMALL) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('settings' as const),
        offerTimeoutMs: fc.constantFrom(0, 20, 40, 40),
        wrapUpMs: fc.constantFrom(0, 0, 15, 30),
        missed: fc.constantFrom('away' as const, 'available' as const, 'offline' as const),
        maxWaitMs: fc.constantFrom(null, null, 50),
      }),
    },
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant('answer' as const),
        accept: fc.boolean(),
        pick: fc.nat(),
        wrongAgent: fc.boolean().map((b) => b && Math.random() < 0.2),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant('clock' as const), waitMs: fc.constantFrom(0, 10, 25, 45) }),
    },
    {
      // Preferred agents: only they may take it for a while, then anyone eligible.
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('queue' as const),
        reuse: fc.constant(null),
        skills: skillsArb(SMALL, 1, 2),
        priority: fc.integer({ min: 0, max: 3 }),
        preferred: fc.record({
          agents: fc.array(agentArb(n), { minLength: 1, maxLength: 3 }),
          forMs: fc.constantFrom(5, 20, 40, 60),
        }),
      }),
    },
    {
      // Routing steps: the requirements relax (or change) as the contact waits.
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('queue' as const),
        reuse: fc.constant(null),
        skills: skillsArb(SMALL, 1, 3),
        priority: fc.integer({ min: 0, max: 3 }),
        steps: fc
          .array(
            fc.record(
              {
                afterMs: fc.integer({ min: 1, max: 60 }),
                skills: skillsArb(SMALL, 1, 2),
                priority: fc.integer({ min: 0, max: 3 }),
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
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('transfer' as const),
        pick: fc.nat(),
        skills: skillsArb(SMALL, 1, 2),
        priority: fc.constantFrom(null, 0, 3),
      }),
    },
    {
      // An agent's own wrap-up time set, or removed (null: the workspace's applies again), now
      // and then with a change of skills; sometimes of an agent that does not exist (404).
      weight: 2,
      arbitrary: fc.record(
        {
          kind: fc.constant('update' as const),
          agent: agentArb(n),
          wrapUpMs: fc.oneof(agentWrapUpArb, fc.constant(null)),
          skills: skillsArb(SMALL, 1, 3),
        },
        { requiredKeys: ['kind', 'agent', 'wrapUpMs'] },
      ),
    },
    {
      // Registered again with a wrap-up of its own: a 409 for an agent that exists.
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('register' as const),
        agent: agentArb(n),
        skills: skillsArb(SMALL, 1, 3),
        capacity: fc.integer({ min: 1, max: 2 }),
        wrapUpMs: agentWrapUpArb,
      }),
    },
  );

export const lifecycleArb: fc.Arbitrary<Scenario> = fc.integer({ min: 3, max: 6 }).chain((n) =>
  fc.record({
    agents: fc.array(
      ownWrapUp(fc.record({ skills: skillsArb(SMALL, 1, 3), capacity: fc.integer({ min: 1, max: 2 }) })),
      { minLength: n, maxLength: n },
    ),
    actions: fc
      .tuple(
        fc.record({
          kind: fc.constant('settings' as const),
          offerTimeoutMs: fc.constantFrom(20, 40),
          wrapUpMs: fc.constantFrom(0, 15, 30),
          missed: fc.constantFrom('away' as const, 'available' as const),
          maxWaitMs: fc.constantFrom(null, 60),
        }),
        fc.array(lifecycleActionArb(n), { minLength: 40, maxLength: 120 }),
      )
      .map(([first, rest]): Action[] => [
        first,
        // Everyone at the desk to begin with.
        ...Array.from({ length: n }, (_, agent): Action => ({ kind: 'state', agent, state: 'available' })),
        ...rest,
      ]),
    pacing: pacingArb,
    alphabet: fc.constant(SMALL),
  }),
);

/** The channels of the channel scenarios: email is declared only later, sms never. */
export const CHANNELS = ['chat', 'email', 'voice'] as const;

/** One number, or room per channel (now and then naming a channel not declared yet). */
export const capacityArb: fc.Arbitrary<Capacity> = fc.oneof(
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 2 }) },
  {
    weight: 3,
    arbitrary: fc
      .record(
        {
          voice: fc.integer({ min: 1, max: 2 }),
          chat: fc.integer({ min: 1, max: 3 }),
          email: fc.integer({ min: 1, max: 2 }),
        },
        { requiredKeys: [] },
      )
      .filter((c) => Object.keys(c).length > 0)
      .map((c) => c as Record<string, number>),
  },
);

/** Channels: contacts on several, agents with one number or room per channel, and the lifecycle. */
export const channelActionArb = (n: number): fc.Arbitrary<Action> =>
  fc.oneof(
    { weight: 8, arbitrary: lifecycleActionArb(n) },
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant('queue' as const),
        reuse: fc.constant(null),
        skills: requirementsArb(SMALL, 1, 2),
        priority: fc.integer({ min: 0, max: 2 }),
        channel: fc.constantFrom('chat', 'chat', 'chat', 'voice', 'voice', 'email', 'sms'),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('update' as const),
        agent: agentArb(n),
        capacity: capacityArb,
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('settings' as const),
        offerTimeoutMs: fc.constantFrom(0, 0, 30),
        wrapUpMs: fc.constantFrom(0, 15),
        missed: fc.constantFrom('away' as const, 'available' as const),
        maxWaitMs: fc.constantFrom(null, null, 80),
        // Adding email; or leaving out chat, which is refused.
        channels: fc.constantFrom<string[]>(['chat', 'email', 'voice'], ['chat', 'voice'], ['voice']),
      }),
    },
  );

/**
 * 3 - 6 agents with levels and room per channel, made available after `first` (the workspace's
 * settings), then `rest(n)`: the channel and policy families' scenarios.
 */
export const leveledScenario = (
  first: fc.Arbitrary<Action>,
  rest: (n: number) => fc.Arbitrary<Action[]>,
  /** The first agent's capacity (the others' is capacityArb). */
  firstCapacity: fc.Arbitrary<Capacity> = capacityArb,
): fc.Arbitrary<Scenario> =>
  fc.integer({ min: 3, max: 6 }).chain((n) =>
    fc.record({
      agents: fc
        .tuple(
          fc.record({ skills: leveledAgentSkillsArb(SMALL, 1, 3), capacity: firstCapacity }),
          fc.array(
            ownWrapUp(fc.record({ skills: leveledAgentSkillsArb(SMALL, 1, 3), capacity: capacityArb })),
            {
              minLength: n - 1,
              maxLength: n - 1,
            },
          ),
        )
        .map(([a, others]) => [a, ...others]),
      actions: fc
        .tuple(first, rest(n))
        .map(([settings, later]): Action[] => [
          settings,
          ...Array.from({ length: n }, (_, agent): Action => ({ kind: 'state', agent, state: 'available' })),
          ...later,
        ]),
      pacing: pacingArb,
      alphabet: fc.constant(SMALL),
    }),
  );

/**
 * The channel family. Its first agent has room on both channels declared from the start, so that
 * every scenario has an agent with room per channel to give contacts to: with that left to the
 * draw, the 10 scenarios of a run made 2 such assignments in all once, and 4 or fewer in 3 of 24 runs.
 */
export const channelsArb: fc.Arbitrary<Scenario> = leveledScenario(
  fc.record({
    kind: fc.constant('settings' as const),
    offerTimeoutMs: fc.constantFrom(0, 30),
    wrapUpMs: fc.constantFrom(0, 15),
    missed: fc.constant('available' as const),
    maxWaitMs: fc.constant(null),
    channels: fc.constant<string[]>(['chat', 'voice']),
  }),
  (n) => fc.array(channelActionArb(n), { minLength: 40, maxLength: 120 }),
  fc.record({ chat: fc.integer({ min: 1, max: 3 }), voice: fc.integer({ min: 1, max: 2 }) }),
);

/**
 * Routing policy: priority aging and the three agent selections, changed as the scenario runs
 * (set or removed while contacts are queued, or to least-occupied while agents are available:
 * refused), over agents with levels and room per channel, contacts with minimum levels, steps,
 * preferred agents, and the lifecycle.
 */
export const policySettingsArb = fc.record(
  {
    kind: fc.constant('settings' as const),
    offerTimeoutMs: fc.constantFrom(0, 0, 30),
    wrapUpMs: fc.constantFrom(0, 15),
    missed: fc.constant('available' as const),
    maxWaitMs: fc.constantFrom(null, null, 80),
    priorityWeightMs: fc.constantFrom(1, 5, 20, 40),
    agentSelection: fc.constantFrom(
      'longest-available' as const,
      'most-skilled' as const,
      'most-skilled' as const,
      'least-occupied' as const,
      'least-occupied' as const,
    ),
  },
  { requiredKeys: ['kind', 'offerTimeoutMs', 'wrapUpMs', 'missed', 'maxWaitMs'] },
);
export type Selection = 'longest-available' | 'most-skilled' | 'least-occupied';
export const SELECTIONS: Selection[] = ['longest-available', 'most-skilled', 'least-occupied'];
/**
 * The policy family, starting under the given selection: the family runs a share of its scenarios
 * under each, so every selection decides something whatever the count and the seed (a random first
 * selection left least-occupied out of all 10 scenarios of a run about one time in ten).
 */
export const policyArb = (first: Selection): fc.Arbitrary<Scenario> =>
  leveledScenario(
    policySettingsArb.map((st) => ({ ...st, agentSelection: first, channels: ['chat', 'email', 'voice'] })),
    (n) =>
      fc.array(
        fc.oneof(
          { weight: 10, arbitrary: channelActionArb(n) },
          { weight: 2, arbitrary: policySettingsArb },
          // Agents go away now and then, so least-occupied can be switched to.
          {
            weight: 2,
            arbitrary: fc.record({
              kind: fc.constant('state' as const),
              agent: fc.nat({ max: n - 1 }),
              state: fc.constant('away' as const),
            }),
          },
        ),
        { minLength: 40, maxLength: 120 },
      ),
  );

/**
 * Extremes: priorities 0 and 9 under the narrowest and widest aging weights, agents of capacity 10
 * filled by bursts of chat contacts and then given less room than they hold (under least-occupied,
 * shares in use of 10 and more), besides the policy family's actions.
 */
export const PAIR = ['a', 'b'] as const;
export const extremeQueueArb = fc.record({
  kind: fc.constant('queue' as const),
  reuse: fc.constant(null),
  skills: requirementsArb(PAIR, 1, 1),
  priority: fc.constantFrom(0, 0, 9, 9, 4),
  channel: fc.constantFrom('chat', 'chat', 'chat', 'voice'),
});
export const extremeCapacityArb: fc.Arbitrary<Capacity> = fc.constantFrom<Capacity>(
  1,
  10,
  12,
  { chat: 10, voice: 1 },
  { chat: 12 },
  { voice: 1 },
  { chat: 1, voice: 1 },
);
export const extremeSettingsArb = policySettingsArb.map((st) => ({
  ...st,
  priorityWeightMs: st.priorityWeightMs === undefined ? undefined : st.priorityWeightMs < 20 ? 1 : 3_600_000,
  channels: ['chat', 'email', 'voice'],
}));
export const extremesArb = (first: Selection): fc.Arbitrary<Scenario> =>
  fc.integer({ min: 1, max: 4 }).chain((n) =>
    fc.record({
      agents: fc
        .tuple(
          // The first serves every contact of the bursts.
          fc.record({
            skills: fc.constant<string[]>(['a', 'a#2', 'a#3', 'b', 'b#2', 'b#3']),
            capacity: fc.constantFrom<Capacity>(10, 12, { chat: 10, voice: 1 }),
          }),
          fc.array(fc.record({ skills: leveledAgentSkillsArb(PAIR, 1, 2), capacity: extremeCapacityArb }), {
            minLength: n - 1,
            maxLength: n - 1,
          }),
        )
        .map(([a, others]) => [a, ...others]),
      actions: fc
        .tuple(
          extremeSettingsArb.map((st) => ({ ...st, agentSelection: first })),
          fc.array(
            fc.oneof(
              { weight: 2, arbitrary: channelActionArb(n).map((a) => [a]) },
              { weight: 4, arbitrary: extremeQueueArb.map((a) => [a]) },
              { weight: 2, arbitrary: fc.array(extremeQueueArb, { minLength: 10, maxLength: 16 }) },
              {
                weight: 3,
                arbitrary: fc
                  .record({
                    kind: fc.constant('update' as const),
                    agent: fc.oneof(fc.constant(0), agentArb(n)),
                    capacity: extremeCapacityArb,
                  })
                  .map((a) => [a]),
              },
              {
                // The first agent filled, then left room on voice only: its share in use passes 10.
                weight: 1,
                arbitrary: fc.integer({ min: 10, max: 13 }).map((k): Action[] => [
                  ...Array.from(
                    { length: k },
                    (): Action => ({
                      kind: 'queue',
                      reuse: null,
                      skills: ['a'],
                      priority: 9,
                      channel: 'chat',
                    }),
                  ),
                  { kind: 'update', agent: 0, capacity: { voice: 1 } },
                  { kind: 'queue', reuse: null, skills: ['a'], priority: 0, channel: 'voice' },
                ]),
              },
              { weight: 1, arbitrary: extremeSettingsArb.map((a) => [a]) },
              {
                weight: 1,
                arbitrary: fc
                  .record({
                    kind: fc.constant('state' as const),
                    agent: fc.nat({ max: n - 1 }),
                    state: fc.constant('away' as const),
                  })
                  .map((a) => [a]),
              },
            ),
            { minLength: 20, maxLength: 50 },
          ),
        )
        .map(([settings, later]): Action[] => [
          settings,
          ...Array.from({ length: n }, (_, agent): Action => ({ kind: 'state', agent, state: 'available' })),
          ...later.flat(),
        ]),
      pacing: pacingArb,
      alphabet: fc.constant(SMALL),
    }),
  );

/** A hundred agents or more over several skill sets, under load. */
export const largeArb: fc.Arbitrary<Scenario> = fc.integer({ min: 100, max: 130 }).chain((n) =>
  fc.record({
    agents: fc.array(fc.record({ skills: skillsArb(WIDE, 1, 4), capacity: fc.integer({ min: 1, max: 3 }) }), {
      minLength: n,
      maxLength: n,
    }),
    actions: fc.array(actionArb(n, WIDE), { minLength: 150, maxLength: 300 }),
    pacing: pacingArb,
    alphabet: fc.constant(WIDE),
  }),
);

/** Turns an action into a command, given the model state (targets of Complete/Abandon resolved now). */
export function toCommand(
  a: Action,
  ws: Workspace,
  queued: readonly string[],
  nextContact: () => string,
): Command {
  const agentId = (i: number) => (i < 0 ? GHOST_AGENT : (AGENT_IDS[i] ?? `agent-${i}`));
  const pick = <T>(xs: readonly T[], i: number): T | undefined =>
    xs.length === 0 ? undefined : xs[i % xs.length];
  switch (a.kind) {
    case 'register':
      return {
        type: 'RegisterAgent',
        agentId: agentId(a.agent),
        skills: canonicalSkills(a.skills),
        capacity: a.capacity,
        ...(a.wrapUpMs !== undefined ? { wrapUpMs: a.wrapUpMs } : {}),
      };
    case 'state':
      return { type: 'ChangeAgentState', agentId: agentId(a.agent), state: a.state };
    case 'update':
      return {
        type: 'UpdateAgent',
        agentId: agentId(a.agent),
        ...(a.skills ? { skills: canonicalSkills(a.skills) } : {}),
        ...(a.capacity !== undefined ? { capacity: a.capacity } : {}),
        ...(a.wrapUpMs !== undefined ? { wrapUpMs: a.wrapUpMs } : {}),
      };
    case 'remove':
      return { type: 'RemoveAgent', agentId: agentId(a.agent) };
    case 'queue': {
      const reused = a.reuse === null ? undefined : pick(queued, a.reuse);
      return {
        type: 'QueueContact',
        contactId: reused ?? nextContact(),
        skills: canonicalSkills(a.skills),
        priority: a.priority,
        ...(a.channel !== undefined ? { channel: a.channel } : {}),
        ...(a.steps !== undefined
          ? { steps: a.steps.map((st) => ({ ...st, skills: canonicalSkills(st.skills) })) }
          : {}),
        ...(a.preferred !== undefined
          ? {
              preferredAgents: [...new Set(a.preferred.agents.map(agentId))],
              preferredForMs: a.preferred.forMs,
            }
          : {}),
        ...(a.maxWaitMs !== undefined ? { maxWaitMs: a.maxWaitMs } : {}),
      };
    }
    case 'abandon': {
      const all = [...ws.contacts.keys()];
      const id = (a.known && pick(all, a.pick)) || 'nobody';
      return { type: 'AbandonContact', contactId: id };
    }
    case 'complete': {
      const assigned = [...ws.contacts.values()].filter((c) => c.state === 'assigned').map((c) => c.id);
      const id =
        a.from === 'unknown'
          ? 'nobody'
          : (pick(a.from === 'assigned' ? assigned : [...ws.contacts.keys()], a.pick) ?? 'nobody');
      if (a.as === undefined) return { type: 'CompleteContact', contactId: id };
      const holder = ws.contacts.get(id)?.agentId ?? AGENT_IDS[0];
      const other = holder === AGENT_IDS[0] ? AGENT_IDS[1] : AGENT_IDS[0];
      return { type: 'CompleteContact', contactId: id, agentId: a.as === 'holder' ? holder : other };
    }
    case 'forget':
      return { type: 'ForgetContacts', keepMs: a.keepMs, max: a.max };
    case 'settings':
      return {
        type: 'ChangeSettings',
        offerTimeoutMs: a.offerTimeoutMs,
        wrapUpMs: a.wrapUpMs,
        missedOfferPresence: a.missed,
        maxWaitMs: a.maxWaitMs,
        ...(a.channels !== undefined ? { channels: a.channels } : {}),
        ...(a.priorityWeightMs !== undefined ? { priorityWeightMs: a.priorityWeightMs } : {}),
        ...(a.agentSelection !== undefined ? { agentSelection: a.agentSelection } : {}),
      };
    case 'answer': {
      const offered = [...ws.contacts.values()].filter((c) => c.offer);
      const c = pick(offered, a.pick);
      const contactId = c?.id ?? 'nobody';
      const right = c?.offer?.agentId ?? AGENT_IDS[0];
      const agentId = a.wrongAgent ? (right === AGENT_IDS[0] ? AGENT_IDS[1] : AGENT_IDS[0]) : right;
      return { type: a.accept ? 'AcceptOffer' : 'RejectOffer', contactId, agentId };
    }
    case 'withdraw': {
      const offered = [...ws.contacts.values()].filter((c) => c.offer);
      const agent = pick(offered, a.pick)?.offer?.agentId ?? GHOST_AGENT;
      return a.how === 'remove'
        ? { type: 'RemoveAgent', agentId: agent }
        : { type: 'ChangeAgentState', agentId: agent, state: a.how };
    }
    case 'transfer': {
      const assigned = [...ws.contacts.values()].filter((c) => c.state === 'assigned').map((c) => c.id);
      return {
        type: 'TransferContact',
        contactId: pick(assigned, a.pick) ?? 'nobody',
        skills: canonicalSkills(a.skills),
        ...(a.priority !== null ? { priority: a.priority } : {}),
      };
    }
    case 'clock':
      throw new Error('the clock is no command');
  }
}

export interface AgentDoc {
  id: string;
  skills: string[];
  capacity: Capacity;
  presence: string;
  state: string;
  activeContacts: string[];
  availableSince: string | null;
  wrapUpMs?: number;
  wrapUpUntil?: string;
  _since?: number;
}
export interface ContactDoc {
  id: string;
  state: string;
  agentId?: string;
  priority: number;
  skills: string[];
}

/** What the scenarios run so far did, summed over every scenario of a runner. */
export interface ScenarioStats {
  counter: number;
  commandsRun: number;
  assignmentsSeen: number;
  rejectionsSeen: number;
  audits: number;
  timersFired: number;
  factsSeen: Map<string, number>;
  channelStats: { perChannelAssignments: number; undeclared: number };
  policyStats: { aged: number; bySelection: Record<string, number> };
  /** Extremes: decisions for a contact of priority 0 or 9, and for an agent holding 10 times its capacity or more. */
  extremeStats: { extremePriority: number; wideShare: number };
  /**
   * Agents' own wrap-up times: wrap-ups begun for an agent's own time where the workspace's differs,
   * and own times removed (UpdateAgent wrapUpMs null, of an agent that had one).
   */
  ownWrapUpStats: { started: number; cleared: number };
  /**
   * Per routing feature, how many scenarios exercised it (a command the model took, a fact, a
   * decision): `commandFeatures` and the replay of decisions name them; shows what the generators reach.
   */
  features: Record<string, number>;
}
export const emptyStats = (): ScenarioStats => ({
  counter: 0,
  commandsRun: 0,
  assignmentsSeen: 0,
  rejectionsSeen: 0,
  audits: 0,
  timersFired: 0,
  factsSeen: new Map(),
  channelStats: { perChannelAssignments: 0, undeclared: 0 },
  policyStats: { aged: 0, bySelection: {} },
  extremeStats: { extremePriority: 0, wideShare: 0 },
  ownWrapUpStats: { started: 0, cleared: 0 },
  features: {},
});

/** The features a command the model took, and its facts, exercise (settings as they were before it). */
export function commandFeatures(ws: Workspace, command: Command, facts: readonly Fact[]): string[] {
  const out: string[] = [];
  const aged = ws.settings.priorityWeightMs !== undefined;
  const sel = ws.settings.agentSelection ?? 'longest-available';
  if (command.type === 'QueueContact') {
    if (command.preferredAgents) out.push('queue:preferred');
    if (command.steps) out.push('queue:steps');
    if (command.steps?.some((st) => st.priority !== undefined)) out.push('queue:steps-priority');
    if (command.maxWaitMs !== undefined) out.push('queue:own-maxWait');
    if (command.channel !== undefined) out.push('queue:channel');
    if (command.skills.some((k) => k.includes('#'))) out.push('queue:min-level');
    if (command.skills.some((k) => /#[45]$/.test(k))) out.push('queue:min-level-4-5');
    if (command.preferredAgents && command.steps) out.push('queue:preferred+steps');
  }
  if (command.type === 'CompleteContact' && command.agentId !== undefined) out.push('complete:agent-key');
  if (command.type === 'TransferContact' && ws.contacts.get(command.contactId)?.channel !== undefined)
    out.push('transfer:channel');
  if (command.type === 'ChangeSettings') {
    const queued = [...ws.contacts.values()].some((c) => c.state === 'queued');
    if (queued && aged && command.priorityWeightMs !== ws.settings.priorityWeightMs)
      out.push('settings:weight-changed-while-queued');
    if (command.priorityWeightMs !== undefined) out.push('settings:aging');
    if (command.offerTimeoutMs > 0) out.push('settings:offers');
    if (command.maxWaitMs !== null) out.push('settings:maxWait');
  }
  for (const f of facts) {
    out.push(`fact:${f.type}`);
    if (f.type === 'AssignmentRejected') out.push(`fact:AssignmentRejected:${f.reason}`);
    if (f.type === 'AssignmentExpired') out.push(`missed:${ws.settings.missedOfferPresence}`);
    if (f.type === 'WrapUpEnded' && f.early) out.push('fact:WrapUpEnded:early');
    if (aged && f.type !== 'SettingsChanged') out.push(`aged:${f.type}`);
    if (sel !== 'longest-available') out.push(`${sel}:${f.type}`);
  }
  return out;
}

/**
 * Plays scenarios in workspaces `<prefix>-<n>` (the prefix unique per run and suite, so a shared Redis
 * never sees a workspace twice); `raceClient` is the second dispatcher's connection. Counts go to `stats`.
 */
export function scenarioRunner(
  redis: RedisClient,
  raceClient: RedisClient,
  prefix: string,
  stats: ScenarioStats = emptyStats(),
): (s: Scenario) => Promise<void> {
  const { factsSeen, channelStats, policyStats, extremeStats, ownWrapUpStats } = stats;
  return async function runScenario(s: Scenario): Promise<void> {
    const workspace = `${prefix}-${++stats.counter}`;
    const features = new Set<string>();
    const keys = workspaceKeys(workspace);
    await ensureGroup(redis, workspace);
    let model: Workspace = emptyWorkspace;
    const expectedRejections: { command: string; status: number; target: string }[] = [];
    const queuedIds: string[] = [];
    let contacts = 0;
    const nextContact = () => `c${++contacts}`;
    const log: string[] = [];
    // Built again only when the log has grown (the checks after the rounds all quote it).
    let shown = { lines: -1, text: '' };
    const context = () => {
      if (shown.lines !== log.length)
        shown = {
          lines: log.length,
          text: `workspace ${workspace} ${JSON.stringify(s.pacing)}:\n${log.join('\n')}`,
        };
      return shown.text;
    };
    /** Appended commands the model has not applied yet, in stream order. */
    const pending: { position: string; command: Command }[] = [];
    let eventsRead = '0-0';
    let lastAppended = '0-0';
    const made: string[] = [];

    const applyCommand = (position: string, command: Command) => {
      const at = positionTime(position);
      const d = decide(model, command, at);
      if (isRight(d)) {
        for (const f of commandFeatures(model, command, d.right)) features.add(f);
        if (command.type === 'UpdateAgent' && command.wrapUpMs === null)
          if (model.agents.get(command.agentId)?.wrapUpMs !== undefined) ownWrapUpStats.cleared++;
        for (const f of d.right) {
          if (f.type === 'WrapUpStarted') {
            const own = model.agents.get(f.agentId)?.wrapUpMs;
            if (own !== undefined && own !== model.settings.wrapUpMs) ownWrapUpStats.started++;
          }
          model = evolve(model, f);
        }
      } else {
        if (d.left.title === 'Channel not declared') channelStats.undeclared++;
        expectedRejections.push({
          command: command.type,
          status: d.left.status,
          target: 'contactId' in command ? command.contactId : 'agentId' in command ? command.agentId : '',
        });
      }
      log.push(`${position} ${JSON.stringify(command)} ${isRight(d) ? 'ok' : d.left.status}`);
    };
    const applyUpTo = (position: string) => {
      while (pending[0] && comparePositions(pending[0].position, position) <= 0) {
        const next = pending.shift()!;
        applyCommand(next.position, next.command);
      }
    };

    /** Replays the new events: each decision must be rule 1's for the state at its basedOn. */
    const replay = async () => {
      for (;;) {
        const page = await readEvents(redis, workspace, {
          after: eventsRead,
          limit: 1000,
          types: new Set(['AssignmentMade']),
        });
        for (const e of page.events) {
          eventsRead = e.position;
          const basedOn = e.meta.basedOn as string | undefined;
          if (basedOn === undefined) expect(basedOn, `basedOn of ${e.position}\n${context()}`).toBeDefined();
          applyUpTo(basedOn!);
          const got = `${e.data.contactId as string}->${e.data.agentId as string}`;
          const want = nextAssignment(model);
          log.push(
            `  ${e.position} based on ${basedOn}: ${got} (rule 1: ${want ? `${want.contactId}->${want.agentId}` : 'none'})`,
          );
          const wanted = want ? `${want.contactId}->${want.agentId}` : 'none';
          // The context (the scenario's whole log so far) is built only for a failure.
          if (got !== wanted) expect(got, `decision at ${e.position}\n${context()}`).toBe(wanted);
          if (typeof model.agents.get(e.data.agentId as string)?.capacity === 'object')
            channelStats.perChannelAssignments++;
          if (model.contacts.get(e.data.contactId as string)?.key !== undefined) policyStats.aged++;
          const p = model.contacts.get(e.data.contactId as string)?.priority;
          if (p === 0 || p === 9) extremeStats.extremePriority++;
          const taker = model.agents.get(e.data.agentId as string);
          if (taker && occupancy(taker) >= 100_000_000) extremeStats.wideShare++;
          const sel = model.settings.agentSelection ?? 'longest-available';
          policyStats.bySelection[sel] = (policyStats.bySelection[sel] ?? 0) + 1;
          const taken = model.contacts.get(e.data.contactId as string)!;
          const holder = model.agents.get(e.data.agentId as string)!;
          features.add(`decided:${sel}`);
          if (taken.key !== undefined) features.add('decided:aged');
          if (typeof holder.capacity === 'object') features.add('decided:per-channel-capacity');
          if (taken.preferred !== undefined) features.add('decided:preferred');
          if (taken.skills.some((k) => k.includes('#'))) features.add('decided:min-level');
          if (model.settings.offerTimeoutMs > 0) features.add('decided:offer');
          if (taken.excluded?.length) features.add('decided:after-turned-down');
          if ((taken.step ?? 0) > 0) features.add('decided:after-step');
          model = evolve(model, {
            type: 'AssignmentMade',
            contactId: e.data.contactId as string,
            agentId: e.data.agentId as string,
            at: Date.parse(e.data.assignedAt as string),
          });
          made.push(got);
        }
        if (page.next === null || page.events.length === 0) return;
      }
    };

    const dispatchers = [redis, s.pacing.race ? raceClient : redis];
    const setup: Action[] = s.agents.map((a, i) => ({ kind: 'register', agent: i, ...a }));
    // A scenario that opens with settings has them before its agents register (channels first).
    const first = s.actions[0]?.kind === 'settings' ? s.actions.slice(0, 1) : [];
    const actions = [...first, ...setup, ...s.actions.slice(first.length)];
    let round = 0;
    // The auditor follows the log (each run replays what is new and compares the documents at the
    // new cut): after every round in small scenarios.
    const auditor = new WorkspaceAudit(redis, workspace, { idle: true });
    const auditEvery = actions.length > 120 ? 8 : 1;
    for (let i = 0; i < actions.length; round++) {
      const run = s.pacing.runs[round % s.pacing.runs.length]!;
      // The run's commands go out together on the one client, so Redis appends them in this order
      // (appendCommand sends its XADD in the call's own tick) without a round trip each. Each is
      // made from the model as the last dispatch left it, as when they were sent one by one.
      const sent: { command: Command; appended: Promise<Appended> }[] = [];
      const appendSent = async () => {
        await Promise.all(sent.map((x) => x.appended));
        for (const { command, appended } of sent.splice(0)) {
          const { position } = await appended;
          pending.push({ position, command });
          lastAppended = position;
          stats.commandsRun++;
        }
      };
      for (const action of actions.slice(i, i + run)) {
        if (action.kind === 'clock') {
          await appendSent();
          // Time passes; the clock turns what is due into commands, which the model applies in turn.
          await new Promise((r) => setTimeout(r, action.waitMs));
          await fireTimers(redis, workspace);
          const fired = (await redis.xrange(keys.commands, `(${lastAppended}`, '+')) as [string, string[]][];
          for (const [position, fields] of fired) {
            const f = new Map<string, string>();
            for (let j = 0; j + 1 < fields.length; j += 2) f.set(fields[j]!, fields[j + 1]!);
            expect(f.get('commandId')?.startsWith('timer:'), `${position} is a timer command`).toBe(true);
            pending.push({
              position,
              command: { type: f.get('type'), ...JSON.parse(f.get('command')!) } as Command,
            });
            lastAppended = position;
            stats.timersFired++;
          }
          continue;
        }
        const command = toCommand(action, model, queuedIds, nextContact);
        if (command.type === 'QueueContact' && !queuedIds.includes(command.contactId))
          queuedIds.push(command.contactId);
        sent.push({ command, appended: appendCommand(redis, { workspace, command }) });
      }
      await appendSent();
      i += run;
      await projectPending(redis, workspace, [], {
        ...defaultProjectorOptions,
        stepBudgetMs: s.pacing.stepBudgetMs,
      });
      const opts: DispatcherOptions = {
        ...defaultDispatcherOptions,
        batch: s.pacing.batches[round % s.pacing.batches.length]!,
        maxReads: s.pacing.maxReads,
        enumerateMax: s.pacing.enumerateMax,
        stepBudgetMs: s.pacing.stepBudgetMs,
      };
      await Promise.all(dispatchers.map((d) => dispatchPending(d, workspace, opts)));
      // Nothing moves until the next round's commands: the auditor reads alongside the replay.
      const auditing = round % auditEvery === 0 || i >= actions.length ? auditor.run() : undefined;
      // A failure of the replay's checks leaves the audit to finish unheeded.
      auditing?.catch(() => undefined);
      await replay();
      applyUpTo(await appliedPosition(redis, workspace));
      // Drained: nobody idles while a contact they could serve waits.
      const idle = nextAssignment(model);
      if (idle)
        expect(
          idle,
          `after round ${round}, ${idle.contactId} waits for ${idle.agentId}\n${context()}`,
        ).toBeUndefined();
      // And the auditor, from the log alone, agrees: every decision rule 1's, nobody idle.
      if (auditing) {
        const audit = await auditing;
        if (audit.violationCount > 0)
          expect(
            audit.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`),
            context(),
          ).toEqual([]);
        stats.audits++;
      }
    }
    expect(pending, context()).toEqual([]);
    // At rest from here: what is read below goes out together, and is checked in turn.
    const agentIds = [...AGENT_IDS, GHOST_AGENT, ...s.agents.map((_, i) => `agent-${i}`)];
    const contactIds = [...model.contacts.keys()];
    const sets = [undefined, ...CHANNELS].flatMap((channel) =>
      s.alphabet.map((skill) => ({ channel, skill })),
    );
    const [followed, whole, page, lifecycle, agentDocs, contactDocs, available, stored] = await Promise.all([
      auditor.run(),
      auditWorkspace(redis, workspace, { idle: true }),
      readEvents(redis, workspace, { limit: 100_000, types: new Set(['CommandRejected']) }),
      readEvents(redis, workspace, { limit: 100_000, types: LIFECYCLE_FACTS }),
      Promise.all(agentIds.map((id) => redis.hget(keys.agents, id))),
      Promise.all(contactIds.map((id) => redis.hget(keys.contacts, id))),
      Promise.all(
        sets.map(({ channel, skill }) =>
          readAvailability(redis, keys.workspace, channel === undefined ? skill : `${channel}/${skill}`),
        ),
      ),
      Promise.all([
        redis.hget(keys.contacts, 'nobody'),
        redis.zrange(keys.queue, 0, -1),
        redis.zrangebylex(keys.skillSetQueues, '-', '+'),
        redis.zrange(keys.skillSets, 0, -1),
        redis.zcard(keys.candidates),
        redis.hgetall(keys.agentSkillSets),
        redis.zrangebylex(keys.pools, '-', '+'),
        redis.zrangebylex(keys.poolHeads, '-', '+'),
        redis.zrange(keys.queueHeads, 0, -1),
        redis.zrangebylex(keys.agentIds, '-', '+'),
      ]),
    ]);
    const [
      nobody,
      queue,
      skillSetQueues,
      skillSets,
      candidates,
      agentSkillSets,
      pools,
      poolHeads,
      heads,
      ids,
    ] = stored;
    // The audit that followed the log agrees with one of the whole log at its end.
    const summary = (r: typeof whole) => ({
      violations: r.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`),
      counts: [r.commands, r.events, r.facts, r.rejections, r.assignments, r.decisionsChecked],
      state: r.state,
      last: [r.checkpoint, r.lastEvent],
    });
    expect(summary(followed), context()).toEqual(summary(whole));
    expect(whole.decisionsChecked, context()).toBe(made.length);

    const rejected = page.events.map((e) => {
      const r = e.data as CommandRejectedData;
      return { command: r.command, status: r.status, target: r.target ?? '' };
    });
    expect(rejected, context()).toEqual(expectedRejections);
    stats.assignmentsSeen += made.length;
    for (const f of features) stats.features[f] = (stats.features[f] ?? 0) + 1;
    stats.rejectionsSeen += rejected.length;
    // What the lifecycle made happen, by fact.
    for (const e of lifecycle.events) factsSeen.set(e.type, (factsSeen.get(e.type) ?? 0) + 1);

    // Documents: every agent id that ever existed, every contact.
    for (const [n, id] of agentIds.entries()) {
      const raw = agentDocs[n] ?? null;
      const m = model.agents.get(id);
      if (!m) {
        expect(raw, `${id} should not exist\n${context()}`).toBeNull();
        continue;
      }
      expect(raw, `${id} should exist\n${context()}`).not.toBeNull();
      const doc = JSON.parse(raw!) as AgentDoc;
      expect(
        {
          presence: doc.presence,
          state: doc.state,
          activeContacts: doc.activeContacts,
          skills: doc.skills,
          capacity: doc.capacity,
          since: doc._since ?? null,
          availableSince: doc.availableSince,
          wrapUpMs: doc.wrapUpMs ?? null,
          wrapUpUntil: doc.wrapUpUntil ?? null,
        },
        `agent ${id}\n${context()}`,
      ).toEqual({
        presence: m.presence,
        state: agentState(m),
        activeContacts: m.activeContacts,
        skills: m.skills,
        capacity: m.capacity,
        since: m.availableSince,
        availableSince: m.availableSince === null ? null : new Date(m.availableSince).toISOString(),
        wrapUpMs: m.wrapUpMs ?? null,
        wrapUpUntil: m.wrapUp === undefined ? null : new Date(m.wrapUp.until).toISOString(),
      });
    }
    for (const [n, id] of contactIds.entries()) {
      const m = model.contacts.get(id)!;
      const raw = contactDocs[n] ?? null;
      expect(raw, `contact ${id}`).not.toBeNull();
      const doc = JSON.parse(raw!) as ContactDoc;
      expect({ state: doc.state, agentId: doc.agentId }, `contact ${id}\n${context()}`).toEqual({
        state: m.state,
        agentId: m.agentId,
      });
    }
    expect(nobody).toBeNull();

    // The sets the dispatcher reads: availability by skill (scored by available-since), the queue.
    // Agents who take any channel under the bare skill; the others under "<channel>/<skill>".
    const leastOccupied = model.settings.agentSelection === 'least-occupied';
    for (const [n, { channel, skill }] of sets.entries()) {
      const name = channel === undefined ? skill : `${channel}/${skill}`;
      const inRedis = available[n]!.flatMap((a) => [a.agentId, String(a.since)]);
      const inModel = [...model.agents.values()]
        .filter((a) => a.skills.includes(skill))
        .flatMap((a) => {
          const since = channel === undefined ? a.availableSince : a.channelSince?.[channel];
          const any = typeof a.capacity === 'number';
          return since !== null && since !== undefined && any === (channel === undefined)
            ? [{ id: a.id, since, occ: leastOccupied ? occupancy(a) : 0 }]
            : [];
        })
        // The order routing takes them in (under least-occupied, the share in use first).
        .sort((a, b) => a.occ - b.occ || a.since - b.since || (a.id < b.id ? -1 : 1))
        .flatMap((a) => [a.id, String(a.since)]);
      expect(inRedis, `availability of ${name}\n${context()}`).toEqual(inModel);
    }
    const queuedModel = [...model.contacts.values()]
      .filter((c) => c.state === 'queued')
      .sort((a, b) => a.seq - b.seq)
      .map((c) => c.id);
    expect(queue, `queue\n${context()}`).toEqual(queuedModel);
    // Each skill set's queue, in routing order (priority, then arrival).
    const bySet = new Map<string, string[]>();
    for (const c of [...model.contacts.values()].filter((c) => c.state === 'queued').sort(contactOrder)) {
      const name = onChannel(c.skills, channelOf(c)).join(',');
      bySet.set(name, [...(bySet.get(name) ?? []), c.id]);
    }
    const setQueues = new Map<string, string[]>();
    for (const m of skillSetQueues) {
      const [name = '', , , id = ''] = m.split('|');
      setQueues.set(name, [...(setQueues.get(name) ?? []), id]);
    }
    expect(setQueues, `skill-set queues\n${context()}`).toEqual(bySet);
    expect(skillSets.sort(), `skill sets\n${context()}`).toEqual([...bySet.keys()].sort());
    expect(candidates, 'no candidate left after draining').toBe(0);
    // Distinct agent skill sets, and per skill how many hold it.
    const setCounts: Record<string, string> = {};
    for (const a of model.agents.values()) {
      const set = a.skills.join(',');
      setCounts[`s:${set}`] = String(Number(setCounts[`s:${set}`] ?? 0) + 1);
    }
    for (const key of Object.keys(setCounts))
      for (const skill of key.slice(2).split(','))
        setCounts[`k:${skill}`] = String(Number(setCounts[`k:${skill}`] ?? 0) + 1);
    expect(agentSkillSets, `agent skill sets\n${context()}`).toEqual(setCounts);
    // The agent ids' index (GET /agents's order): the registered agents, by id.
    expect(ids, `agent ids\n${context()}`).toEqual(
      [...model.agents.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
    );
    // Pool heads: the first member of each non-empty pool, under each skill of the pool.
    const firsts = new Map<string, string>();
    for (const m of pools) {
      const [set = '', since = '', id = ''] = m.split('|');
      if (!firsts.has(set)) firsts.set(set, `${since}|${id}`);
    }
    const derived = [...firsts].flatMap(([set, head]) =>
      set.split(',').map((skill) => `${skill}|${head} ${set}`),
    );
    expect(poolHeads.sort(), `pool heads\n${context()}`).toEqual(derived.sort());
    expect(heads.sort(), `queue heads\n${context()}`).toEqual([...bySet.keys()].sort());
  };
}
