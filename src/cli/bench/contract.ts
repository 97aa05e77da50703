/**
 * `contract`: what the writes users see cost Redis per assignment cycle, alone, against the floor
 * step in the same Redis. `contacts` real cycles (the seed workload's: a contact queued, assigned
 * to the longest available agent, completed) are run through the real steps; then the stream
 * entries they wrote (commands, events, outcomes) and their documents' writes and reads are done
 * again by one plain Lua step (lua/contract-writes-5.lua) into keys of the bench's own, with none
 * of the routing keys: once with the texts as recorded, once with each document decoded when read
 * and encoded when written. The floor step (lua/floor-any.lua) runs as many times between them, in
 * alternating rounds. Each from Redis's commandstats, as the floor's anchor in `all` is: what no
 * cycle that keeps the same commands, events, outcomes and documents can cost less than, in floor
 * steps.
 */
import { Redis } from 'ioredis';
import { connectRedis } from '../../adapters/redis/client.ts';
import { stepAppend } from '../../adapters/redis/command-log.ts';
import { KEY_ROOT, workspaceKeys } from '../../adapters/redis/keys.ts';
import { luaScript, runLua } from '../../adapters/redis/scripts.ts';
import { defaultDispatcherOptions, dispatchPending } from '../../dispatcher/dispatcher.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../projections/projector.ts';
import { seededRandom } from '../sim/random.ts';
import { median, round } from '../sim/stats.ts';
import { FLOOR, type FloorKeys, floorSetUp } from './floor.ts';
import { redisStats } from './redis-time.ts';
import { decisionReader } from './seed.ts';
import {
  appendAndProject,
  assignable,
  availableCommands,
  type Note,
  queueCommands,
  registerCommands,
  seedAgents,
} from './workspace.ts';

export const CONTRACT = luaScript('benchContract', new URL('./lua/contract-writes-5.lua', import.meta.url));

export interface ContractOptions {
  readonly agents: number;
  /** Cycles to record (contacts queued; those no agent can take are not queued). */
  readonly contacts: number;
  readonly seed: number;
}

/** Rounds of (floor, texts, encoded), the order alternating; figures are their medians. */
export const CONTRACT_ROUNDS = 5;
/** Connections the floor step runs from. */
const FLOOR_CLIENTS = 16;
/** Cycles written again per call of the step. */
const CYCLES_PER_CALL = 64;

type Entry = [string, string[]];

export interface ContractFigures {
  readonly cycles: number;
  /** What one cycle wrote that users see: stream entries by stream, document writes and reads. */
  readonly perCycle: {
    readonly commands: number;
    readonly events: number;
    readonly outcomes: number;
    readonly documentWrites: number;
    readonly documentReads: number;
    readonly bytesWritten: number;
  };
  /** Redis µs per cycle (commandstats) of those writes, documents read and written as texts. */
  readonly textsUsPerCycle: number | null;
  /** The same, each document decoded when read and encoded when written. */
  readonly encodedUsPerCycle: number | null;
  /** Redis µs per floor step (commandstats), in the same rounds. */
  readonly floorUsPerStep: number | null;
  readonly textsInFloorSteps: number | null;
  readonly encodedInFloorSteps: number | null;
  /** As texts, without the outcome entries: users do not read that stream (requests wait on it). */
  readonly withoutOutcomesUsPerCycle: number | null;
  readonly withoutOutcomesInFloorSteps: number | null;
  readonly rounds: readonly Round[];
}

/** One round's Redis µs per cycle of each phase (per step for the floor). */
interface Round {
  floor: number;
  texts: number;
  withoutOutcomes: number;
  encoded: number;
}

