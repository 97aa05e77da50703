import type { AgentDocument, ContactDocument } from '../../domain/documents.ts';
import { workspaceKeys } from './keys.ts';
import type { RedisClient } from './scripts.ts';

/**
 * The read side of the document port (the write side is lua/includes/documents.lua): agents and
 * contacts are JSON strings; fields starting with "_" are internal and dropped here, and a
 * contact's attributes, kept as the client's JSON text, are parsed back.
 */
export function publicDocument<T>(text: string | null): T | null {
  if (text === null) return null;
  const raw = JSON.parse(text) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) if (!k.startsWith('_')) out[k] = v;
  if (typeof raw._attrs === 'string') out.attributes = JSON.parse(raw._attrs);
  // An empty JSON array may come back as {} from older writers: documents hold arrays here.
  for (const k of ['skills', 'activeContacts']) if (k in out && !Array.isArray(out[k])) out[k] = [];
  return out as T;
}

export async function readAgent(
  redis: RedisClient,
  workspace: string,
  id: string,
): Promise<AgentDocument | null> {
  return publicDocument<AgentDocument>(await redis.get(workspaceKeys(workspace).agent(id)));
}

export async function readContact(
  redis: RedisClient,
  workspace: string,
  id: string,
): Promise<ContactDocument | null> {
  return publicDocument<ContactDocument>(await redis.get(workspaceKeys(workspace).contact(id)));
}

export interface AgentFilter {
  readonly state?: string;
  readonly skill?: string;
  readonly limit: number;
}

/**
 * Agents, optionally by state and skill. Available agents with a skill come from that skill's
 * availability set, so they are listed longest-available first: the order routing uses.
 */
export async function listAgents(
  redis: RedisClient,
  workspace: string,
  f: AgentFilter,
): Promise<AgentDocument[]> {
  const k = workspaceKeys(workspace);
  const ids =
    f.state === 'available' && f.skill
      ? await redis.zrange(k.availability(f.skill), 0, f.limit - 1)
      : (await redis.smembers(k.agentIndex)).sort();
  const out: AgentDocument[] = [];
  for (let i = 0; i < ids.length && out.length < f.limit; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const texts = chunk.length > 0 ? await redis.mget(chunk.map((id) => k.agent(id))) : [];
    for (const t of texts) {
      const a = publicDocument<AgentDocument>(t);
      if (!a) continue;
      if (f.state && a.state !== f.state) continue;
      if (f.skill && !a.skills.includes(f.skill)) continue;
      out.push(a);
      if (out.length === f.limit) break;
    }
  }
  return out;
}

/** The last command-stream position the projections have applied. */
export async function appliedPosition(redis: RedisClient, workspace: string): Promise<string> {
  return (await redis.hget(workspaceKeys(workspace).meta, 'applied')) ?? '0-0';
}

export interface WorkspaceStats {
  readonly queued: number;
  readonly queueBySkills: Record<string, number>;
  readonly longestWaitMs: number;
  readonly oldestContactId: string | null;
  readonly agentsByState: Record<string, number>;
  readonly assignments: number;
  readonly completed: number;
  readonly abandoned: number;
  readonly contactsQueuedSoFar: number;
  readonly position: string;
}

export async function readStats(redis: RedisClient, workspace: string, now: number): Promise<WorkspaceStats> {
  const k = workspaceKeys(workspace);
  const [sets, queued, oldest, counters, position] = await Promise.all([
    redis.zrange(k.skillSets, 0, -1),
    redis.zcard(k.queue),
    redis.zrange(k.queue, 0, 0),
    redis.hgetall(k.stats),
    appliedPosition(redis, workspace),
  ]);
  const depths = await Promise.all(sets.map((s) => redis.zcard(k.skillSetQueue(s))));
  const queueBySkills: Record<string, number> = {};
  sets.forEach((s, i) => {
    queueBySkills[s] = depths[i] ?? 0;
  });
  let longestWaitMs = 0;
  const oldestId = oldest[0] ?? null;
  if (oldestId) {
    const c = await readContact(redis, workspace, oldestId);
    if (c) longestWaitMs = Math.max(0, now - Date.parse(c.queuedAt));
  }
  const agentsByState: Record<string, number> = { offline: 0, available: 0, away: 0, busy: 0, wrapup: 0 };
  for (const a of await listAgents(redis, workspace, { limit: Number.MAX_SAFE_INTEGER })) {
    agentsByState[a.state] = (agentsByState[a.state] ?? 0) + 1;
  }
  const n = (key: string) => Number(counters[key] ?? 0);
  return {
    queued,
    queueBySkills,
    longestWaitMs,
    oldestContactId: oldestId,
    agentsByState,
    assignments: n('assignments'),
    completed: n('completed'),
    abandoned: n('abandoned'),
    contactsQueuedSoFar: n('queued'),
    position,
  };
}
