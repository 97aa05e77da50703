import { createHash } from 'node:crypto';
import { lastExcluded, MAX_EXCLUDED_AGENTS } from '../../domain/model.ts';
import type { QueueStats, WindowStats, WorkspaceStats } from '../../domain/stats.ts';
import { publicSkills } from '../../domain/values.ts';
import type { AgentDocument, ContactDocument } from '../../domain/views.ts';
import { wholeAgentIds } from './agent-ids.ts';
import { READ_PAGE } from './event-log.ts';
import { hashEntries, scanHash } from './hash-scan.ts';
import { lexRange, workspaceKeys } from './keys.ts';
import { type Ended, inWindow, poolMember, SERVED_WINDOW_MS, type Served } from './routing-index.ts';

/** The service level's default threshold: the classic "80 % answered within 20 s" counts 20 s. */
export const DEFAULT_SERVICE_LEVEL_MS = 20_000;

import { luaScript, type RedisClient, runLua } from './scripts.ts';

/** The snapshot GET /stats reads (readStats), and its SHA1 for EVALSHA in a transaction. */
const STATS_READ = luaScript('statsRead', new URL('./lua/stats-read-8.lua', import.meta.url));
const STATS_READ_SHA = createHash('sha1').update(STATS_READ.lua).digest('hex');

/**
 * Reads of the projections the projector keeps (its Lua writes them, lua/includes/documents.lua):
 * agent and contact views, agents by state and skill, availability, the applied position and the
 * counters of /stats. Agents and contacts are JSON strings; fields starting with "_" are internal
 * and dropped here, and a contact's attributes, kept as the client's JSON text, are parsed back.
 */
export function publicDocument<T>(text: string | null): T | null {
  if (text === null) return null;
  return publicFields(JSON.parse(text) as Record<string, unknown>) as T;
}

/**
 * A stored document's public fields: internal `_` fields dropped, the attributes parsed, skills
 * (kept as routing strings) as clients write them (lua/includes/documents.lua `public_view`), and
 * a contact's `excludedAgents` by its last MAX_EXCLUDED_AGENTS.
 */
export function publicFields(raw: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) if (!k.startsWith('_')) out[k] = v;
  if (typeof raw._attrs === 'string') out.attributes = JSON.parse(raw._attrs);
  if (Array.isArray(raw.skills))
    out.skills = publicSkills(raw.skills as string[], raw.presence !== undefined ? 'agent' : 'contact');
  // A contact's list as a document written before the bound holds it: the agents routing keeps
  // it from, its last MAX_EXCLUDED_AGENTS (API.md, "Documents").
  if (Array.isArray(raw.excludedAgents)) out.excludedAgents = lastExcluded(raw.excludedAgents as string[]);
  if (Array.isArray(raw.steps))
    out.steps = (raw.steps as { skills: string[] }[]).map((st) => ({
      ...st,
      skills: publicSkills(st.skills, 'contact'),
    }));
  return out;
}

/**
 * A success's body with a contact's `excludedAgents` by its last MAX_EXCLUDED_AGENTS: the view
 * the projector's step answers is the document's, which a version before the bound wrote longer
 * (until the contact's next rejection). The API answers it so (src/adapters/http/commands.ts), and the audit
 * holds it so (src/audit/outcome-body.ts).
 */
export function boundedView<T>(body: T): T {
  if (typeof body !== 'object' || body === null || !('excludedAgents' in body)) return body;
  const excluded = (body as { excludedAgents?: unknown }).excludedAgents;
  if (!Array.isArray(excluded) || excluded.length <= MAX_EXCLUDED_AGENTS) return body;
  return { ...body, excludedAgents: lastExcluded(excluded as string[]) };
}

export async function readAgent(
  redis: RedisClient,
  workspace: string,
  id: string,
): Promise<AgentDocument | null> {
  return publicDocument<AgentDocument>(await redis.hget(workspaceKeys(workspace).agents, id));
}

export async function readContact(
  redis: RedisClient,
  workspace: string,
  id: string,
): Promise<ContactDocument | null> {
  return publicDocument<ContactDocument>(await redis.hget(workspaceKeys(workspace).contacts, id));
}