export async function contractWorkload(
  url: string,
  workspace: string,
  o: ContractOptions,
  note: Note,
): Promise<ContractFigures> {
  const redis = connectRedis({ url });
  const tag = `{bench-contract-${Date.now()}}`;
  const scratch = ['commands', 'events', 'outcomes', 'contacts', 'agents'].map(
    (s) => `${KEY_ROOT}:${tag}:${s}`,
  );
  let floor: FloorKeys | undefined;
  const floorClients: Redis[] = [];
  try {
    const recorded = await recordCycles(redis, workspace, o, note);
    const { cycles, batches, agentDocs } = recorded;
    note(`writing again what ${cycles} cycles wrote, and the floor step, in ${CONTRACT_ROUNDS} rounds`);
    floor = await floorSetUp(redis as Redis, {
      agents: o.agents,
      count: cycles * CONTRACT_ROUNDS,
      seed: o.seed,
    });
    const { keys: floorKeys, skills } = floor;
    for (let i = 0; i < FLOOR_CLIENTS; i++)
      floorClients.push(new Redis(url, { maxRetriesPerRequest: 2, enableAutoPipelining: false }));
    // Redis's own time in the steps (INFO commandstats, reset before each phase): SLOWLOG at a 0
    // threshold would log every command a step runs, inside the step's time.
    const timed = async (run: () => Promise<void>): Promise<number> => {
      await redis.unlink(...scratch);
      // The agents exist before their first read, as in the workspace.
      if (agentDocs.length > 0) await redis.hset(scratch[4]!, ...agentDocs);
      await redis.config('RESETSTAT');
      await run();
      return (await redisStats(redis)).evalUs / cycles;
    };
    const writes = (mode: 'texts' | 'encoded' | 'no-outcomes') => async () => {
      for (const args of batches) await runLua(redis, CONTRACT, scratch, [mode, ...args]);
      // Everything recorded was written again (but the outcomes, without them), and nothing else.
      const lengths = await Promise.all(scratch.slice(0, 3).map((key) => redis.xlen(key)));
      const wanted = mode === 'no-outcomes' ? [...recorded.entries.slice(0, 2), 0] : recorded.entries;
      if (lengths.join() !== wanted.join())
        throw new Error(
          `${mode}: wrote ${lengths.join(', ')} stream entries again, expected ${wanted.join(', ')}`,
        );
    };
    const phases = {
      // From several connections, as `floor` runs it: Redis runs the steps back to back.
      floor: () =>
        timed(async () => {
          let left = cycles;
          await Promise.all(
            floorClients.map(async (c) => {
              while (left-- > 0) await runLua(c, FLOOR, floorKeys, skills);
            }),
          );
        }),
      texts: () => timed(writes('texts')),
      encoded: () => timed(writes('encoded')),
      withoutOutcomes: () => timed(writes('no-outcomes')),
    };
    const rounds: Round[] = [];
    for (let r = 0; r < CONTRACT_ROUNDS; r++) {
      const order: (keyof Round)[] = ['floor', 'texts', 'withoutOutcomes', 'encoded'];
      if (r % 2 === 1) order.reverse();
      const got = {} as Record<keyof Round, number>;
      for (const p of order) got[p] = round(await phases[p](), 1)!;
      rounds.push(got);
    }
    const med = (k: keyof Round) => median(rounds.map((x) => x[k]));
    const floorUs = med('floor');
    const inFloor = (v: number | null) => (v === null || !floorUs ? null : round(v / floorUs, 2));
    return {
      cycles,
      perCycle: recorded.perCycle,
      textsUsPerCycle: round(med('texts'), 1),
      encodedUsPerCycle: round(med('encoded'), 1),
      floorUsPerStep: round(floorUs, 1),
      textsInFloorSteps: inFloor(med('texts')),
      withoutOutcomesUsPerCycle: round(med('withoutOutcomes'), 1),
      withoutOutcomesInFloorSteps: inFloor(med('withoutOutcomes')),
      encodedInFloorSteps: inFloor(med('encoded')),
      rounds,
    };
  } finally {
    await redis.unlink(...scratch).catch(() => {});
    await floor?.drop();
    redis.disconnect();
    for (const c of floorClients) c.disconnect();
  }
}

/**
 * Runs the cycles through the real steps and gathers what they wrote: the step's arguments for
 * each batch of cycles, and the agents' documents (field, value, ...) as they were at the end.
 */
