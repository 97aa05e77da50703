/**
 * Reads of every agent (GET /stats and the metrics' per-queue figures, the auditor's state check)
 * scan the agents' hash in pages of about READ_PAGE (HSCAN) instead of one HVALS: one read of
 * 10,000 agents held Redis for 1.3 – 15 ms. GET /agents without an availability filter reads the
 * agent ids' index a page at a time and the documents of those ids (test/projections/agent-ids.test.ts).
 * The auditor's read of the routing index goes by lex range, READ_PAGE members a read. GET /stats
 * and the metrics fold each page of agents as it comes, so a large workspace's agents are never
 * all parsed in one turn of the event loop; a list of agents by id parses only the documents it answers.
 */
import { describe, expect, it, vi } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { READ_PAGE } from '../../src/adapters/redis/event-log.ts';
import { hashEntries } from '../../src/adapters/redis/hash-scan.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { listAgents, readStats } from '../../src/adapters/redis/projection-reads.ts';
import { readRoutingIndex } from '../../src/adapters/redis/routing-index.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import type { Command } from '../../src/domain/commands.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { plainSettings } from '../support/positions.ts';
import { sendProjectedMany } from '../support/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { commandsDuring } from '../support/slowlog.ts';

describe('reads of every agent', () => {
  const suite = suiteRedis();

  /** What `f` returns, and the commands Redis ran meanwhile on `key`. */
  async function readsOf<T>(key: string, f: () => Promise<T>): Promise<{ result: T; calls: string[][] }> {
    const { result, calls } = await commandsDuring(suite.admin, f);
    return { result, calls: calls.filter((args) => args[1] === key) };
  }

  /** What `f` returns; `onAgent` is called at each agent document parsed meanwhile. */
  async function whileParsing<T>(f: () => Promise<T>, onAgent: () => void): Promise<T> {
    const parse = JSON.parse;
    const spy = vi.spyOn(JSON, 'parse').mockImplementation((text, reviver) => {
      if (text.includes('"presence"')) onAgent();
      return parse(text, reviver);
    });
    try {
      return await f();
    } finally {
      spy.mockRestore();
    }
  }

  /** What `f` returns, and how many agent documents were parsed meanwhile. */
  async function parsedDuring<T>(f: () => Promise<T>): Promise<{ result: T; parsed: number }> {
    let parsed = 0;
    const result = await whileParsing(f, () => parsed++);
    return { result, parsed };
  }

  const apply = (ws: string, commands: readonly Command[]) => sendProjectedMany(suite.redis, ws, commands);

  it(`lists 2,600 agents in reads of about ${READ_PAGE}, each once and by id`, async () => {
    const ws = `agent-reads-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    const n = 2600;
    const ids = Array.from({ length: n }, (_, i) => `agent-${(i * 7919) % n}`);
    const commands: Command[] = ids.map((agentId) => ({
      type: 'RegisterAgent',
      agentId,
      skills: ['s'],
      capacity: 1,
    }));
    await apply(ws, commands);
    expect(await suite.redis.hlen(k.agents)).toBe(n);

    // By id from the agent ids' index: a page of ids, then their documents (HMGET), 1,000 at a time.
    const listed = await readsOf(k.agents, () => listAgents(suite.redis, ws, { limit: 10_000 }));
    expect(listed.result.agents.map((a) => a.id)).toEqual([...ids].sort());
    expect(listed.result.next).toBe(null);
    const names = listed.calls.map((args) => args[0]!.toUpperCase());
    // HLEN: whether the index holds every agent (agent-ids.ts), asked in one step with its own count.
    expect(names).toEqual(['HLEN', 'HMGET', 'HMGET', 'HMGET']);

    const stats = await readsOf(k.agents, () => readStats(suite.redis, ws, Date.now()));
    expect(stats.result.agentsByState.offline).toBe(n);
    expect(stats.calls.every((args) => ['HLEN', 'HSCAN'].includes(args[0]!.toUpperCase()))).toBe(true);

    // A small hash's every entry (eachEntry, as the listing reads agents while their index is not
    // whole, the audit its Idempotency-Key records): one HGETALL (cheaper than scanning) after its count.
    const small = `${ws}-small`;
    await ensureGroup(suite.redis, small);
    for (const command of commands.slice(0, 10))
      await appendCommand(suite.redis, { workspace: small, command });
    await projectPending(suite.redis, small, [], defaultProjectorOptions);
    const few = await readsOf(workspaceKeys(small).agents, () =>
      hashEntries(suite.redis, workspaceKeys(small).agents),
    );
    expect(few.result.length).toBe(10);
    expect(few.calls.map((args) => args[0]!.toUpperCase()).sort()).toEqual(['HGETALL', 'HLEN']);

    // A short list reads and parses only what it answers: the documents in id order, until `limit` match.
    const first = await parsedDuring(() => listAgents(suite.redis, ws, { limit: 10 }));
    expect(first.result.agents.map((a) => a.id)).toEqual([...ids].sort().slice(0, 10));
    expect(first.parsed).toBe(10);
    const offline = await parsedDuring(() => listAgents(suite.redis, ws, { state: 'offline', limit: 25 }));
    expect(offline.result.agents.length).toBe(25);
    expect(offline.parsed).toBe(25);

    // The routing index as the auditor reads it: 2,600 available agents, by lex range a page at a time.
    await Promise.all(
      ids.map((agentId) =>
        appendCommand(suite.redis, {
          workspace: ws,
          command: { type: 'ChangeAgentState', agentId, state: 'available' },
        }),
      ),
    );
    await projectPending(suite.redis, ws, [], defaultProjectorOptions);
    const index = await readsOf(k.pools, () => readRoutingIndex(suite.redis, ws));
    expect(index.result.available.map((a) => a.agentId).sort()).toEqual([...ids].sort());
    expect(index.calls.map((args) => args[0]!.toUpperCase())).toEqual([
      'ZRANGEBYLEX',
      'ZRANGEBYLEX',
      'ZRANGEBYLEX',
    ]);
    expect(index.calls.every((args) => Number(args.at(-1)) === READ_PAGE)).toBe(true);

    const audit = await readsOf(k.agents, () => auditWorkspace(suite.redis, ws));
    expect(audit.result.violations).toEqual([]);
    expect(
      audit.calls.every((args) => args[0]!.toUpperCase() === 'HSCAN' && Number(args[4]) <= READ_PAGE),
    ).toBe(true);
  });

  it('GET /stats folds the agents a page at a time, as each read comes back', async () => {
    const ws = `agent-fold-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    const n = 2600;
    // Levels and capacity per channel too: the fold reads the stored documents, not their views.
    await apply(ws, [plainSettings({ channels: ['chat', 'voice'] })]);
    await apply(
      ws,
      Array.from(
        { length: n },
        (_, i): Command => ({
          type: 'RegisterAgent',
          agentId: `agent-${i}`,
          skills: i % 3 === 0 ? ['s', 's#2', 's#3'] : ['s'],
          capacity: i % 2 === 0 ? 1 : { voice: 1, chat: 2 },
        }),
      ),
    );
    await apply(
      ws,
      Array.from(
        { length: n / 2 },
        (_, i): Command => ({ type: 'ChangeAgentState', agentId: `agent-${i}`, state: 'available' }),
      ),
    );

    // A connection of its own, whose HSCAN replies are counted as they come back; and every agent
    // document parsed, with how many replies had come back by then.
    const conn = suite.server.client();
    const scan = conn.hscan.bind(conn) as (...args: unknown[]) => Promise<unknown>;
    let replies = 0;
    Object.assign(conn, {
      hscan: (...args: unknown[]) =>
        scan(...args).then((reply) => {
          replies++;
          return reply;
        }),
    });
    const parsedAfter: number[] = [];
    let stats: Awaited<ReturnType<typeof readStats>>;
    try {
      stats = await whileParsing(
        () => readStats(conn, ws, Date.now()),
        () => parsedAfter.push(replies),
      );
    } finally {
      conn.disconnect();
    }
    expect(stats.agentsByState).toMatchObject({ available: n / 2, offline: n / 2 });
    // What each queue's agents are is checked in test/api/stats-queues.test.ts, on the same fold.
    // Each agent parsed once, page by page: at least three pages, none of them the whole workspace.
    expect(parsedAfter.length).toBe(n);
    expect(replies).toBeGreaterThan(2);
    const perPage = new Map<number, number>();
    for (const r of parsedAfter) perPage.set(r, (perPage.get(r) ?? 0) + 1);
    expect(perPage.size).toBe(replies);
    expect(Math.max(...perPage.values())).toBeLessThan(n / 2);
  });
});