export interface AgentFilter {
  readonly state?: string;
  readonly skill?: string;
  readonly limit: number;
  /** By id: the agents after this id (the `next` of the page before). */
  readonly after?: string;
  /** The workspace's channels: agents with a capacity per channel are available on each of them. */
  readonly channels?: readonly string[];
}

/** A page of agents, and the id to go on after (null: none after this page). */
export interface AgentPage {
  readonly agents: AgentDocument[];
  readonly next: string | null;
}

/**
 * Agent ids a listing by id looks at, at most: a listing by state or skill whose agents are rare
 * answers fewer than `limit` (or none), with a `next` to go on from, as GET /events does by type.
 */
export const AGENT_LIST_READS = 10_000;
/** Refusals of a making of the agent ids' index after which a listing reads the documents. */
const MAKING_REFUSED =
  /^(OOM|TRYAGAIN|CROSSSLOT|ASK|MOVED|CLUSTERDOWN|READONLY|NOSCRIPT)\b|Too many Cluster redirections/;
/** Ids (and their documents) read at once by a listing by id, at most. */
const AGENT_LIST_CHUNK = 1000;

/**
 * Agents, optionally by state and skill. Available agents with a skill come from that skill's
 * availability set, so they are listed longest-available first: the order routing uses (a page,
 * with no `next`). The others are listed by id from the agent ids' index (agent-ids.ts), a page
 * of ids at a time, so a listing reads what it answers and looks at `reads` ids at most, whatever
 * the workspace holds.
 */
export async function listAgents(
  redis: RedisClient,
  workspace: string,
  f: AgentFilter,
  reads = AGENT_LIST_READS,
): Promise<AgentPage> {
  const k = workspaceKeys(workspace);
  const out: AgentDocument[] = [];
  const take = (text: string | null): void => {
    const a = publicDocument<AgentDocument>(text);
    if (!a) return;
    if (f.state && a.state !== f.state) return;
    // A skill held at a level above 1 is shown as {name, level}: held all the same.
    if (f.skill && !a.skills.some((s) => (typeof s === 'string' ? s : s.name) === f.skill)) return;
    out.push(a);
  };
  if (f.state === 'available' && f.skill) {
    // The availability order is the LAA order. It holds `reserved` agents too (an offer out, room
    // left), which the state leaves out: read further until `limit` are found or none are left.
    for (let read = f.limit; ; read *= 2) {
      const ids = (await readAvailability(redis, workspace, f.skill, read, f.channels)).map((a) => a.agentId);
      out.length = 0;
      for (const text of await agentsByIds(redis, k.agents, ids)) take(text);
      if (out.length >= f.limit || ids.length < read) return { agents: out.slice(0, f.limit), next: null };
    }
  }
  // The index made whole where it is not; a making Redis refuses (out of memory for its writes, a
  // cluster moving the slot) or that finds it not whole lists from the documents, reads only. Any
  // other failure (Redis not answering) is the request's: a read of the documents would only wait
  // as long again.
  const whole = await wholeAgentIds(redis, workspace).then(
    (made) => made.whole,
    (err: Error) => {
      if (MAKING_REFUSED.test(err.message ?? '')) return false;
      throw err;
    },
  );
  if (!whole) return listAgentsByScan(redis, workspace, f, take, out);
  const filtered = f.state !== undefined || f.skill !== undefined;
  let last = f.after ?? null;
  let looked = 0;
  // A filtered listing reads `limit` ids and one more at first, twice as many each time after.
  let want = f.limit + 1;
  for (;;) {
    const room = reads - looked;
    // Once `limit` are found, or as many ids looked at as a page may, one id more tells whether
    // any follow.
    const peek = out.length >= f.limit || room <= 0;
    const chunk = peek ? 1 : Math.min(AGENT_LIST_CHUNK, room, filtered ? want : f.limit - out.length + 1);
    want = Math.min(AGENT_LIST_CHUNK, want * 2);
    const ids = await redis.zrangebylex(k.agentIds, last === null ? '-' : `(${last}`, '+', 'LIMIT', 0, chunk);
    if (peek) return { agents: out, next: ids.length > 0 ? last : null };
    // An id whose agent was removed since the range was read has no document: it is passed over.
    const texts = await agentsByIds(redis, k.agents, ids);
    for (let i = 0; i < ids.length; i++) {
      if (out.length >= f.limit) return { agents: out, next: last };
      last = ids[i]!;
      looked++;
      take(texts[i] ?? null);
    }
    if (ids.length < chunk) return { agents: out, next: null };
  }
}

