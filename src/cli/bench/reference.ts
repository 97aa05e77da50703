/**
 * `reference`: the reference ACD's dispatcher loop (TOPOLOGY.md), re-implemented on Redis as that
 * design does it, so every bench run can measure the figure Switchboard is compared with on the
 * same machine. It is kept here the way `floor` is: a fixed point of comparison, not a router.
 *
 * - Agents: a hash each (`status`, `skills`) and one availability set per skill, scored by the
 *   time the agent became available (the longest available agent has the lowest score).
 * - Contacts: a hash each and one queue (a sorted set scored by arrival).
 * - The loop, one contact at a time: BZPOPMIN the queue head *before* it has an agent; read the
 *   contact's skills; take a 1 s lock (SET NX PX 1000); read each of its skills' availability set
 *   whole (one ZRANGE each) and intersect them in the client; if an agent holds every skill, take
 *   it out of each set, mark agent and contact (separate HSETs), XADD the assignment and release
 *   the lock. Else release the lock, re-queue the contact 1 s further back than it was, and sleep
 *   (up to 2 s) before the next pop.
 * - Zero handle time, as in `seed`: the assignment completes at once, as an agent state change
 *   under the agent's own 1 s lock (contact marked done, agent marked available, re-added to each
 *   skill's set now).
 *
 * Every call is awaited on its own (no pipelining), as the reference does. Its keys are a hash tag
 * of their own, removed afterwards. Same seeded skills as `seed` (src/cli/sim/random.ts).
 */
import { Redis } from 'ioredis';
import { KEY_ROOT } from '../../adapters/redis/keys.ts';
import { seededRandom } from '../sim/random.ts';
import { nowNs, round, seconds } from '../sim/stats.ts';
import { type Note, queueCommands, seedAgents, uncovered } from './workspace.ts';

export interface ReferenceOptions {
  readonly agents: number;
  readonly contacts: number;
  readonly seed: number;
  /** The longest sleep after a miss (the reference: 2 s); shorter only in tests. */
  readonly maxSleepMs?: number;
}

export interface ReferenceFigures {
  /** Assignments per second of the loop, completions included (the reference ACD's figure). */
  readonly assignmentsPerS: number;
  readonly assignments: number;
  readonly seconds: number;
  /** Redis calls the loop made per assignment (each one round trip). */
  readonly callsPerAssignment: number;
  /** Contacts popped with no available agent holding their skills (re-queued 1 s back). */
  readonly misses: number;
  /** Time the loop slept after misses. */
  readonly sleptMs: number;
  /** Lock attempts that found the lock taken. */
  readonly lockContended: number;
  readonly unassignable: number;
}

const LOCK_MS = 1000;
const REQUEUE_BACK_MS = 1000;
const MAX_SLEEP_MS = 2000;
/** The run stops here whatever happens (a reference loop that sleeps a lot is slow, not stuck). */
const HARD_STOP_MS = 600_000;

