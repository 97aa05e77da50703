import { workspaceKeys } from './keys.ts';
import type { RedisClient } from './scripts.ts';

/**
 * The routing index as plain data: who is available since when, and what is queued with which
 * priority and arrival number. This is the one place that knows how the sorted sets are laid out
 * (lua/includes/routing.lua); readers such as the auditor (src/audit) use only this, so a change
 * of layout changes this function's body and nothing else.
 *
 * Today's layout: `sb:{ws}:pools` members `<skill set>|<since, 15 digits>|<agent>` (one per
 * available agent) and `sb:{ws}:queues` members `<skill set>|<9 - priority>|<arrival, 16
 * digits>|<contact>` (one per queued contact). Skill sets are not returned: the documents hold them.
 */
export interface RoutingIndex {
  readonly available: { agentId: string; since: number }[];
  readonly queued: { contactId: string; priority: number; seq: number }[];
}

/** Members read per round trip. */
const PAGE = 10_000;

async function members(redis: RedisClient, key: string): Promise<string[]> {
  const out: string[] = [];
  for (let start = 0; ; start += PAGE) {
    const page = await redis.zrange(key, start, start + PAGE - 1);
    out.push(...page);
    if (page.length < PAGE) return out;
  }
}

export async function readRoutingIndex(redis: RedisClient, workspace: string): Promise<RoutingIndex> {
  const k = workspaceKeys(workspace);
  const [pools, queues] = await Promise.all([members(redis, k.pools), members(redis, k.skillSetQueues)]);
  const available = pools.map((m) => {
    const [, since = '', agentId = ''] = m.split('|');
    return { agentId, since: Number(since) };
  });
  const queued = queues.map((m) => {
    const [, inverted = '', seq = '', contactId = ''] = m.split('|');
    return { contactId, priority: 9 - Number(inverted), seq: Number(seq) };
  });
  return { available, queued };
}
