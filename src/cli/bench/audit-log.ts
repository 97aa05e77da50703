/**
 * A workspace log made through the real path (append step, projector and dispatcher Lua steps),
 * for the audit workload and the auditor's tests: agents with one language and one or two areas
 * (capacity 1 or 2) take contacts in rounds; each round queues contacts (priorities 0..2, some with
 * attributes, some queued twice by id: 409), abandons a few, lets the dispatcher assign, then
 * completes what was assigned (plus a few completions of unknown contacts: 404), moves a few agents
 * away and back (and some to the state they are in: no fact), and changes a capacity now and then.
 */
import { appendCommand } from '../../adapters/redis/command-log.ts';
import type { StreamEntry } from '../../adapters/redis/event-log.ts';
import { workspaceKeys } from '../../adapters/redis/keys.ts';
import type { RedisClient } from '../../adapters/redis/scripts.ts';
import {
  type DispatcherOptions,
  defaultDispatcherOptions,
  dispatchPending,
} from '../../dispatcher/dispatcher.ts';
import type { Command } from '../../domain/commands.ts';
import { canonicalSkills } from '../../domain/values.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../projections/projector.ts';
import { EXPERTISE, LANGUAGES, pick, type Rng, seededRandom } from '../sim/random.ts';

export interface LogPlan {
  /** Stop once the event stream holds at least this many events. */
  readonly events: number;
  readonly agents: number;
  readonly seed: number;
  /** Contacts queued per round (default: the number of agents). */
  readonly perRound?: number;
  readonly dispatch?: Partial<DispatcherOptions>;
  readonly onRound?: (events: number) => void;
}

export interface LogMade {
  readonly commands: number;
  readonly events: number;
  readonly assignments: number;
}

const chance = (rng: Rng, p: number) => rng() < p;

export async function writeLog(redis: RedisClient, workspace: string, plan: LogPlan): Promise<LogMade> {
  const k = workspaceKeys(workspace);
  const rng = seededRandom(plan.seed);
  const dispatch = { ...defaultDispatcherOptions, ...plan.dispatch };
  await ensureGroup(redis, workspace);
  let commands = 0;
  let seen = '0-0';
  let assignments = 0;
  const send = async (batch: Command[]) => {
    commands += batch.length;
    for (let i = 0; i < batch.length; i += 1000) {
      const chunk = batch.slice(i, i + 1000);
      await Promise.all(
        chunk.map((command, j) =>
          appendCommand(redis, {
            workspace,
            command,
            ...(j % 3 === 0 ? { idempotencyKey: `k-${commands - batch.length + i + j}` } : {}),
          }),
        ),
      );
    }
    await projectPending(redis, workspace, [], { ...defaultProjectorOptions, batch: 1000 });
    await dispatchPending(redis, workspace, dispatch);
  };
  /** The contacts assigned since the last call. */
  const assigned = async (): Promise<string[]> => {
    const out: string[] = [];
    for (;;) {
      const page = (await redis.xrange(k.events, `(${seen}`, '+', 'COUNT', 10_000)) as StreamEntry[];
      for (const [id, f] of page) {
        seen = id;
        if (f[1] === 'AssignmentMade')
          out.push((JSON.parse(f[3] ?? '{}') as { data: { contactId: string } }).data.contactId);
      }
      if (page.length < 10_000) return out;
    }
  };

  const agents = Array.from({ length: plan.agents }, (_, i) => `agent-${i + 1}`);
  const setup: Command[] = agents.map((agentId) => {
    const areas = [pick(rng, EXPERTISE), ...(chance(rng, 0.3) ? [pick(rng, EXPERTISE)] : [])];
    const skills = canonicalSkills([pick(rng, LANGUAGES), ...areas]);
    return { type: 'RegisterAgent', agentId, skills, capacity: chance(rng, 0.2) ? 2 : 1 };
  });
  await send(setup);
  await send(agents.map((agentId) => ({ type: 'ChangeAgentState', agentId, state: 'available' })));
  let contacts = 0;
  const queued: string[] = [];
  const perRound = plan.perRound ?? plan.agents;
  for (;;) {
    const events = await redis.xlen(k.events);
    plan.onRound?.(events);
    if (events >= plan.events) break;
    const round: Command[] = [];
    for (let i = 0; i < perRound; i++) {
      const again = queued.length > 0 && chance(rng, 0.02);
      const contactId = again ? pick(rng, queued) : `contact-${++contacts}`;
      if (!again) queued.push(contactId);
      const skills = canonicalSkills([pick(rng, LANGUAGES), pick(rng, EXPERTISE)]);
      const attributes = chance(rng, 0.1)
        ? { attributes: { customer: `cust-${contacts}`, tier: i % 3 } }
        : {};
      round.push({ type: 'QueueContact', contactId, skills, priority: Math.floor(rng() * 3), ...attributes });
    }
    for (let i = 0; i < perRound / 20; i++)
      round.push({ type: 'AbandonContact', contactId: pick(rng, queued.slice(-perRound)) });
    await send(round);
    const done: Command[] = (await assigned()).map((contactId) => ({ type: 'CompleteContact', contactId }));
    assignments += done.length;
    if (chance(rng, 0.5)) done.push({ type: 'CompleteContact', contactId: `unknown-${contacts}` });
    for (let i = 0; i < Math.max(1, plan.agents / 20); i++) {
      const agentId = pick(rng, agents);
      const state = pick(rng, ['away', 'offline', 'available', 'available'] as const);
      done.push({ type: 'ChangeAgentState', agentId, state });
      if (state !== 'available') done.push({ type: 'ChangeAgentState', agentId, state: 'available' });
    }
    if (chance(rng, 0.1))
      done.push({ type: 'UpdateAgent', agentId: pick(rng, agents), capacity: chance(rng, 0.5) ? 1 : 2 });
    // What the completions free is assigned in this step; those assignments are read next round.
    await send(done);
  }
  await dispatchPending(redis, workspace, dispatch);
  return {
    commands,
    events: await redis.xlen(k.events),
    assignments: assignments + (await assigned()).length,
  };
}