/**
 * By id without the index (not whole after a making, or a making Redis refused): every
 * document read (hashEntries, in pages), the ids sorted, parsed only until `limit` of them match.
 */
async function listAgentsByScan(
  redis: RedisClient,
  workspace: string,
  f: AgentFilter,
  take: (text: string | null) => void,
  out: AgentDocument[],
): Promise<AgentPage> {
  const entries = (await hashEntries(redis, workspaceKeys(workspace).agents)).filter(
    ([id]) => f.after === undefined || id > f.after,
  );
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (let i = 0; i < entries.length; i++) {
    if (out.length >= f.limit) return { agents: out, next: entries[i - 1]![0] };
    take(entries[i]![1]);
  }
  return { agents: out, next: null };
}

async function agentsByIds(
  redis: RedisClient,
  hash: string,
  ids: readonly string[],
): Promise<(string | null)[]> {
  return ids.length > 0 ? redis.hmget(hash, ...ids) : [];
}

/**
 * The agents available with a skill, longest available first (the order routing uses): the
 * members of every pool whose skill set holds the skill, merged.
 */
export async function readAvailability(
  redis: RedisClient,
  workspace: string,
  skill: string,
  limit = 1_000_000,
  channels: readonly string[] = [],
): Promise<{ agentId: string; since: number }[]> {
  const k = workspaceKeys(workspace);
  // Agents with one capacity are in the skill's pools; those with a capacity per channel in the
  // pools of each channel they have room on ("chat/Sales").
  const heads = (
    await Promise.all(
      [skill, ...channels.map((ch) => `${ch}/${skill}`)].map((s) =>
        redis.zrangebylex(k.poolHeads, ...lexRange(s)),
      ),
    )
  ).flat();
  const pools = [...new Set(heads.map((m) => m.slice(m.indexOf(' ') + 1)))];
  const members = await Promise.all(
    pools.map((p) => redis.zrangebylex(k.pools, ...lexRange(p), 'LIMIT', 0, limit)),
  );
  // Pool keys sort as routing takes agents (available-since; under least-occupied, share in use first).
  const byte = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  const seen = new Set<string>();
  return members
    .flat()
    .map(poolMember)
    .sort((a, b) => byte(a.key, b.key) || byte(a.agentId, b.agentId))
    .filter((m) => !seen.has(m.agentId) && seen.add(m.agentId) !== undefined)
    .slice(0, limit)
    .map(({ agentId, since }) => ({ agentId, since }));
}

/** The last command-stream position the projections have applied. */
export async function appliedPosition(redis: RedisClient, workspace: string): Promise<string> {
  return (await redis.hget(workspaceKeys(workspace).meta, 'applied')) ?? '0-0';
}

/** Queued contacts read, oldest first, to find each queue's oldest: the bound of that read. */
export const LONGEST_WAIT_READS = 500;

/** A route name's channel and needed routing skills ("voice/Billing,voice/English#2"). */
function routeNeeds(route: string): { channel: string; skills: string[] } {
  return {
    channel: route.slice(0, route.indexOf('/')),
    skills: route.split(',').map((q) => q.slice(q.indexOf('/') + 1)),
  };
}

/**
 * The fields of a stored agent document (lua/includes/documents.lua) that /stats counts. Its skills
 * are routing strings: a skill at level L is held at every level up to L ("X", "X#2" .. "X#L"),
 * the set a queue's needs are matched against.
 */
interface StoredAgent {
  readonly state: string;
  readonly presence: string;
  readonly skills: readonly string[];
  readonly capacity: number | Readonly<Record<string, number>>;
  readonly activeContacts: readonly string[];
}

