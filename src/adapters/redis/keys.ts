/**
 * Every Redis key Switchboard uses, built in one place. All keys of a workspace share the hash
 * tag `{<workspace>}`, so every Lua step touches a single cluster slot and workspaces spread over
 * slots. The Lua steps derive per-skill and per-document keys from the same prefix, with the same
 * spelling (see lua/includes/keys.lua; a test keeps the two in step).
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
  /** Hash: projector checkpoint and counters. */
  readonly meta: string;
  /** Zset of every queued contact, scored by queue order. */
  readonly queue: string;
  /** Zset of non-empty skill-set queues, scored by their number of skills. */
  readonly skillSets: string;
  /** Zsets of work the dispatcher has not looked at yet. */
  readonly dirtyAgents: string;
  readonly dirtyContacts: string;
  /** Zset the dispatcher blocks on with BZPOPMIN: a member means "look again". */
  readonly wake: string;
  /** Set of agent ids (for listing). */
  readonly agentIndex: string;
  /** Hash: agent counts by state and other counters for /stats. */
  readonly stats: string;
  agent(id: string): string;
  contact(id: string): string;
  availability(skill: string): string;
  skillSetQueue(skillSetName: string): string;
  idempotency(key: string): string;
}

export function workspaceKeys(workspace: string): WorkspaceKeys {
  const prefix = `${KEY_ROOT}:{${workspace}}:`;
  return {
    workspace,
    prefix,
    commands: `${prefix}commands`,
    events: `${prefix}events`,
    outcomes: `${prefix}outcomes`,
    meta: `${prefix}meta`,
    queue: `${prefix}queue`,
    skillSets: `${prefix}skillsets`,
    dirtyAgents: `${prefix}dirty:agents`,
    dirtyContacts: `${prefix}dirty:contacts`,
    wake: `${prefix}wake`,
    agentIndex: `${prefix}agents`,
    stats: `${prefix}stats`,
    agent: (id) => `${prefix}agent:${id}`,
    contact: (id) => `${prefix}contact:${id}`,
    availability: (skill) => `${prefix}avail:${skill}`,
    skillSetQueue: (name) => `${prefix}q:${name}`,
    idempotency: (key) => `${prefix}idem:${key}`,
  };
}

/** Global keys (no hash tag): the registry of workspaces and of API instances, read outside Lua. */
export const globalKeys = {
  workspaces: `${KEY_ROOT}:workspaces`,
  /** Zset of workspaces by the time of their last command: workers serve the recently active ones. */
  activeWorkspaces: `${KEY_ROOT}:workspaces:active`,
  instances: `${KEY_ROOT}:instances`,
  /** Zset of live dispatchers, scored by their last lease renewal. */
  dispatchers: `${KEY_ROOT}:dispatchers`,
  /** A workspace's dispatcher lease: in the workspace's slot. */
  leases: (workspace: string) => `${KEY_ROOT}:{${workspace}}:lease`,
};

/** Consumer group of the projector role on every command stream. */
export const PROJECTOR_GROUP = 'projector';
