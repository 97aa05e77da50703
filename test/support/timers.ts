import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { dispatchPending, fireTimers } from '../../src/dispatcher/dispatcher.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { sendAndSettle } from './projector.ts';
import { sleep } from './wait.ts';

const send = sendAndSettle;

/**
 * c4 offered to ana for an hour (`o|c4|1`); c5 waiting with a maximum wait, a preference and a
 * routing step (`m|c5|…`, `f|c5|…`, `r|c5|…|1`); c6's maximum wait fired and its ExpireContact
 * not applied yet. Before them, c2's offer expired, c3's wait ended and ana's wrap-up ended.
 */
export async function timersLifecycle(redis: RedisClient, ws: string): Promise<void> {
  await ensureGroup(redis, ws);
  await send(
    redis,
    ws,
    {
      type: 'ChangeSettings',
      offerTimeoutMs: 60,
      wrapUpMs: 40,
      missedOfferPresence: 'away',
      maxWaitMs: null,
    },
    { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 1 },
    { type: 'RegisterAgent', agentId: 'bob', skills: ['B'], capacity: 1 },
    { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
    { type: 'ChangeAgentState', agentId: 'bob', state: 'available' },
    { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0 },
    { type: 'QueueContact', contactId: 'c2', skills: ['B'], priority: 0 },
    { type: 'QueueContact', contactId: 'c3', skills: ['C'], priority: 0, maxWaitMs: 30 },
  );
  await send(
    redis,
    ws,
    { type: 'AcceptOffer', contactId: 'c1', agentId: 'ana' },
    { type: 'CompleteContact', contactId: 'c1' },
  );
  // c2's offer expires, c3's wait ends, ana's wrap-up ends: fired and applied.
  await sleep(80);
  await fireTimers(redis, ws);
  await projectPending(redis, ws);
  await dispatchPending(redis, ws);
  await send(
    redis,
    ws,
    {
      type: 'ChangeSettings',
      offerTimeoutMs: 3_600_000,
      wrapUpMs: 50,
      missedOfferPresence: 'away',
      maxWaitMs: 86_400_000,
    },
    { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
    { type: 'QueueContact', contactId: 'c4', skills: ['A'], priority: 0 },
    {
      type: 'QueueContact',
      contactId: 'c5',
      skills: ['D'],
      priority: 0,
      preferredAgents: ['bob'],
      preferredForMs: 600_000,
      steps: [{ afterMs: 300_000, skills: ['E'] }],
    },
    { type: 'QueueContact', contactId: 'c6', skills: ['F'], priority: 0, maxWaitMs: 20 },
  );
  await sleep(40);
  await fireTimers(redis, ws);
}

/** The workspace's timers: member → due time (ms, as Redis writes the score). */
export async function timersOf(redis: RedisClient, ws: string): Promise<Map<string, string>> {
  const flat = await redis.zrange(workspaceKeys(ws).timers, 0, -1, 'WITHSCORES');
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) out.set(flat[i]!, flat[i + 1]!);
  return out;
}

/** The member of the timer whose name starts with `prefix` (`o|c4|`, ...). */
export function timerNamed(timers: Map<string, string>, prefix: string): [string, string] {
  const found = [...timers].find(([m]) => m.startsWith(prefix));
  if (!found) throw new Error(`no timer ${prefix}… among ${[...timers.keys()].join(', ')}`);
  return found;
}
