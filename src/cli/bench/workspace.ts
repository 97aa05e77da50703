/**
 * Filling a bench workspace through the real command path (the append step, then the projector),
 * with the reference ACD's seeded agents and contacts, and removing it from a shared Redis.
 */
import type { Redis } from 'ioredis';
import { appendCommand } from '../../adapters/redis/command-log.ts';
import { globalKeys, KEY_ROOT } from '../../adapters/redis/keys.ts';
import type { RedisClient } from '../../adapters/redis/scripts.ts';
import type { Command } from '../../domain/commands.ts';
import { defaultProjectorOptions, projectPending } from '../../projections/projector.ts';
import { type Rng, seedSkills } from '../sim/random.ts';

/** Progress for the person running the bench (silent with --json). */
export type Note = (text: string) => void;

/**
 * Appends commands in concurrent chunks (the client pipelines them), projecting after every
 * `projectEvery` chunks and after the last, so everything appended is applied on return.
 */
export async function appendAndProject(
  redis: RedisClient,
  workspace: string,
  commands: readonly Command[],
  { chunk = 2000, projectEvery = 10 }: { chunk?: number; projectEvery?: number } = {},
): Promise<void> {
  for (let i = 0; i < commands.length; i += chunk) {
    await Promise.all(
      commands.slice(i, i + chunk).map((command) => appendCommand(redis, { workspace, command })),
    );
    if ((i / chunk) % projectEvery === projectEvery - 1 || i + chunk >= commands.length)
      await projectPending(redis, workspace, [], { ...defaultProjectorOptions, batch: 1000 });
  }
}

export interface Agent {
  readonly id: string;
  readonly skills: string[];
}

export function seedAgents(n: number, rng: Rng): Agent[] {
  return Array.from({ length: n }, (_, i) => ({ id: `agent-${i + 1}`, skills: seedSkills(rng) }));
}

export function registerCommands(agents: readonly Agent[]): Command[] {
  return agents.map((a) => ({ type: 'RegisterAgent', agentId: a.id, skills: a.skills, capacity: 1 }));
}

export function availableCommands(agents: readonly Agent[]): Command[] {
  return agents.map((a) => ({ type: 'ChangeAgentState', agentId: a.id, state: 'available' }));
}

export function queueCommands(n: number, rng: Rng, prefix = 'contact'): Command[] {
  return Array.from({ length: n }, (_, i) => ({
    type: 'QueueContact',
    contactId: `${prefix}-${i + 1}`,
    skills: seedSkills(rng),
    priority: 0,
  }));
}

/** Skill pairs some contact needs and no agent holds: those contacts can never be assigned. */
export function uncovered(agents: readonly Agent[], commands: readonly Command[]): number {
  return commands.length - assignable(agents, commands).length;
}

/** The commands but the QueueContacts of skill pairs no agent holds (contacts nobody can take). */
export function assignable(agents: readonly Agent[], commands: readonly Command[]): Command[] {
  const held = new Set(agents.map((a) => a.skills.join(',')));
  return commands.filter((c) => c.type !== 'QueueContact' || held.has(c.skills.join(',')));
}

/** Removes a workspace's keys (on a shared Redis). */
export async function dropWorkspace(redis: RedisClient, workspace: string): Promise<void> {
  const r = redis as Redis;
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${KEY_ROOT}:{${workspace}}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await r.unlink(...keys);
  } while (cursor !== '0');
  await r.srem(globalKeys.workspaces, workspace);
}

/** What to suspect when the workspace's own count disagrees with the bench's on a shared Redis. */
export function sharedRedisHint(redisUrl: string | undefined): string {
  return redisUrl ? ' (is a Switchboard dispatcher serving this Redis too? run without --redis-url)' : '';
}
