/**
 * Every Redis key Switchboard uses, built in one place. All keys of a workspace share the hash
 * tag `{<workspace>}`, so every Lua step touches a single cluster slot and workspaces spread over
 * slots. A workspace has a fixed set of keys: documents live in hashes, and agent pools and
 * skill-set queues in lexicographic sorted sets, so every Lua step declares every key it touches.
 */
export const KEY_ROOT = 'sb';

export interface WorkspaceKeys {
  readonly workspace: string;
  readonly prefix: string;
  /** Stream of accepted commands: the projector consumer group reads it. */
  readonly commands: string;
  /** Stream of facts (domain events): the audit log and the live feed. */
  readonly events: string;
  /** Stream of command outcomes for waiting API requests (capped). */
  readonly outcomes: string;
  /** Hash: projector checkpoint and arrival counter. */
  readonly meta: string;
  /** Hash: agent documents (JSON) by id. */
  readonly agents: string;
  /** Hash: contact documents (JSON) by id. */
  readonly contacts: string;
  /**
   * Zset of agent ids (score 0, lexicographic): GET /agents's order, read a page at a time. It
   * holds every agent while meta `agentIds` equals the checkpoint `applied`
   * (src/adapters/redis/agent-ids.ts).
   */
  readonly agentIds: string;
  /** Zset of members `<skill set>|<available-since, 15 digits>|<agent>` (score 0): available agents by skill set, LAA first. */
  readonly pools: string;
  /** Zset of members `<skill>|<since>|<agent> <skill set>` (score 0): each non-empty pool's head under each of its skills. */
  readonly poolHeads: string;
  /** Hash: `s:<skill set>` → registered agents with it; `k:<skill>` → distinct agent skill sets holding the skill. */
  readonly agentSkillSets: string;
  /** Zset of members `<skill set>|<9 - priority>|<arrival, 16 digits>|<contact>` (score 0). */
  readonly skillSetQueues: string;
  /** Zset of non-empty skill-set queues, scored by their head's routing order. */
  readonly queueHeads: string;
  /** Zset of every queued contact, scored by arrival. */
  readonly queue: string;
  /** Zset of non-empty skill sets, scored by their number of skills. */
  readonly skillSets: string;
  /** Zset of the dispatcher's candidates (`q:<skill set>` queues, `p:<skill set>` pools), scored by a lower bound of routing order. */
  readonly candidates: string;
  /** Zset the dispatcher blocks on with BZPOPMIN: a member means "look again". */
  readonly wake: string;
  /** Zset of finished (completed, abandoned) contacts by finish time: ForgetContacts removes the old ones. */
  readonly finished: string;
  /** Zset of lifecycle timers by due time (offers, wrap-ups, maximum waits): the clock fires them as commands. */
  readonly timers: string;
  /** Hash: counters for /stats. */
  readonly stats: string;
  /**
   * Zset of members `<skill-set queue>|<time, 15 digits>|<waited ms>|<contact>` (score 0): each
   * queue's decisions of the last few minutes: its measured service rate (estimated waits), its
   * mean wait and service level (/stats).
   */
  readonly served: string;
  /**
   * Zset of members `<skill-set queue>|<time, 15 digits>|<abandoned|expired>|<contact>` (score 0):
   * each queue's contacts that left while waiting in the last few minutes (/stats), written by the
   * projector.
   */
  readonly ended: string;
  /** Hash: Idempotency-Key records; and the zset of when each may be forgotten. */
  readonly idempotency: string;
  readonly idempotencyExpiry: string;
  /** Hash: the outcome recorded for each Idempotency-Key, once (not inside its record). */
  readonly idempotencyOutcomes: string;
  /** The dispatcher lease of the workspace. */
  readonly lease: string;
  /** The archiver lease of the workspace. */
  readonly archiverLease: string;
  /** Hash: `commands`, `events` → the last archived segment whose entries were trimmed (src/archive/chain.ts). */
  readonly archive: string;
  /** Hash: API key id → its record JSON (role, agent, name, the SHA-256 of its secret; never the secret). */
  readonly apiKeys: string;
  /** Prefix of the one-time WebSocket tickets (`<prefix><sha256 of the ticket>`, a string with an expiry). */
  readonly wsTicketPrefix: string;
  /** Hash: the live interval projection's checkpoint (last event applied) and service-level threshold. */
  readonly intervals: string;
  /**
   * Hash: contact → its queue ("+" first once its first decision was counted), for the contacts the
   * interval projection may still count (src/domain/intervals.ts `placeText`).
   */
  readonly intervalContacts: string;
  /** Zset of the interval tallies kept (member and score: the interval's start, ms). */
  readonly intervalIndex: string;
  /**
   * Prefix of one 15-minute interval's tallies (`<prefix><start ms>`, a hash of `<tally>` and
   * `<tally> <queue>` → integer), each expiring after the retention (src/projections/intervals.ts).
   */
  readonly intervalPrefix: string;
  /** The interval projection's lease of the workspace. */
  readonly intervalsLease: string;
}

/**
 * The keys of each workspace asked for, made once: every request and step asks again. Workspace
 * names come from requests too, so the cache is dropped whole when it holds this many.
 */
const KEYS_CACHED = 4096;
const keysOf = new Map<string, WorkspaceKeys>();