/** A stored contact's queue (route) and arrival, as /stats needs them. */
function routeOf(text: string): { route: string; queuedAtMs: number } | null {
  const d = JSON.parse(text) as { channel?: string; skills?: string[]; queuedAt?: string };
  if (!Array.isArray(d.skills)) return null;
  const channel = d.channel ?? 'voice';
  return {
    route: d.skills.map((s) => `${channel}/${s}`).join(','),
    queuedAtMs: Date.parse(d.queuedAt ?? ''),
  };
}

/**
 * The oldest waiting contact of each route (channel and routing skills) with contacts waiting:
 * `ids`, the snapshot's LONGEST_WAIT_READS oldest queued contacts in arrival order, whose documents
 * are read in pages until every such route has its oldest. The first one's document is the
 * snapshot's (`first`); the others are read after it, so a contact whose requirements changed
 * since (a routing step) counts in its new queue, or in none when nobody waited there. Routes not
 * found are left out.
 */
async function oldestPerRoute(
  redis: RedisClient,
  workspace: string,
  routes: ReadonlySet<string>,
  ids: readonly string[],
  first: string | null,
): Promise<Map<string, { queuedAtMs: number }>> {
  const k = workspaceKeys(workspace);
  const found = new Map<string, { queuedAtMs: number }>();
  const take = (text: string | null) => {
    const r = text === null ? null : routeOf(text);
    if (r && routes.has(r.route) && !found.has(r.route)) found.set(r.route, { queuedAtMs: r.queuedAtMs });
  };
  take(first);
  let start = 1;
  for (const size of [50, 150, 300]) {
    if (found.size >= routes.size || start >= ids.length) break;
    const page = ids.slice(start, start + size);
    for (const text of await redis.hmget(k.contacts, ...page)) take(text);
    start += size;
  }
  return found;
}

/** Decisions' mean wait and the share made within `serviceLevelMs`; abandons and expirations. */
function windowOf(served: readonly Served[], ended: readonly Ended[], serviceLevelMs: number): WindowStats {
  let abandons = 0;
  for (const e of ended) if (e.kind === 'abandoned') abandons++;
  const left = { abandons, expirations: ended.length - abandons };
  if (served.length === 0) return { assignments: 0, meanWaitMs: null, serviceLevel: null, ...left };
  let sum = 0;
  let within = 0;
  for (const s of served) {
    sum += s.waitedMs;
    if (s.waitedMs <= serviceLevelMs) within++;
  }
  return {
    assignments: served.length,
    meanWaitMs: Math.round(sum / served.length),
    serviceLevel: Math.round((within / served.length) * 1000) / 1000,
    ...left,
  };
}

/** Contacts held over capacity, to three decimals (null: no capacity). */
const share = (held: number, room: number) => (room > 0 ? Math.round((held / room) * 1000) / 1000 : null);

/** "voice/Billing,voice/English" → its channel and bare skills. */
function queueName(route: string): { channel: string; skills: string } {
  return {
    channel: route.slice(0, route.indexOf('/')),
    skills: route
      .split(',')
      .map((q) => q.slice(q.indexOf('/') + 1))
      .join(','),
  };
}

/** The reply of lua/stats-read-8.lua. */
type StatsSnapshot = [
  queued: number,
  sets: string[],
  depths: number[],
  oldest: string | null,
  oldestDoc: string | null,
  counters: string[],
  applied: string | null,
  served: string[],
  ended: string[],
  oldestIds: string[],
];

/**
 * The snapshot (lua/stats-read-8.lua) and, while the agents are at most a page (READ_PAGE), their
 * documents in the same transaction: one moment of the workspace. More agents are read in pages
 * right after it (scanHash), so their counts may include steps made after the snapshot.
 */
