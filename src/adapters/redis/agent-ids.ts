import { randomUUID } from 'node:crypto';
import { workspaceKeys } from './keys.ts';
import { luaScript, type RedisClient, runLua } from './scripts.ts';

/**
 * The agent ids' index (`sb:{ws}:agent-ids`, a lexicographic zset of score 0): GET /agents reads
 * agents by id a page at a time from it, instead of every document of the workspace. The
 * projector's step adds an id where it registers the agent and takes it out where it removes it;
 * meta `agentIds` names the checkpoint through which the index holds every agent, and each step
 * of the projector moves it with the checkpoint (`applied`) while the two are equal: from a
 * workspace's first agent, or from a fill here. A step of a version that keeps no index (an
 * upgrade's overlap, a rollback) moves the checkpoint alone, and the index is whole no more until
 * a listing makes it again.
 *
 * A workspace whose agents were registered before the index (or by an older projector running
 * beside a newer one, in an upgrade) has it made whole by its first listing: a fill (HSCAN of the
 * documents, their ids added) and a prune (ids without a document taken out), in steps of
 * AGENT_IDS_STEP each, none growing with the agents. Whether the index is whole is asked of the
 * marker and the two counts, read in one step: ids as many as documents.
 */
const AGENT_IDS = luaScript('agentIds', new URL('./lua/agent-ids-3.lua', import.meta.url));

/** Documents (a fill) or ids (a prune) one step of the index's making looks at. */
export const AGENT_IDS_STEP = 500;

const keysOf = (workspace: string) => {
  const k = workspaceKeys(workspace);
  return [k.agents, k.agentIds, k.meta];
};

/** The marker, the ids in the index and the agent documents, read in one step. */
export async function agentIdsState(
  redis: RedisClient,
  workspace: string,
): Promise<{ marked: boolean; ids: number; agents: number }> {
  const [marked, ids, agents] = (await runLua(redis, AGENT_IDS, keysOf(workspace), ['check'])) as [
    number,
    number,
    number,
  ];
  return { marked: marked === 1, ids, agents };
}

/** What a making of the index did: whether the index is whole after it. */
export interface AgentIdsMade {
  readonly whole: boolean;
  /** Steps run (0: it was whole already). */
  readonly steps: number;
}

/** The makings running in this process, by workspace: requests at once share one. */
const running = new Map<string, Promise<AgentIdsMade>>();

/**
 * The index made whole if it is not (see above); shared by the callers asking at once in this
 * process. `whole` false: a step of an older projector came meanwhile, or another making (another
 * instance's) began before this one ended, or the counts differ after it: the caller reads the
 * documents without the index this time. A making begins with meta `agentIdsFrom` (the checkpoint,
 * carried by the projector's steps as `agentIds` is) and `agentIdsMaking` (its token).
 */
export function wholeAgentIds(redis: RedisClient, workspace: string): Promise<AgentIdsMade> {
  let made = running.get(workspace);
  if (!made) {
    made = makeWhole(redis, workspace).finally(() => running.delete(workspace));
    running.set(workspace, made);
  }
  return made;
}

/**
 * Begins a making of the index with `token`, or joins one under way (another instance's, begun
 * since the last step that kept no index): the token to mark with.
 */
export async function beginMaking(redis: RedisClient, workspace: string, token: string): Promise<string> {
  return String(await runLua(redis, AGENT_IDS, keysOf(workspace), ['begin', token]));
}

const isWhole = (s: { marked: boolean; ids: number; agents: number }) => s.marked && s.ids === s.agents;

async function makeWhole(redis: RedisClient, workspace: string): Promise<AgentIdsMade> {
  if (isWhole(await agentIdsState(redis, workspace))) return { whole: true, steps: 0 };
  const keys = keysOf(workspace);
  // Where the making begins: marked at its end only if every projector step since kept the index,
  // and no other making began meanwhile (the token), unless it joined one under way.
  const token = await beginMaking(redis, workspace, randomUUID());
  let steps = 1;
  let cursor = '0';
  do {
    cursor = String(await runLua(redis, AGENT_IDS, keys, ['fill', cursor, AGENT_IDS_STEP]));
    steps++;
  } while (cursor !== '0');
  let last = '';
  do {
    last = String(await runLua(redis, AGENT_IDS, keys, ['prune', last, AGENT_IDS_STEP]));
    steps++;
  } while (last !== '');
  const marked = (await runLua(redis, AGENT_IDS, keys, ['mark', token])) === 1;
  return { whole: marked && isWhole(await agentIdsState(redis, workspace)), steps: steps + 1 };
}
