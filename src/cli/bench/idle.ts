/**
 * `idle`: agents freeing up beside idle colleagues while contacts none of them can serve wait.
 * `agents` agents holding A are available and as many contacts needing A and Z are queued (nobody
 * holds Z); then `cycles` times: a contact needing A arrives, an idle agent takes it, completes it
 * and is idle again. Each command goes through the real append and projector steps on its own, and
 * the dispatcher runs only when the wake signal says so, as deployed. An agent joining available
 * agents of its own pool serves what they serve (docs/ROUTING.md, candidates), so a cycle needs one
 * wake-up and one dispatch step (the arrival's), not two.
 */
import { appendCommand } from '../../adapters/redis/command-log.ts';
import { workspaceKeys } from '../../adapters/redis/keys.ts';
import type { RedisClient } from '../../adapters/redis/scripts.ts';
import { dispatchPending } from '../../dispatcher/dispatcher.ts';
import type { Command } from '../../domain/commands.ts';
import { ensureGroup, projectPending } from '../../projections/projector.ts';
import { commandCalls, mainThreadCpuUs } from './redis-time.ts';
import { at, type RowMaker, row } from './report.ts';
import type { Note } from './workspace.ts';

export interface IdleOptions {
  readonly agents: number;
  readonly cycles: number;
}

export interface IdleFigures {
  readonly cycles: number;
  readonly assignments: number;
  /** Wake signals written per cycle (each one runs a dispatch step). */
  readonly wakeUpsPerCycle: number;
  /** Lua steps (FCALL: appends with a key, projections, dispatches) per cycle. */
  readonly stepsPerCycle: number;
  /** Redis main-thread CPU per cycle (INFO cpu), µs: the appends and projections included. */
  readonly redisCpuUsPerCycle: number;
  /** Contacts nobody can serve still queued at the end (all of them: none was assigned). */
  readonly unservableQueued: number;
}

export async function idleWorkload(
  redis: RedisClient,
  workspace: string,
  o: IdleOptions,
  note: Note,
): Promise<IdleFigures> {
  const k = workspaceKeys(workspace);
  await ensureGroup(redis, workspace);
  const send = async (...commands: Command[]) => {
    for (const command of commands) await appendCommand(redis, { workspace, command });
    await projectPending(redis, workspace);
  };
  let wakeUps = 0;
  let assignments = 0;
  const dispatchIfWoken = async () => {
    if ((await redis.zcard(k.wake)) === 0) return;
    wakeUps++;
    await redis.del(k.wake);
    assignments += await dispatchPending(redis, workspace);
  };

  note(`${o.agents} agents holding A available, ${o.agents} contacts needing A and Z queued`);
  for (let i = 0; i < o.agents; i++)
    await send(
      { type: 'RegisterAgent', agentId: `a${i}`, skills: ['A'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: `a${i}`, state: 'available' },
    );
  for (let i = 0; i < o.agents; i++)
    await send({ type: 'QueueContact', contactId: `x${i}`, skills: ['A', 'Z'], priority: 0 });
  await dispatchIfWoken();
  wakeUps = 0;
  assignments = 0;

  note(`${o.cycles} cycles: a contact needing A arrives, an idle agent takes it and completes it`);
  const cpu0 = await mainThreadCpuUs(redis);
  const steps0 = await commandCalls(redis, 'fcall');
  for (let i = 0; i < o.cycles; i++) {
    await send({ type: 'QueueContact', contactId: `c${i}`, skills: ['A'], priority: 0 });
    await dispatchIfWoken();
    await send({ type: 'CompleteContact', contactId: `c${i}` });
    await dispatchIfWoken();
  }
  const cpu1 = await mainThreadCpuUs(redis);
  const steps1 = await commandCalls(redis, 'fcall');
  const per = (n: number) => Math.round((n / o.cycles) * 100) / 100;
  return {
    cycles: o.cycles,
    assignments,
    wakeUpsPerCycle: per(wakeUps),
    stepsPerCycle: per(steps1 - steps0),
    redisCpuUsPerCycle: Math.round((cpu1 - cpu0) / o.cycles),
    unservableQueued: await redis.zcard(k.queue),
  };
}

/**
 * The rows of an idle run in `npm run bench -- all`: wake-ups per cycle against the cycle's two
 * changes that could wake the dispatcher (the arrival and the agent freed), and Redis's CPU per cycle.
 */
export const idleRows: RowMaker = (run) => {
  const f = run.figures;
  const n = `agents freeing up beside idle colleagues (${at(run.parameters, 'agents')} agents)`;
  return [
    row(`${n}: wake-ups per cycle`, at(f, 'wakeUpsPerCycle'), 'wake-ups', {
      name: 'changes per cycle (a contact arriving, an agent freed)',
      value: 2,
      unit: 'changes',
    }),
    row(`${n}: Redis main-thread CPU per cycle`, at(f, 'redisCpuUsPerCycle'), 'µs'),
  ];
};
