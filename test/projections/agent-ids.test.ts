/**
 * GET /agents by id reads the agent ids' index (src/adapters/redis/agent-ids.ts), a page of ids
 * and their documents at a time: a listing reads what it answers, whatever the workspace holds,
 * and pages on past any count with `next`. The projector keeps the index in the step that writes or
 * deletes a document; a workspace whose agents came before the index (or from an older projector,
 * in an upgrade) has it made whole by its first listing, in bounded steps, beside a projector
 * changing the agents; the audit holds the index against the replay's agents once it is marked whole.
 */
import { describe, expect, it } from 'vitest';
import {
  AGENT_IDS_STEP,
  agentIdsState,
  beginMaking,
  wholeAgentIds,
} from '../../src/adapters/redis/agent-ids.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { listAgents } from '../../src/adapters/redis/projection-reads.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup } from '../../src/projections/projector.ts';
import { sendProjectedMany } from '../support/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { commandsDuring, stepDurations } from '../support/slowlog.ts';
import { waitFor } from '../support/wait.ts';

describe('the agent ids index', () => {
  const suite = suiteRedis();
  let n = 0;
  const fresh = async () => {
    const ws = `agent-ids-${Date.now().toString(36)}-${n++}`;
    await ensureGroup(suite.redis, ws);
    return ws;
  };

  const apply = (ws: string, commands: readonly Command[]) => sendProjectedMany(suite.redis, ws, commands);
  const register = (ids: readonly string[]): Command[] =>
    ids.map((agentId) => ({ type: 'RegisterAgent', agentId, skills: ['s'], capacity: 1 }));
  const remove = (ids: readonly string[]): Command[] =>
    ids.map((agentId) => ({ type: 'RemoveAgent', agentId }));
  const idsOf = (count: number, tag = 'a') =>
    Array.from({ length: count }, (_, i) => `${tag}-${String((i * 7919) % count).padStart(5, '0')}`);
  /** The index no longer marked whole (as after a step that keeps none): made again by the next listing. */
  const unmark = (ws: string) => suite.redis.hdel(workspaceKeys(ws).meta, 'agentIds');
  /** As a version before the index left a workspace: no ids, no mark. */
  const asBeforeTheIndex = async (ws: string) => {
    await suite.redis.del(workspaceKeys(ws).agentIds);
    await unmark(ws);
  };
  const byteOrder = (xs: readonly string[]) => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

  /** Every agent of `ws` by id, page after page of `limit` by `next`. */
  async function pageThrough(ws: string, limit: number, filter: { state?: string } = {}, reads?: number) {
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await listAgents(
        suite.redis,
        ws,
        { ...filter, limit, ...(after ? { after } : {}) },
        reads,
      );
      pages++;
      expect(page.agents.length).toBeLessThanOrEqual(limit);
      seen.push(...page.agents.map((a) => a.id));
      if (page.next === null) return { seen, pages };
      after = page.next;
    }
  }

  it('a listing reads the documents it answers, and pages on by `next` to the last', async () => {
    const ws = await fresh();
    const k = workspaceKeys(ws);
    const ids = idsOf(3000);
    await apply(ws, register(ids));

    // The first 10 of 3,000: the index's ids, then 11 documents (one to tell that more follow).
    const { result, calls } = await commandsDuring(suite.admin, () =>
      listAgents(suite.redis, ws, { limit: 10 }),
    );
    expect(result.agents.map((a) => a.id)).toEqual(byteOrder(ids).slice(0, 10));
    expect(result.next).toBe(byteOrder(ids)[9]);
    const onDocuments = calls.filter((c) => c[1] === k.agents);
    expect(onDocuments.map((c) => c[0]!.toUpperCase())).toEqual(['HLEN', 'HMGET']);
    expect(onDocuments[1]!.length - 2).toBe(11);

    // Pages of 250 by `next`: every agent once, in byte order, the last page's `next` null.
    const all = await pageThrough(ws, 250);
    expect(all.seen).toEqual(byteOrder(ids));
    expect(all.pages).toBe(12);
    // A limit that ends with the last agent: no next.
    const tail = await listAgents(suite.redis, ws, { limit: 10, after: byteOrder(ids)[2989]! });
    expect(tail.agents.length).toBe(10);
    expect(tail.next).toBe(null);
  });

  it('a listing by a rare state looks at a bounded number of ids a page, with a `next` to go on from', async () => {
    const ws = await fresh();
    const ids = idsOf(2500);
    await apply(ws, register(ids));
    const away = [ids[17]!, ids[1200]!, ids[2400]!];
    await apply(
      ws,
      away.map((agentId) => ({ type: 'ChangeAgentState', agentId, state: 'away' }) as Command),
    );
    // Looking at 1,000 ids a page: three pages hold the three (some none), `next` each time but the last.
    const paged = await pageThrough(ws, 10, { state: 'away' }, 1000);
    expect(paged.seen).toEqual(byteOrder(away));
    expect(paged.pages).toBe(3);
    const first = await listAgents(suite.redis, ws, { state: 'away', limit: 10 }, 1000);
    expect(first.next).toBe(byteOrder(ids)[999]);
  });

  it('the projector marks a workspace whose first agent it registers, and keeps the ids as it registers and removes', async () => {
    const ws = await fresh();
    expect(await agentIdsState(suite.redis, ws)).toEqual({ marked: false, ids: 0, agents: 0 });
    await apply(ws, register(['b', 'a', 'c']));
    expect(await agentIdsState(suite.redis, ws)).toEqual({ marked: true, ids: 3, agents: 3 });
    await apply(ws, remove(['a']));
    expect(await suite.redis.zrange(workspaceKeys(ws).agentIds, 0, -1)).toEqual(['b', 'c']);
    // Refused commands change nothing: a second registration, a removal of no agent.
    await apply(ws, [...register(['b']), ...remove(['zz'])]);
    expect(await suite.redis.zrange(workspaceKeys(ws).agentIds, 0, -1)).toEqual(['b', 'c']);
    expect((await auditWorkspace(suite.redis, ws)).violations).toEqual([]);
  });

  it('agents from before the index: the first listing makes it whole in bounded steps, and answers them all', async () => {
    const ws = await fresh();
    const ids = idsOf(4000);
    await apply(ws, register(ids));
    await asBeforeTheIndex(ws);
    // A registration now leaves the workspace unmarked: it has agents the index lacks.
    await apply(ws, register(['late']));
    expect(await agentIdsState(suite.redis, ws)).toEqual({ marked: false, ids: 1, agents: 4001 });
    // The audit holds an unmarked index to nothing.
    expect((await auditWorkspace(suite.redis, ws)).violations).toEqual([]);

    const { result: page, us } = await stepDurations(suite.admin, () =>
      listAgents(suite.redis, ws, { limit: 5 }),
    );
    expect(page.agents.map((a) => a.id)).toEqual(byteOrder([...ids, 'late']).slice(0, 5));
    expect(await agentIdsState(suite.redis, ws)).toEqual({ marked: true, ids: 4001, agents: 4001 });
    // Each step of the making looks at about AGENT_IDS_STEP documents: several steps, none long.
    expect(us.length).toBeGreaterThan(4000 / AGENT_IDS_STEP);
    // (Redis's own time: a step descheduled on a loaded machine counts, so the median is held.)
    expect([...us].sort((a, b) => a - b)[Math.floor(us.length / 2)]!).toBeLessThan(2000);
    expect((await auditWorkspace(suite.redis, ws)).violations).toEqual([]);
  });

  it('made whole beside a projector registering and removing agents: every id once, none of a removed agent', async () => {
    const ws = await fresh();
    const k = workspaceKeys(ws);
    const ids = idsOf(3000);
    await apply(ws, register(ids));
    await asBeforeTheIndex(ws);
    const gone = ids.filter((_, i) => i % 3 === 0);
    const added = idsOf(600, 'n');
    // The making and the projector's steps interleave: commands of 50 projected at a time.
    const changes = [...remove(gone), ...register(added)];
    const projecting = (async () => {
      for (let i = 0; i < changes.length; i += 50) await apply(ws, changes.slice(i, i + 50));
    })();
    const made = await wholeAgentIds(suite.redis, ws);
    await projecting;
    expect(made.steps).toBeGreaterThan(2);
    expect(made.whole).toBe(true);
    const want = byteOrder([...ids.filter((_, i) => i % 3 !== 0), ...added]);
    expect(await suite.redis.zrange(k.agentIds, 0, -1)).toEqual(want);
    expect((await agentIdsState(suite.redis, ws)).marked).toBe(true);
    expect((await pageThrough(ws, 1000)).seen).toEqual(want);
    expect((await auditWorkspace(suite.redis, ws)).violations).toEqual([]);
  });

  it('an older projector beside: an agent it registers or removes is listed as it is, the index made whole again', async () => {
    const ws = await fresh();
    const k = workspaceKeys(ws);
    await apply(ws, register(['a', 'b', 'c']));
    // An older projector registers "d" (its document, no id) and removes "a" (its document, not its id).
    const doc = (await suite.redis.hget(k.agents, 'b'))!.replaceAll('"b"', '"d"');
    await suite.redis.hset(k.agents, 'd', doc);
    const listed = await listAgents(suite.redis, ws, { limit: 10 });
    expect(listed.agents.map((a) => a.id)).toEqual(['a', 'b', 'c', 'd']);
    await suite.redis.hdel(k.agents, 'a');
    expect((await listAgents(suite.redis, ws, { limit: 10 })).agents.map((a) => a.id)).toEqual([
      'b',
      'c',
      'd',
    ]);
    expect(await suite.redis.zrange(k.agentIds, 0, -1)).toEqual(['b', 'c', 'd']);
  });

  it('a step of an older projector (in an upgrade, or after a rollback) leaves the index not whole until a listing makes it again', async () => {
    const ws = await fresh();
    const k = workspaceKeys(ws);
    await apply(ws, register(['a', 'bob', 'c']));
    const markedAt = await suite.redis.hget(k.meta, 'agentIds');
    expect(markedAt).toBe(await suite.redis.hget(k.meta, 'applied'));
    // An older projector's step: it replaces bob with bob2 (as many agents as before) and moves
    // the checkpoint alone, as a step that keeps no index does.
    const doc = (await suite.redis.hget(k.agents, 'bob'))!.replaceAll('"bob"', '"bob2"');
    await suite.redis.multi().hdel(k.agents, 'bob').hset(k.agents, 'bob2', doc).exec();
    await suite.redis.hset(k.meta, 'applied', `${Date.now()}-7`);
    expect(await agentIdsState(suite.redis, ws)).toEqual({ marked: false, ids: 3, agents: 3 });
    expect((await auditWorkspace(suite.redis, ws)).violations.map((v) => v.message).join('\n')).not.toMatch(
      /agent ids/,
    );
    // A step of this version after it: the mark is dropped (not moved on with the checkpoint).
    await apply(ws, register(['d']));
    expect(await suite.redis.hget(k.meta, 'agentIds')).toBe(null);
    const listed = await listAgents(suite.redis, ws, { limit: 10 });
    expect(listed.agents.map((a) => a.id)).toEqual(['a', 'bob2', 'c', 'd']);
    expect(await suite.redis.zrange(k.agentIds, 0, -1)).toEqual(['a', 'bob2', 'c', 'd']);
    expect((await agentIdsState(suite.redis, ws)).marked).toBe(true);
    // And this version's steps keep it whole from there.
    await apply(ws, [...register(['e']), ...remove(['a'])]);
    expect(await agentIdsState(suite.redis, ws)).toEqual({ marked: true, ids: 4, agents: 4 });
  });

  it('a step of an older projector while the index is made: not marked whole, made again by the next listing', async () => {
    const ws = await fresh();
    const k = workspaceKeys(ws);
    const ids = idsOf(4000);
    await apply(ws, [...register(ids), ...register(['bob'])]);
    await unmark(ws);
    const watcher = suite.server.client();
    try {
      const making = wholeAgentIds(suite.redis, ws);
      // Once the making has begun (its fill takes several steps): an older projector replaces bob
      // with bob2 (the counts stay equal) and moves the checkpoint alone.
      await waitFor(
        'the making to begin',
        async () => (await watcher.hget(k.meta, 'agentIdsFrom')) !== null,
        {
          everyMs: 1,
        },
      );
      const doc = (await watcher.hget(k.agents, 'bob'))!.replaceAll('"bob"', '"bob2"');
      await watcher
        .multi()
        .hdel(k.agents, 'bob')
        .hset(k.agents, 'bob2', doc)
        .hset(k.meta, 'applied', `${Date.now()}-9`)
        .exec();
      const made = await making;
      expect(made.whole).toBe(false);
      expect((await agentIdsState(suite.redis, ws)).marked).toBe(false);
      expect(await suite.redis.hget(k.meta, 'agentIdsFrom')).toBe(null);
    } finally {
      watcher.disconnect();
    }
    const listed = await listAgents(suite.redis, ws, { limit: 2, after: 'a-03999' });
    expect(listed.agents.map((a) => a.id)).toEqual(['bob2']);
    expect(await agentIdsState(suite.redis, ws)).toEqual({ marked: true, ids: 4001, agents: 4001 });
  });

  it("a making whose token another took (one begun across an older projector's step) marks nothing; the next one marks", async () => {
    const ws = await fresh();
    const k = workspaceKeys(ws);
    await apply(ws, register(idsOf(4000)));
    await unmark(ws);
    const other = suite.server.client();
    try {
      const making = wholeAgentIds(suite.redis, ws);
      await waitFor('the making to begin', async () => (await other.hget(k.meta, 'agentIdsFrom')) !== null, {
        everyMs: 1,
      });
      // Another instance's 'begin': its token (its fill and prune would follow).
      await other.hset(k.meta, 'agentIdsMaking', 'another-making');
      expect((await making).whole).toBe(false);
      expect(await suite.redis.hmget(k.meta, 'agentIds', 'agentIdsMaking')).toEqual([null, 'another-making']);
    } finally {
      other.disconnect();
    }
    // The next making (this process's) takes over and marks.
    expect((await wholeAgentIds(suite.redis, ws)).whole).toBe(true);
    expect(await suite.redis.hmget(k.meta, 'agentIdsFrom', 'agentIdsMaking')).toEqual([null, null]);
  });

  it("another instance's making begun during this one joins it: the index is marked, not each making cancelled", async () => {
    const ws = await fresh();
    const k = workspaceKeys(ws);
    await apply(ws, register(idsOf(4000)));
    await unmark(ws);
    const other = suite.server.client();
    try {
      const making = wholeAgentIds(suite.redis, ws);
      await waitFor(
        'the making to begin',
        async () => (await other.hget(k.meta, 'agentIdsMaking')) !== null,
        {
          everyMs: 1,
        },
      );
      const first = await other.hget(k.meta, 'agentIdsMaking');
      // Another instance begins (its listing at the same time): it joins the making under way.
      expect(await beginMaking(other, ws, 'another-making')).toBe(first);
      expect((await making).whole).toBe(true);
      expect((await agentIdsState(suite.redis, ws)).marked).toBe(true);
    } finally {
      other.disconnect();
    }
  });

  it('a making Redis refuses (out of memory) lists from the documents, by id with after and next', async () => {
    const ws = await fresh();
    const k = workspaceKeys(ws);
    await apply(ws, register(['a', 'b', 'c', 'd', 'e']));
    await asBeforeTheIndex(ws);
    const used = Number(/used_memory:(\d+)/.exec(await suite.admin.info('memory'))![1]);
    await suite.admin.config('SET', 'maxmemory', String(Math.floor(used / 2)));
    try {
      const first = await listAgents(suite.redis, ws, { limit: 2 });
      expect(first).toMatchObject({ next: 'b' });
      expect(first.agents.map((a) => a.id)).toEqual(['a', 'b']);
      const rest = await listAgents(suite.redis, ws, { limit: 3, after: 'b' });
      expect(rest.agents.map((a) => a.id)).toEqual(['c', 'd', 'e']);
      expect(rest.next).toBe(null);
      expect(await suite.redis.zcard(k.agentIds)).toBe(0);
    } finally {
      await suite.admin.config('SET', 'maxmemory', '0');
    }
  });

  it('`next` is null when the page ends with the last agent, by the ids it may look at or by limit', async () => {
    const ws = await fresh();
    await apply(ws, register(['a', 'b', 'c', 'd', 'e']));
    expect((await listAgents(suite.redis, ws, { limit: 5 }, 5)).next).toBe(null);
    expect((await listAgents(suite.redis, ws, { limit: 10 }, 5)).next).toBe(null);
    expect((await listAgents(suite.redis, ws, { state: 'away', limit: 10 }, 5)).next).toBe(null);
    expect((await listAgents(suite.redis, ws, { state: 'away', limit: 10 }, 4)).next).toBe('d');
    // A filtered page reads limit + 1 documents first, twice as many each time after.
    const { calls } = await commandsDuring(suite.admin, () =>
      listAgents(suite.redis, ws, { state: 'offline', limit: 1 }),
    );
    const documents = calls.filter(
      (c) => c[0]!.toUpperCase() === 'HMGET' && c[1] === workspaceKeys(ws).agents,
    );
    expect(documents.map((c) => c.length - 2)).toEqual([2]);
  });

  it('the audit names an id missing from a marked index, and one left of a removed agent', async () => {
    const ws = await fresh();
    const k = workspaceKeys(ws);
    await apply(ws, register(['a', 'b']));
    await suite.redis.zrem(k.agentIds, 'a');
    await suite.redis.zadd(k.agentIds, 0, 'ghost');
    const messages = (await auditWorkspace(suite.redis, ws)).violations.map((v) => v.message);
    expect(messages).toEqual([
      'routing index, agent ids: a missing; ghost should not be there (no such agent)',
    ]);
  });
});