export async function referenceWorkload(
  url: string,
  o: ReferenceOptions,
  note: Note,
): Promise<ReferenceFigures> {
  const tag = `${KEY_ROOT}:{bench-reference-${Date.now()}}`;
  const key = {
    queue: `${tag}:queue`,
    lock: `${tag}:lock`,
    assignments: `${tag}:assignments`,
    avail: (skill: string) => `${tag}:avail:${skill}`,
    agent: (id: string) => `${tag}:agent:${id}`,
    agentLock: (id: string) => `${tag}:lock:agent:${id}`,
    contact: (id: string) => `${tag}:contact:${id}`,
  };
  const redis = new Redis(url, { maxRetriesPerRequest: 2, enableAutoPipelining: false });
  try {
    const rng = seededRandom(o.seed);
    const agents = seedAgents(o.agents, rng);
    const contacts = queueCommands(o.contacts, rng);
    const unassignable = uncovered(agents, contacts);
    const target = o.contacts - unassignable;
    note(`setting up ${o.agents} agents and ${o.contacts} contacts (reference ACD layout)`);
    const start = Date.now();
    for (let i = 0; i < agents.length; i += 5000) {
      const p = redis.pipeline();
      for (const a of agents.slice(i, i + 5000)) {
        p.hset(key.agent(a.id), 'status', 'available', 'skills', a.skills.join(','));
        for (const s of a.skills) p.zadd(key.avail(s), start, a.id);
      }
      await p.exec();
    }
    for (let i = 0; i < contacts.length; i += 5000) {
      const p = redis.pipeline();
      contacts.slice(i, i + 5000).forEach((c, j) => {
        if (c.type !== 'QueueContact') return;
        p.hset(key.contact(c.contactId), 'status', 'queued', 'skills', c.skills.join(','));
        p.zadd(key.queue, start + i + j, c.contactId);
      });
      await p.exec();
    }

    let calls = 0;
    const call = <T>(p: Promise<T>): Promise<T> => {
      calls++;
      return p;
    };
    let lockContended = 0;
    /** SET NX PX, retried while taken (the reference crashed here; the bench counts and waits). */
    const lock = async (k: string, token: string) => {
      for (;;) {
        if ((await call(redis.set(k, token, 'PX', LOCK_MS, 'NX'))) === 'OK') return;
        lockContended++;
        await sleep(1);
      }
    };

    /** The agent with every skill who has been available longest: each set read whole. */
    const findAgent = async (skills: string[]): Promise<string | undefined> => {
      const sets: string[][] = [];
      for (const s of skills) sets.push(await call(redis.zrange(key.avail(s), 0, -1, 'WITHSCORES')));
      return longestAvailable(sets);
    };

    let assignments = 0;
    let misses = 0;
    let sleptMs = 0;
    note(`running the reference loop until ${target} contacts are assigned`);
    const hardStop = Date.now() + HARD_STOP_MS;
    const t0 = nowNs();
    while (assignments < target && Date.now() < hardStop) {
      const popped = await call(redis.bzpopmin(key.queue, MAX_SLEEP_MS / 1000));
      if (!popped) break; // nothing left: the rest were never assignable
      const [, contactId, score] = popped;
      const skills = ((await call(redis.hget(key.contact(contactId), 'skills'))) ?? '').split(',');
      const token = `${contactId}:${calls}`;
      await lock(key.lock, token);
      const agent = await findAgent(skills);
      if (!agent) {
        await call(redis.del(key.lock));
        misses++;
        await call(redis.zadd(key.queue, Number(score) + REQUEUE_BACK_MS, contactId));
        const nap = Math.floor(rng() * (o.maxSleepMs ?? MAX_SLEEP_MS));
        sleptMs += nap;
        await sleep(Math.min(nap, Math.max(0, hardStop - Date.now())));
        continue;
      }
      for (const s of skills) await call(redis.zrem(key.avail(s), agent));
      await call(redis.hset(key.agent(agent), 'status', 'busy', 'contact', contactId));
      await call(redis.hset(key.contact(contactId), 'status', 'assigned', 'agent', agent));
      await call(redis.xadd(key.assignments, '*', 'contact', contactId, 'agent', agent));
      await call(redis.del(key.lock));
      assignments++;

      // Zero handle time: the agent completes at once and is available again.
      const agentToken = `${agent}:${calls}`;
      await lock(key.agentLock(agent), agentToken);
      await call(redis.hset(key.contact(contactId), 'status', 'completed'));
      await call(redis.hset(key.agent(agent), 'status', 'available', 'contact', ''));
      const agentSkills = ((await call(redis.hget(key.agent(agent), 'skills'))) ?? '').split(',');
      const now = Date.now();
      for (const s of agentSkills) await call(redis.zadd(key.avail(s), now, agent));
      await call(redis.del(key.agentLock(agent)));
    }
    const elapsed = seconds(nowNs() - t0);
    if (assignments < target)
      throw new Error(`the reference loop stopped after ${assignments} of ${target} assignments`);
    return {
      assignmentsPerS: Math.round(assignments / elapsed),
      assignments,
      seconds: round(elapsed, 3) ?? 0,
      callsPerAssignment: round(calls / Math.max(1, assignments), 1) ?? 0,
      misses,
      sleptMs,
      lockContended,
      unassignable,
    };
  } finally {
    await dropTag(redis, tag).catch(() => {});
    redis.disconnect();
  }
}

/**
 * The reference's choice, made in the client: of the agents in every availability set (each a
 * flat ZRANGE WITHSCORES reply), the one with the lowest score (available longest), or undefined.
 */
export function longestAvailable(sets: readonly (readonly string[])[]): string | undefined {
  let common: Map<string, number> | undefined;
  for (const flat of sets) {
    const here = new Map<string, number>();
    for (let i = 0; i < flat.length; i += 2) {
      const id = flat[i]!;
      const score = Number(flat[i + 1]);
      if (!common || common.has(id)) here.set(id, Math.max(score, common?.get(id) ?? score));
    }
    common = here;
  }
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const [id, score] of common ?? []) {
    if (score < bestScore) {
      best = id;
      bestScore = score;
    }
  }
  return best;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function dropTag(redis: Redis, tag: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${tag}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}
