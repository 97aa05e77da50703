import { READ_PAGE } from './event-log.ts';
import { workspaceKeys } from './keys.ts';
import type { RedisClient } from './scripts.ts';

/**
 * The routing index as plain data: who is available since when, and what is queued with which
 * priority and arrival number. This is the one place that knows how the sorted sets are laid out
 * (lua/includes/routing.lua); readers such as the auditor (src/audit) use only this, so a change
 * of layout changes this function's body and nothing else.
 *
 * Today's layout: `sb:{ws}:pools` members `<skill set>|<since, 15 digits>|<agent>` (one per
 * available agent that takes any channel, with its bare skills; one per channel an agent with
 * capacity per channel has room on, with its skills named `<channel>/<skill>`) and
 * `sb:{ws}:queues` members `<skill set>|<9 - priority>|<arrival, 16 digits>|<contact>` (one per
 * queued contact, its skills named on its channel; under priority aging
 * `<skill set>|A|<routing key, 16 digits>|<contact>`). Skill sets are not returned: the documents
 * hold them; channels are.
 */
export interface RoutingIndex {
  /** `channel`: the one channel of this entry (an agent with capacity per channel); absent: any. */
  readonly available: { agentId: string; since: number; channel?: string }[];
  /**
   * `priority` and `seq` (arrival number) under strict priority; under priority aging, `key` (the
   * routing key) instead.
   */
  readonly queued: { contactId: string; priority?: number; seq?: number; key?: number; channel: string }[];
}

/** The channel a skill-set name is on ("voice/A,voice/B" → voice), or undefined for bare skills. */
function channelOfName(name: string): string | undefined {
  const slash = name.indexOf('/');
  return slash < 0 ? undefined : name.slice(0, slash);
}

/**
 * A pool member: `<skill set>|<key>|<agent>`, the key being the agent's available-since (15
 * digits), or under least-occupied its share of capacity in use (8 digits, or ":" and 12 over a
 * share of 1) and then its since.
 * Members of a pool sort by key, then agent.
 */
export function poolMember(m: string): { name: string; key: string; since: number; agentId: string } {
  const [name = '', key = '', agentId = ''] = m.split('|');
  return { name, key, since: Number(key.slice(-15)), agentId };
}

/**
 * Every member of a lexicographic sorted set (all scores 0: the pools, the skill-set queues), in
 * member order, READ_PAGE a read: each read starts after the last member read, so members added or
 * removed meanwhile never shift a page (as reading by rank would) and no read holds Redis long.
 */
async function members(redis: RedisClient, key: string): Promise<string[]> {
  const out: string[] = [];
  let from = '-';
  for (;;) {
    const page = await redis.zrangebylex(key, from, '+', 'LIMIT', 0, READ_PAGE);
    out.push(...page);
    if (page.length < READ_PAGE) return out;
    from = `(${page[page.length - 1]!}`;
  }
}

export async function readRoutingIndex(redis: RedisClient, workspace: string): Promise<RoutingIndex> {
  const k = workspaceKeys(workspace);
  const [pools, queues] = await Promise.all([members(redis, k.pools), members(redis, k.skillSetQueues)]);
  const available = pools.map((m) => {
    const { name, since, agentId } = poolMember(m);
    const channel = channelOfName(name);
    return channel === undefined ? { agentId, since } : { agentId, since, channel };
  });
  const queued = queues.map((m) => {
    const [name = '', inverted = '', seq = '', contactId = ''] = m.split('|');
    const channel = channelOfName(name) ?? '';
    // Under priority aging: "<skill set>|A|<routing key, 16 digits>|<contact>".
    if (inverted === 'A') return { contactId, key: Number(seq), channel };
    return { contactId, priority: 9 - Number(inverted), seq: Number(seq), channel };
  });
  return { available, queued };
}

/**
 * How long a decision counts in its queue's measured service rate and statistics (the dispatcher's
 * window), ms; and the most recent decisions kept per queue within it.
 */
export const SERVED_WINDOW_MS = 300_000;
export const SERVED_KEEP = 64;