async function readSnapshot(
  redis: RedisClient,
  workspace: string,
  each: (field: string, value: string) => void,
): Promise<StatsSnapshot> {
  const k = workspaceKeys(workspace);
  const keys = [k.queue, k.skillSets, k.skillSetQueues, k.contacts, k.stats, k.meta, k.served, k.ended];
  const args = [LONGEST_WAIT_READS];
  if ((await redis.hlen(k.agents)) > READ_PAGE) {
    const snapshot = (await runLua(redis, STATS_READ, keys, args)) as StatsSnapshot;
    await scanHash(redis, k.agents, each);
    return snapshot;
  }
  // EVALSHA in the transaction; EVAL when Redis has not cached the script yet (nothing ran).
  let tx = await redis
    .multi()
    .evalsha(STATS_READ_SHA, keys.length, ...keys, ...args)
    .hgetall(k.agents)
    .exec();
  if (tx?.[0]?.[0] && /NOSCRIPT/.test(tx[0][0].message))
    tx = await redis
      .multi()
      .eval(STATS_READ.lua, keys.length, ...keys, ...args)
      .hgetall(k.agents)
      .exec();
  if (!tx) throw new Error('the /stats transaction was aborted');
  for (const [err] of tx) if (err) throw err;
  const agents = tx[1]![1] as Record<string, string>;
  for (const field of Object.keys(agents)) each(field, agents[field]!);
  return tx[0]![1] as StatsSnapshot;
}

/**
 * GET /stats. The queue's parts (depth, each queue's depth and oldest contact, the oldest contact),
 * the counters, the window's decisions, abandons and expirations and the applied position are one
 * snapshot (lua/stats-read-8.lua), and so are the agents while they are at most READ_PAGE; more
 * agents are read in pages after it, so no one read holds Redis long: then the agents' counts
 * (`agentsByState`, each queue's `agents`, `occupancy`) may include steps made after the snapshot.
 */