export function workspaceKeys(workspace: string): WorkspaceKeys {
  let k = keysOf.get(workspace);
  if (!k) {
    if (keysOf.size >= KEYS_CACHED) keysOf.clear();
    k = Object.freeze(makeKeys(workspace));
    keysOf.set(workspace, k);
  }
  return k;
}

function makeKeys(workspace: string): WorkspaceKeys {
  const prefix = `${KEY_ROOT}:{${workspace}}:`;
  return {
    workspace,
    prefix,
    commands: `${prefix}commands`,
    events: `${prefix}events`,
    outcomes: `${prefix}outcomes`,
    meta: `${prefix}meta`,
    agents: `${prefix}agents`,
    contacts: `${prefix}contacts`,
    agentIds: `${prefix}agent-ids`,
    pools: `${prefix}pools`,
    poolHeads: `${prefix}pool-heads`,
    agentSkillSets: `${prefix}agent-skill-sets`,
    skillSetQueues: `${prefix}queues`,
    queueHeads: `${prefix}queue-heads`,
    queue: `${prefix}queue`,
    skillSets: `${prefix}skillsets`,
    candidates: `${prefix}candidates`,
    wake: `${prefix}wake`,
    finished: `${prefix}finished`,
    timers: `${prefix}timers`,
    stats: `${prefix}stats`,
    served: `${prefix}served`,
    ended: `${prefix}ended`,
    idempotency: `${prefix}idem`,
    idempotencyExpiry: `${prefix}idem:expiry`,
    idempotencyOutcomes: `${prefix}idem:outcomes`,
    lease: `${prefix}lease`,
    archiverLease: `${prefix}archiver-lease`,
    archive: `${prefix}archive`,
    apiKeys: `${prefix}keys`,
    wsTicketPrefix: `${prefix}ws-ticket:`,
    intervals: `${prefix}intervals`,
    intervalContacts: `${prefix}intervals:contacts`,
    intervalIndex: `${prefix}intervals:index`,
    intervalPrefix: `${prefix}interval:`,
    intervalsLease: `${prefix}intervals-lease`,
  };
}

/**
 * The key a guarded Lua step (the projector's, the dispatcher's and its clock's, the append)
 * declares last when its keys are one workspace's: nothing ever writes it.
 * While a Redis Cluster moves the workspace's slot (MIGRATING / IMPORTING), Redis refuses a step
 * one of whose declared keys is missing before the step runs (TRYAGAIN), so every step is refused
 * whole until the move is done. Without it, a step whose declared keys all existed ran, and
 * Redis stopped it midway at a key it had emptied itself (the queue's last contact taken out,
 * then a contact queued: "Script attempted to access a non local key in a cluster node"), its
 * earlier writes kept. Undefined when the keys are not all under one workspace's prefix.
 */
export function slotGuardOf(keys: readonly string[]): string | undefined {
  const m = /^[^{]*\{[^}]+\}:/.exec(keys[0] ?? '');
  const prefix = m?.[0];
  if (!prefix?.startsWith(`${KEY_ROOT}:{`) || !keys.every((k) => k.startsWith(prefix))) return undefined;
  return `${prefix}slot-guard`;
}

/**
 * The keys of the routing index both Lua steps change, in the order both declare them: the
 * documents, the pools and their heads, the skill-set queues and their heads.
 */
export function routingIndexKeys(k: WorkspaceKeys): string[] {
  return [k.agents, k.contacts, k.pools, k.poolHeads, k.skillSetQueues, k.queueHeads];
}

/** The bounds of a lexicographic range of members that start with `<prefix>|`. */
export function lexRange(prefix: string): [string, string] {
  return [`[${prefix}|`, `(${prefix}|\xff`];
}

/** Global keys (no hash tag): the registry of workspaces and of API instances, read outside Lua. */
export const globalKeys = {
  workspaces: `${KEY_ROOT}:workspaces`,
  /** Zset of workspaces by the time of their last command: workers serve the recently active ones. */
  activeWorkspaces: `${KEY_ROOT}:workspaces:active`,
  instances: `${KEY_ROOT}:instances`,
  /** Zset of live dispatchers, scored by their last lease renewal. */
  dispatchers: `${KEY_ROOT}:dispatchers`,
  /** Zset of live archivers, scored by their last lease renewal. */
  archivers: `${KEY_ROOT}:archivers`,
  /** Zset of live interval projections, scored by their last lease renewal. */
  intervalProjections: `${KEY_ROOT}:interval-projections`,
};

/**
 * Hash: API key id → its workspace, so a key used in another workspace (403) is told apart from an
 * unknown one (401). Written only when keys are made (not in `globalKeys`: no worker reads it).
 */
export const API_KEY_INDEX = `${KEY_ROOT}:api-keys`;

/** Consumer group of the projector role on every command stream. */
export const PROJECTOR_GROUP = 'projector';

/**
 * The field of the live interval projection's meta hash (`sb:{ws}:intervals`) naming this build of it: set by
 * the build's first step, gone with the hash when the projection is dropped (dropIntervals, or its
 * keys deleted by hand), a new one for the next build. A reader of several commands (the settled
 * intervals a few at a time, a large one in pages) reads it before and after: the same name means
 * every read was of one build; the checkpoint alone cannot say it, a rebuild may pass it meanwhile.
 */
export const INTERVAL_GENERATION = 'generation';