async function recordCycles(
  redis: ReturnType<typeof connectRedis>,
  workspace: string,
  o: ContractOptions,
  note: Note,
) {
  const k = workspaceKeys(workspace);
  const rng = seededRandom(o.seed);
  const agents = seedAgents(o.agents, rng);
  const contacts = assignable(agents, queueCommands(o.contacts, rng));
  note(`running ${contacts.length} cycles through the real steps (${o.agents} agents)`);
  await ensureGroup(redis, workspace);
  await appendAndProject(redis, workspace, [...registerCommands(agents), ...availableCommands(agents)]);
  const last = async (key: string) =>
    ((await redis.xrevrange(key, '+', '-', 'COUNT', 1)) as Entry[])[0]?.[0] ?? '0-0';
  const from = {
    commands: await last(k.commands),
    events: await last(k.events),
    outcomes: await last(k.outcomes),
  };
  await appendAndProject(redis, workspace, contacts);
  const take = decisionReader(workspace, from.events);
  const projectOpts = { ...defaultProjectorOptions, batch: 1000 };
  for (let idle = 0; idle < 3; ) {
    const made = await dispatchPending(redis, workspace, defaultDispatcherOptions);
    const done = await take(redis);
    const entries = done.map(({ contactId }) =>
      stepAppend({ workspace, command: { type: 'CompleteContact', contactId } }),
    );
    const applied = await projectPending(
      redis,
      workspace,
      [],
      projectOpts,
      undefined,
      entries.length > 0 ? { entries, onAppended: () => {} } : undefined,
    );
    idle = made === 0 && done.length === 0 && applied === 0 ? idle + 1 : 0;
  }
  const after = async (key: string, position: string) =>
    (await redis.xrange(key, `(${position}`, '+')) as Entry[];
  const streams = [
    await after(k.commands, from.commands),
    await after(k.events, from.events),
    await after(k.outcomes, from.outcomes),
  ];
  const completed = streams[1]!.flatMap(([, f]) => {
    if (f[1] !== 'ContactCompleted') return [];
    const d = (JSON.parse(f[3] ?? '{}') as { data?: { contactId?: string; agentId?: string } }).data;
    return d?.contactId && d.agentId ? [{ contactId: d.contactId, agentId: d.agentId }] : [];
  });
  const cycles = completed.length;
  if (cycles !== contacts.length)
    throw new Error(`${cycles} of the ${contacts.length} contacts queued were assigned and completed`);
  const contactDocs = await redis.hmget(k.contacts, ...completed.map((c) => c.contactId));
  const agentIds = [...new Set(completed.map((c) => c.agentId))];
  const agentTexts = await redis.hmget(k.agents, ...agentIds);
  const agentText = new Map(agentIds.map((id, i) => [id, agentTexts[i] ?? '{}']));

  // One call per CYCLES_PER_CALL cycles: its share of each stream's entries, and its cycles'
  // document operations in their order (contact written when queued; contact and agent read and
  // written when assigned, and again when completed).
  const batches: (string | number)[][] = [];
  let bytes = 0;
  for (let first = 0; first < cycles; first += CYCLES_PER_CALL) {
    const end = Math.min(cycles, first + CYCLES_PER_CALL);
    const args: (string | number)[] = [];
    const share = streams.map((s) =>
      s.slice(Math.floor((first * s.length) / cycles), Math.floor((end * s.length) / cycles)),
    );
    args.push(share.reduce((a, s) => a + s.length, 0));
    share.forEach((entries, stream) => {
      for (const [, fields] of entries) {
        args.push(stream + 1, fields.length, ...fields);
        for (const f of fields) bytes += Buffer.byteLength(f);
      }
    });
    const ops: (string | number)[] = [];
    for (let i = first; i < end; i++) {
      const { contactId, agentId } = completed[i]!;
      const c = contactDocs[i] ?? '{}';
      const a = agentText.get(agentId)!;
      ops.push('w', 4, contactId, c);
      for (let twice = 0; twice < 2; twice++)
        ops.push('r', 4, contactId, 'r', 5, agentId, 'w', 4, contactId, c, 'w', 5, agentId, a);
      bytes += 3 * Buffer.byteLength(c) + 2 * Buffer.byteLength(a);
    }
    args.push(ops.length === 0 ? 0 : (end - first) * 9, ...ops);
    batches.push(args);
  }
  const per = (n: number) => round(n / cycles, 2) ?? 0;
  return {
    cycles,
    batches,
    entries: streams.map((s) => s.length),
    agentDocs: [...agentText].flat(),
    perCycle: {
      commands: per(streams[0]!.length),
      events: per(streams[1]!.length),
      outcomes: per(streams[2]!.length),
      documentWrites: 5,
      documentReads: 4,
      bytesWritten: Math.round(bytes / cycles),
    },
  };
}