export async function readStats(
  redis: RedisClient,
  workspace: string,
  now: number,
  serviceLevelMs = DEFAULT_SERVICE_LEVEL_MS,
): Promise<WorkspaceStats> {
  const agentsByState: Record<string, number> = {
    offline: 0,
    available: 0,
    away: 0,
    busy: 0,
    wrapup: 0,
    reserved: 0,
  };
  let held = 0;
  let room = 0;
  // Agents grouped by what decides which queues they serve (skills, channels) and their state: the
  // per-queue counts below cost the number of groups, not of agents.
  // Each group also sums, over its agents present as available, the contacts held and the capacity.
  const groups = new Map<
    string,
    {
      skills: Set<string>;
      channels: string[] | null;
      state: string;
      n: number;
      held: number;
      room: number;
    }
  >();
  // Each agent as stored, folded a page at a time as the pages come: 10,000 agents parsed in one
  // go, and copied into their public views, held the event loop for about 45 ms, each request in
  // flight waiting behind it.
  const [queued, sets, depths, oldestId, oldestDoc, flatCounters, applied, servedSet, endedSet, oldestIds] =
    await readSnapshot(redis, workspace, (_, text) => {
      const a = JSON.parse(text) as StoredAgent;
      agentsByState[a.state] = (agentsByState[a.state] ?? 0) + 1;
      const channels = typeof a.capacity === 'object' ? Object.keys(a.capacity).sort() : null;
      // Skills and channels hold neither "|" nor ",".
      const key = `${a.state}|${channels === null ? '*' : channels.join(',')}|${a.skills.join(',')}`;
      let g = groups.get(key);
      if (g) g.n++;
      else {
        g = { skills: new Set(a.skills), channels, state: a.state, n: 1, held: 0, room: 0 };
        groups.set(key, g);
      }
      if (a.presence !== 'available') return;
      const capacity =
        typeof a.capacity === 'number' ? a.capacity : Object.values(a.capacity).reduce((x, y) => x + y, 0);
      const active = Array.isArray(a.activeContacts) ? a.activeContacts.length : 0;
      held += active;
      room += capacity;
      g.held += active;
      g.room += capacity;
    });
  const counters = new Map<string, string>();
  for (let i = 0; i + 1 < flatCounters.length; i += 2) counters.set(flatCounters[i]!, flatCounters[i + 1]!);
  const position = applied ?? '0-0';
  // The third part of a decision is its contact's wait (ms).
  const served: Served[] = inWindow(servedSet, now).map(([queue, at, waited]) => ({
    queue,
    at,
    waitedMs: Number(waited),
  }));
  const ended: Ended[] = [];
  for (const [queue, at, kind] of inWindow(endedSet, now))
    if (kind === 'abandoned' || kind === 'expired') ended.push({ queue, at, kind });
  // Counted in maps, not objects: skills and channels are the clients' names, and one such as
  // "constructor", "toString" or "__proto__" would read (and write) Object.prototype's members.
  const bySkills = new Map<string, number>();
  const byChannel = new Map<string, Map<string, number>>();
  sets.forEach((s, i) => {
    // Queues are named by their skills on their channel: "voice/Billing,voice/English".
    const { channel, skills: bare } = queueName(s);
    const depth = depths[i] ?? 0;
    bySkills.set(bare, (bySkills.get(bare) ?? 0) + depth);
    const on = byChannel.get(channel) ?? new Map<string, number>();
    on.set(bare, depth);
    byChannel.set(channel, on);
  });
  // Object.fromEntries defines each name as an own property, "__proto__" too.
  const queueBySkills: Record<string, number> = Object.fromEntries(bySkills);
  const queueByChannel: Record<string, Record<string, number>> = Object.fromEntries(
    [...byChannel].map(([channel, on]) => [channel, Object.fromEntries(on)]),
  );
  let longestWaitMs = 0;
  const oldestAt = oldestDoc === null ? null : routeOf(oldestDoc)?.queuedAtMs;
  if (oldestId !== null && oldestAt !== undefined && oldestAt !== null && Number.isFinite(oldestAt))
    longestWaitMs = Math.max(0, now - oldestAt);
  const byQueue = new Map<string, Served[]>();
  for (const s of served) byQueue.set(s.queue, [...(byQueue.get(s.queue) ?? []), s]);
  const endedBy = new Map<string, Ended[]>();
  for (const e of ended) endedBy.set(e.queue, [...(endedBy.get(e.queue) ?? []), e]);
  const routes = [...new Set([...sets, ...byQueue.keys(), ...endedBy.keys()])].sort();
  const depthOf = new Map(sets.map((s, i) => [s, depths[i] ?? 0]));
  const waiting = new Set(sets.filter((s) => (depthOf.get(s) ?? 0) > 0));
  const oldestOf =
    waiting.size > 0
      ? await oldestPerRoute(redis, workspace, waiting, oldestIds, oldestDoc)
      : new Map<string, { queuedAtMs: number }>();
  const queues = routes.map((route): QueueStats => {
    const need = routeNeeds(route);
    const agents: Record<string, number> = Object.fromEntries(
      Object.keys(agentsByState).map((st) => [st, 0]),
    );
    let qHeld = 0;
    let qRoom = 0;
    for (const g of groups.values())
      if (
        (g.channels === null || g.channels.includes(need.channel)) &&
        need.skills.every((x) => g.skills.has(x))
      ) {
        agents[g.state] = (agents[g.state] ?? 0) + g.n;
        qHeld += g.held;
        qRoom += g.room;
      }
    const oldest = oldestOf.get(route);
    return {
      ...queueName(route),
      queued: depthOf.get(route) ?? 0,
      longestWaitMs: !waiting.has(route)
        ? 0
        : oldest && Number.isFinite(oldest.queuedAtMs)
          ? Math.max(0, now - oldest.queuedAtMs)
          : null,
      agents,
      occupancy: share(qHeld, qRoom),
      ...windowOf(byQueue.get(route) ?? [], endedBy.get(route) ?? [], serviceLevelMs),
    };
  });
  const n = (key: string) => Number(counters.get(key) ?? 0);
  return {
    queued,
    queueBySkills,
    queueByChannel,
    longestWaitMs,
    oldestContactId: oldestId,
    agentsByState,
    assignments: n('assignments'),
    completed: n('completed'),
    abandoned: n('abandoned'),
    expired: n('expired'),
    transferred: n('transferred'),
    contactsQueuedSoFar: n('queued'),
    window: { ms: SERVED_WINDOW_MS, serviceLevelMs, ...windowOf(served, ended, serviceLevelMs) },
    queues,
    occupancy: share(held, room),
    position,
  };
}
