/**
 * What one projector command costs as its workspace grows. Every command type is applied once, as
 * a step of its own, in a small workspace (50 agents available in one pool, 50 contacts queued in
 * one queue nobody serves, 50 finished) and in a large one (5,000, 5,000 and 2,000), in turn; the
 * Redis calls each step makes are counted from SLOWLOG (a 0 threshold logs each call a Lua step
 * runs) and its time read from the step's own entry. A step that walked the pool, the queue or the
 * finished contacts would make more calls (or take far longer) at the large size: none does, and
 * each makes the same calls at both sizes. A contact turned down by many agents remembers the last
 * 100 (its `excludedAgents`), so its decision and its rejections cost the same past them.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { parseFields } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { defaultDispatcherOptions, dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { MAX_EXCLUDED_AGENTS } from '../../src/domain/model.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

type SlowlogEntry = [id: number, at: number, us: number, args: string[], client: string, name: string];

const SCRIPT_CALLS = new Set(['fcall', 'evalsha', 'eval', 'evalsha_ro', 'eval_ro', 'fcall_ro']);

interface StepCost {
  /** The calls the step's Lua made (the script call itself not counted), by command name. */
  readonly calls: number;
  readonly byCommand: Record<string, number>;
  /** The step's time as Redis measured it, µs. */
  readonly us: number;
  /** The facts the step appended, by type. */
  readonly facts: string[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('a projector command costs the same in a small and in a large workspace', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  const projectorOpts = { ...defaultProjectorOptions, batch: 1_000 };

  async function appendAll(redis: RedisClient, workspace: string, commands: Command[]): Promise<void> {
    for (let start = 0; start < commands.length; start += 2_000) {
      // Issued in order and auto-pipelined by the client.
      await Promise.all(
        commands.slice(start, start + 2_000).map((command) => appendCommand(redis, { workspace, command })),
      );
      await projectPending(redis, workspace, [], projectorOpts);
    }
  }

  async function setUp(workspace: string, n: { agents: number; queued: number; finished: number }) {
    const { redis } = suite;
    await ensureGroup(redis, workspace);
    const commands: Command[] = [
      {
        type: 'ChangeSettings',
        offerTimeoutMs: 60_000,
        wrapUpMs: 0,
        missedOfferPresence: 'away',
        maxWaitMs: null,
        channels: ['chat', 'voice'],
      },
    ];
    for (let i = 1; i <= n.agents; i++)
      commands.push({ type: 'RegisterAgent', agentId: `a${i}`, skills: ['s'], capacity: 1 });
    for (let i = 1; i <= n.agents; i++)
      commands.push({ type: 'ChangeAgentState', agentId: `a${i}`, state: 'available' });
    // Contacts nobody can serve: one queue of them, and finished ones.
    for (let i = 1; i <= n.queued; i++)
      commands.push({ type: 'QueueContact', contactId: `q${i}`, skills: ['t'], priority: 0 });
    for (let i = 1; i <= n.finished; i++)
      commands.push({ type: 'QueueContact', contactId: `f${i}`, skills: ['t'], priority: 1 });
    for (let i = 1; i <= n.finished; i++) commands.push({ type: 'AbandonContact', contactId: `f${i}` });
    await appendAll(redis, workspace, commands);
    expect(await dispatchPending(redis, workspace, defaultDispatcherOptions)).toBe(0);
    const k = workspaceKeys(workspace);
    expect(await redis.zcard(k.queue)).toBe(n.queued);
    expect(await redis.zcard(k.finished)).toBe(n.finished);
  }

  /** What the one Lua step `run` sends costs, and the calls it makes (their arguments). */
  async function during(
    run: () => Promise<unknown>,
    /** Whether `run` sends one step (a dispatch may send a second, to find it has nothing to do). */
    one = true,
  ): Promise<{ cost: Omit<StepCost, 'facts'>; args: string[][] }> {
    const { admin } = suite;
    await admin.config('SET', 'slowlog-log-slower-than', '0');
    await admin.config('SET', 'slowlog-max-len', '100000');
    await admin.slowlog('RESET');
    let log: SlowlogEntry[];
    try {
      await run();
      log = ((await admin.slowlog('GET', '-1')) as SlowlogEntry[]).reverse();
    } finally {
      await admin.config('SET', 'slowlog-log-slower-than', '10000');
      await admin.slowlog('RESET');
    }
    const name = (e: SlowlogEntry) => String(e[3][0]).toLowerCase();
    // A Lua step's calls are logged before the step's own entry (logged when it ends): each step
    // with the calls logged since the one before. The costliest step is the one measured.
    const steps: { us: number; calls: string[][] }[] = [];
    let calls: string[][] = [];
    for (const e of log) {
      if (SCRIPT_CALLS.has(name(e))) {
        steps.push({ us: e[2], calls });
        calls = [];
      } else if (name(e) !== 'slowlog') calls.push(e[3]);
    }
    if (one) expect(steps).toHaveLength(1);
    else expect(steps.length).toBeGreaterThanOrEqual(1);
    const costliest = steps.reduce((a, b) => (b.us > a.us ? b : a));
    const byCommand: Record<string, number> = {};
    for (const c of costliest.calls) {
      const n = String(c[0]).toUpperCase();
      byCommand[n] = (byCommand[n] ?? 0) + 1;
    }
    return { cost: { calls: costliest.calls.length, byCommand, us: costliest.us }, args: costliest.calls };
  }

  /** One command applied as a step of its own: what the step cost. */
  async function step(workspace: string, command: Command): Promise<StepCost> {
    const { redis } = suite;
    const k = workspaceKeys(workspace);
    await appendCommand(redis, { workspace, command });
    const last = (await redis.xrevrange(k.events, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
    const { cost } = await during(async () =>
      expect(await projectPending(redis, workspace, [], projectorOpts)).toBe(1),
    );
    const facts = (await redis.xrange(k.events, `(${last}`, '+')).map(([, f]) => parseFields(f).type!);
    return { ...cost, facts };
  }

  const doc = async (workspace: string, kind: 'agents' | 'contacts', id: string) =>
    JSON.parse((await suite.redis.hget(workspaceKeys(workspace)[kind], id)) ?? '{}') as Record<
      string,
      number
    >;

  const dispatch = async (workspace: string, made: number) =>
    expect(await dispatchPending(suite.redis, workspace, defaultDispatcherOptions)).toBe(made);

  /**
   * Each probe: what to do in a workspace first (unmeasured), then the command measured, and the
   * facts its step must append (so the probe takes the path it names, not a refusal).
   */
  interface Probe {
    readonly name: string;
    readonly before?: (ws: string) => Promise<void>;
    readonly command: (ws: string) => Promise<Command> | Command;
    readonly facts: string[];
  }

  const settings = (more: Partial<Extract<Command, { type: 'ChangeSettings' }>>): Command => ({
    type: 'ChangeSettings',
    offerTimeoutMs: 60_000,
    wrapUpMs: 0,
    missedOfferPresence: 'away',
    maxWaitMs: null,
    channels: ['chat', 'voice'],
    ...more,
  });

  const probes: Probe[] = [
    {
      name: 'register an agent',
      command: () => ({ type: 'RegisterAgent', agentId: 'p1', skills: ['s'], capacity: 1 }),
      facts: ['AgentRegistered'],
    },
    {
      name: 'an agent joins a large pool',
      command: () => ({ type: 'ChangeAgentState', agentId: 'p1', state: 'available' }),
      facts: ['AgentStateChanged'],
    },
    {
      name: 'its skills change (out of the large pool)',
      command: () => ({ type: 'UpdateAgent', agentId: 'p1', skills: ['s', 'u'] }),
      facts: ['AgentUpdated'],
    },
    {
      name: 'its skills change back (into the large pool)',
      command: () => ({ type: 'UpdateAgent', agentId: 'p1', skills: ['s'] }),
      facts: ['AgentUpdated'],
    },
    {
      name: 'its capacity becomes per channel',
      command: () => ({ type: 'UpdateAgent', agentId: 'p1', capacity: { chat: 2, voice: 1 } }),
      facts: ['AgentUpdated'],
    },
    {
      name: "the large pool's head goes away",
      command: () => ({ type: 'ChangeAgentState', agentId: 'a1', state: 'away' }),
      facts: ['AgentStateChanged'],
    },
    {
      name: 'it comes back (the tail of the pool)',
      command: () => ({ type: 'ChangeAgentState', agentId: 'a1', state: 'available' }),
      facts: ['AgentStateChanged'],
    },
    {
      name: "the pool's head is removed",
      // Agents made available in the same millisecond sort by id ("a10" before "a2"): the head read.
      command: async (ws) => {
        const head = await suite.redis.zrangebylex(workspaceKeys(ws).pools, '[s|', '(s|\xff', 'LIMIT', 0, 1);
        return { type: 'RemoveAgent', agentId: head[0]!.split('|')[2]! };
      },
      facts: ['AgentRemoved'],
    },
    {
      name: 'a contact queued behind a large queue',
      command: () => ({ type: 'QueueContact', contactId: 'n1', skills: ['t'], priority: 0 }),
      facts: ['ContactQueued'],
    },
    {
      name: "the large queue's head abandons",
      command: () => ({ type: 'AbandonContact', contactId: 'q1' }),
      facts: ['ContactAbandoned'],
    },
    {
      name: 'its tail abandons',
      command: () => ({ type: 'AbandonContact', contactId: 'n1' }),
      facts: ['ContactAbandoned'],
    },
    {
      name: 'settings change (a channel added, offers shorter)',
      command: () => settings({ channels: ['chat', 'email', 'voice'], offerTimeoutMs: 30_000, wrapUpMs: 1 }),
      facts: ['SettingsChanged'],
    },
    {
      name: 'priority aging refused while contacts are queued',
      command: () => settings({ channels: ['chat', 'email', 'voice'], priorityWeightMs: 1_000 }),
      facts: ['CommandRejected'],
    },
    {
      name: 'least-occupied refused while agents are available',
      command: () => settings({ channels: ['chat', 'email', 'voice'], agentSelection: 'least-occupied' }),
      facts: ['CommandRejected'],
    },
    {
      name: 'an offer rejected (the contact back in its queue)',
      before: async (ws) => {
        await appendCommand(suite.redis, {
          workspace: ws,
          command: { type: 'QueueContact', contactId: 'o1', skills: ['s'], priority: 0 },
        });
        await projectPending(suite.redis, ws, [], projectorOpts);
        await dispatch(ws, 1);
      },
      command: async (ws) => ({
        type: 'RejectOffer',
        contactId: 'o1',
        agentId: String((await doc(ws, 'contacts', 'o1')).agentId),
      }),
      facts: ['AssignmentRejected'],
    },
    {
      name: 'an offer accepted',
      before: (ws) => dispatch(ws, 1),
      command: async (ws) => ({
        type: 'AcceptOffer',
        contactId: 'o1',
        agentId: String((await doc(ws, 'contacts', 'o1')).agentId),
      }),
      facts: ['AssignmentAccepted'],
    },
    {
      name: 'an assigned contact transferred (wrap-up started)',
      command: () => ({ type: 'TransferContact', contactId: 'o1', skills: ['s'], priority: 1 }),
      facts: ['ContactTransferred', 'WrapUpStarted'],
    },
    {
      name: 'a wrap-up ends',
      before: () => sleep(5),
      command: async (ws) => {
        const list = await suite.redis.xrevrange(workspaceKeys(ws).events, '+', '-', 'COUNT', 1);
        const started = JSON.parse(parseFields(list[0]![1]).event!) as {
          data: { agentId: string; wrapUp: number };
        };
        return { type: 'EndWrapUp', agentId: started.data.agentId, wrapUp: started.data.wrapUp };
      },
      facts: ['WrapUpEnded'],
    },
    {
      name: 'an assigned contact completed',
      before: async (ws) => {
        await dispatch(ws, 1);
        const o1 = await doc(ws, 'contacts', 'o1');
        await appendCommand(suite.redis, {
          workspace: ws,
          command: { type: 'AcceptOffer', contactId: 'o1', agentId: String(o1.agentId) },
        });
        await projectPending(suite.redis, ws, [], projectorOpts);
      },
      command: () => ({ type: 'CompleteContact', contactId: 'o1' }),
      facts: ['ContactCompleted', 'WrapUpStarted'],
    },
    {
      name: 'an agent holding an offer goes away (the offer withdrawn)',
      before: async (ws) => {
        await appendCommand(suite.redis, {
          workspace: ws,
          command: { type: 'QueueContact', contactId: 'o2', skills: ['s'], priority: 0 },
        });
        await projectPending(suite.redis, ws, [], projectorOpts);
        await dispatch(ws, 1);
      },
      command: async (ws) => ({
        type: 'ChangeAgentState',
        agentId: String((await doc(ws, 'contacts', 'o2')).agentId),
        state: 'away',
      }),
      facts: ['AssignmentRejected', 'AgentStateChanged'],
    },
    {
      name: 'an offer expires (the agent goes away)',
      before: async (ws) => {
        await appendCommand(suite.redis, {
          workspace: ws,
          command: settings({ offerTimeoutMs: 1, channels: ['chat', 'email', 'voice'] }),
        });
        await projectPending(suite.redis, ws, [], projectorOpts);
        await dispatch(ws, 1);
        await sleep(5);
      },
      command: async (ws) => ({
        type: 'ExpireOffer',
        contactId: 'o2',
        offer: (await doc(ws, 'contacts', 'o2'))._offer!,
      }),
      facts: ['AssignmentExpired', 'AgentStateChanged'],
    },
    {
      name: 'an offered contact abandons',
      before: (ws) => dispatch(ws, 1),
      command: () => ({ type: 'AbandonContact', contactId: 'o2' }),
      facts: ['ContactAbandoned'],
    },
    {
      name: 'a contact expires',
      before: async (ws) => {
        await appendCommand(suite.redis, {
          workspace: ws,
          command: { type: 'QueueContact', contactId: 'x1', skills: ['t'], priority: 0, maxWaitMs: 1 },
        });
        await projectPending(suite.redis, ws, [], projectorOpts);
        await sleep(5);
      },
      command: async (ws) => ({
        type: 'ExpireContact',
        contactId: 'x1',
        seq: (await doc(ws, 'contacts', 'x1'))._seq!,
      }),
      facts: ['ContactExpired'],
    },
    {
      name: 'a routing step is due',
      before: async (ws) => {
        await appendCommand(suite.redis, {
          workspace: ws,
          command: {
            type: 'QueueContact',
            contactId: 'y1',
            skills: ['t'],
            priority: 0,
            steps: [{ afterMs: 1, skills: ['t', 'v'] }],
          },
        });
        await projectPending(suite.redis, ws, [], projectorOpts);
        await sleep(5);
      },
      command: async (ws) => ({
        type: 'AdvanceStep',
        contactId: 'y1',
        seq: (await doc(ws, 'contacts', 'y1'))._seq!,
        step: 1,
      }),
      facts: ['ContactStepped'],
    },
    {
      name: 'a preference ends',
      before: async (ws) => {
        await appendCommand(suite.redis, {
          workspace: ws,
          command: {
            type: 'QueueContact',
            contactId: 'z1',
            skills: ['t'],
            priority: 0,
            preferredAgents: ['a7'],
            preferredForMs: 1,
          },
        });
        await projectPending(suite.redis, ws, [], projectorOpts);
        await sleep(5);
      },
      command: async (ws) => ({
        type: 'EndPreference',
        contactId: 'z1',
        seq: (await doc(ws, 'contacts', 'z1'))._seq!,
      }),
      facts: ['PreferenceEnded'],
    },
    {
      name: 'finished contacts forgotten',
      command: () => ({ type: 'ForgetContacts', keepMs: 0, max: 5 }),
      facts: ['ContactsForgotten'],
    },
  ];

  it('each command type makes the same Redis calls with 5,000 agents and 5,000 queued contacts as with 50', async () => {
    const small = `cost-small-${run}`;
    const large = `cost-large-${run}`;
    await setUp(small, { agents: 50, queued: 50, finished: 100 });
    await setUp(large, { agents: 5_000, queued: 5_000, finished: 2_000 });
    const rows: { probe: string; small: StepCost; large: StepCost }[] = [];
    for (const probe of probes) {
      const got: StepCost[] = [];
      for (const ws of [small, large]) {
        await probe.before?.(ws);
        got.push(await step(ws, await probe.command(ws)));
      }
      rows.push({ probe: probe.name, small: got[0]!, large: got[1]! });
    }
    console.log(
      JSON.stringify(
        rows.map((r) => ({
          probe: r.probe,
          calls: [r.small.calls, r.large.calls],
          us: [r.small.us, r.large.us],
        })),
      ),
    );
    for (const [i, r] of rows.entries()) {
      expect({ probe: r.probe, facts: r.small.facts }).toEqual({ probe: r.probe, facts: probes[i]!.facts });
      expect({ probe: r.probe, facts: r.large.facts }).toEqual({ probe: r.probe, facts: probes[i]!.facts });
      expect({ probe: r.probe, byCommand: r.large.byCommand }).toEqual({
        probe: r.probe,
        byCommand: r.small.byCommand,
      });
    }
    const total = (side: 'small' | 'large') => rows.reduce((s, r) => s + r[side].us, 0);
    expect(total('large')).toBeLessThan(3 * total('small') + 5_000);
  }, 120_000);

  /**
   * A contact turned down by many agents: each agent who rejects it (or lets its offer expire, or
   * goes away while it is offered) joins its `excludedAgents`, up to every agent of the workspace.
   * `k` agents reject it in turn; then the dispatch step that offers it once more, and the
   * projector step of that offer's rejection, are measured.
   */
  async function turnedDown(workspace: string, k: number) {
    const { redis } = suite;
    await ensureGroup(redis, workspace);
    const agents = Array.from({ length: k + 2 }, (_, i) => `e${i + 1}`);
    await appendAll(redis, workspace, [
      settings({}),
      ...agents.map((id): Command => ({ type: 'RegisterAgent', agentId: id, skills: ['s'], capacity: 1 })),
      ...agents.map((id): Command => ({ type: 'ChangeAgentState', agentId: id, state: 'available' })),
      { type: 'QueueContact', contactId: 'r1', skills: ['s'], priority: 0 },
    ]);
    const reject = async () => {
      const agentId = String((await doc(workspace, 'contacts', 'r1')).agentId);
      await appendCommand(redis, { workspace, command: { type: 'RejectOffer', contactId: 'r1', agentId } });
    };
    for (let i = 0; i < k; i++) {
      await dispatch(workspace, 1);
      await reject();
      await projectPending(redis, workspace, [], projectorOpts);
    }
    expect(
      ((await doc(workspace, 'contacts', 'r1')) as { excludedAgents?: string[] }).excludedAgents,
    ).toHaveLength(Math.min(k, MAX_EXCLUDED_AGENTS));
    const decision = await during(() => dispatch(workspace, 1), false);
    await reject();
    const rejection = await during(async () =>
      expect(await projectPending(redis, workspace, [], projectorOpts)).toBe(1),
    );
    // The pool members the decision read past the agents who turned the contact down.
    const poolReads = decision.args
      .filter((a) => a[0]!.toUpperCase() === 'ZRANGEBYLEX' && a[1] === workspaceKeys(workspace).pools)
      .map((a) => Number(a[6]));
    return { decision: decision.cost, rejection: rejection.cost, poolReads };
  }

  // A contact remembers the last MAX_EXCLUDED_AGENTS (100) agents who turned it down: a decision
  // for it reads at most one pool member more (dispatch-14.lua `first_not_excluded`, `exclusions`)
  // and its document stays that small. Before, every agent who turned it down was kept: 300 of them
  // made its decision read 301 pool members and each rejection rewrite them all.
  it('a contact turned down by 300 agents costs a decision and a rejection what one turned down by 100 does', async () => {
    const small = await turnedDown(`down-small-${run}`, MAX_EXCLUDED_AGENTS);
    const large = await turnedDown(`down-large-${run}`, 300);
    const said = JSON.stringify({ small, large });
    expect(Math.max(...small.poolReads), said).toBe(MAX_EXCLUDED_AGENTS + 1);
    expect(Math.max(...large.poolReads), said).toBe(MAX_EXCLUDED_AGENTS + 1);
    expect(large.decision.calls, said).toBeLessThanOrEqual(small.decision.calls + 4);
    expect(large.rejection.calls, said).toBeLessThanOrEqual(small.rejection.calls + 2);
    expect(large.decision.us, said).toBeLessThan(3 * small.decision.us + 200);
    expect(large.rejection.us, said).toBeLessThan(3 * small.rejection.us + 200);
  }, 120_000);
});