/** Where a queued contact stands, and how long it may still wait. */
export interface QueuePlace {
  /** Queued contacts ahead of it in its own queue (same channel and requirements), in routing order. */
  readonly queuePosition: number;
  /**
   * (queuePosition + 1) ÷ its queue's measured service rate: its decisions of the last
   * SERVED_WINDOW_MS (the latest SERVED_KEEP), over the time since the oldest of them (at least
   * 1 s); null when none.
   */
  readonly estimatedWaitMs: number | null;
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** Where a queued contact's document puts it: its queue and its member there; null when not queued. */
function queueMember(text: string, id: string): { queue: string; member: string } | null {
  const d = JSON.parse(text) as {
    state?: string;
    skills?: string[];
    channel?: string;
    priority?: number;
    _seq?: number;
    /** Under priority aging: its routing key (a string of digits, past 14 of them). */
    _key?: string;
  };
  if (d.state !== 'queued' || !Array.isArray(d.skills) || typeof d._seq !== 'number') return null;
  const channel = d.channel ?? 'voice';
  const queue = d.skills.map((s) => `${channel}/${s}`).join(',');
  const member =
    d._key !== undefined
      ? `${queue}|A|${d._key.padStart(16, '0')}|${id}`
      : `${queue}|${9 - (d.priority ?? 0)}|${pad(d._seq, 16)}|${id}`;
  return { queue, member };
}

/** How many times a contact requeued between its two reads is read again before giving up. */
const PLACE_TRIES = 5;

/**
 * Contact `id`'s document (its stored text; null when there is none) and, while it is queued, its
 * place at time `now` (ms): both from one snapshot. The document is read first, for its queue and
 * member; then a transaction reads the document again with the counts of its place, so no step of
 * the projector or the dispatcher lands between the state answered and the place. The counts are
 * kept only when the document read with them still has the member they were counted for (a
 * contact assigned meanwhile is answered assigned with no place; one requeued elsewhere is read
 * again). Cost: two ZLEXCOUNTs and one ZRANGEBYLEX LIMIT 1, whatever the queue's length.
 */
export async function contactWithPlace(
  redis: RedisClient,
  workspace: string,
  id: string,
  now: number,
): Promise<{ text: string; place: QueuePlace | null } | null> {
  const k = workspaceKeys(workspace);
  let text = await redis.hget(k.contacts, id);
  for (let tries = 0; text !== null; tries++) {
    const at = queueMember(text, id);
    if (at === null) return { text, place: null };
    if (tries === PLACE_TRIES)
      throw new Error(`contact "${id}" of workspace "${workspace}" moved between queues at every read`);
    const { queue, member } = at;
    const from = `[${queue}|${pad(Math.max(0, now - SERVED_WINDOW_MS), 15)}`;
    const tx = await redis
      .multi()
      .hget(k.contacts, id)
      .zlexcount(k.skillSetQueues, `[${queue}|`, `(${member}`)
      .zlexcount(k.served, from, `(${queue}|\xff`)
      .zrangebylex(k.served, from, `(${queue}|\xff`, 'LIMIT', 0, 1)
      .exec();
    if (!tx) throw new Error('the contact read transaction was aborted');
    for (const [err] of tx) if (err) throw err;
    const again = tx[0]![1] as string | null;
    // Unchanged text (the common case) is not parsed again.
    if (again !== null && again !== text && queueMember(again, id)?.member !== member) {
      text = again; // no longer queued (answered without a place), or requeued: read again
      continue;
    }
    if (again === null) return null;
    const ahead = tx[1]![1] as number;
    const served = tx[2]![1] as number;
    const oldest = tx[3]![1] as string[];
    const first = oldest[0] ? Number(oldest[0].slice(queue.length + 1, queue.length + 16)) : null;
    const rate = first === null || served === 0 ? null : served / Math.max(now - first, 1000);
    return {
      text: again,
      place: { queuePosition: ahead, estimatedWaitMs: rate === null ? null : Math.round((ahead + 1) / rate) },
    };
  }
  return null;
}

/** A queue's decisions in the window: when each was made and how long its contact had waited. */
export interface Served {
  readonly queue: string;
  readonly at: number;
  readonly waitedMs: number;
}

/**
 * The members of a window set ("<queue>|<ms, 15 digits>|<what>|<contact>", the queue name holding
 * no "|") from `now - SERVED_WINDOW_MS` on, as [queue, ms, what].
 */
export function inWindow(members: readonly string[], now: number): [string, number, string][] {
  const out: [string, number, string][] = [];
  for (const m of members) {
    const [queue = '', at = '', what = ''] = m.split('|');
    const t = Number(at);
    if (t >= now - SERVED_WINDOW_MS) out.push([queue, t, what]);
  }
  return out;
}

/** A window set's members, read whole (at most SERVED_KEEP a queue), from `now - SERVED_WINDOW_MS` on. */
const readWindow = async (redis: RedisClient, key: string, now: number) =>
  inWindow(await redis.zrangebylex(key, '-', '+'), now);

/** Every queue's recent decisions (at most SERVED_KEEP each), from `now - SERVED_WINDOW_MS` on. */
export async function readServed(redis: RedisClient, workspace: string, now: number): Promise<Served[]> {
  // The third part of a decision is its contact's wait (ms).
  return (await readWindow(redis, workspaceKeys(workspace).served, now)).map(([queue, at, waited]) => ({
    queue,
    at,
    waitedMs: Number(waited),
  }));
}

/** A contact that left its queue while waiting (abandoned or expired), and when. */
export interface Ended {
  readonly queue: string;
  readonly at: number;
  readonly kind: 'abandoned' | 'expired';
}

/**
 * Every queue's recent abandons and expirations (at most SERVED_KEEP each, the projector's
 * ENDED_KEEP), from `now - SERVED_WINDOW_MS` on: the projector's ended set, the same window as
 * the served one.
 */
export async function readEnded(redis: RedisClient, workspace: string, now: number): Promise<Ended[]> {
  const out: Ended[] = [];
  for (const [queue, at, kind] of await readWindow(redis, workspaceKeys(workspace).ended, now))
    if (kind === 'abandoned' || kind === 'expired') out.push({ queue, at, kind });
  return out;
}
