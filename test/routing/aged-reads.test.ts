/**
 * Priority aging's exact ties (keys set under different weights) where a dispatch step's reads
 * run out or its walks page: the dispatcher must resume and page without passing a contact or a
 * queue head tied with the last one it read, and a tie it could not finish reading waits for the
 * next step instead of being decided without it. Each scenario is written at chosen stream
 * positions and decided at chosen times; the auditor must find every decision rule 1's and, with
 * `idle`, nobody left waiting.
 */
import { describe, expect, it } from 'vitest';
import { stepAppend } from '../../src/adapters/redis/command-log.ts';
import { readEvents } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import {
  type DispatcherOptions,
  defaultDispatcherOptions,
  dispatchStep,
} from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { plainSettings } from '../support/positions.ts';
import { suiteRedis } from '../support/redis.ts';

let made = 0;
/** A workspace whose commands go at chosen milliseconds after t0, and whose steps decide then. */
class Scenario {
  readonly ws = `aged-reads-${++made}-${Date.now().toString(36)}`;
  readonly t0 = Date.now() - 3_600_000;
  private readonly seqAt = new Map<number, number>();
  constructor(private readonly redis: RedisClient) {}

  async init(): Promise<this> {
    await ensureGroup(this.redis, this.ws);
    return this;
  }

  /** Appends the commands at `ms`, then projects them. */
  async at(ms: number, ...commands: Command[]): Promise<void> {
    const stream = workspaceKeys(this.ws).commands;
    for (const command of commands) {
      const seq = this.seqAt.get(ms) ?? 0;
      this.seqAt.set(ms, seq + 1);
      await this.redis.xadd(
        stream,
        `${this.t0 + ms}-${seq}`,
        ...stepAppend({ workspace: this.ws, command }).entry,
      );
    }
    await projectPending(this.redis, this.ws);
  }

  /** Dispatch steps dated `ms` until none has more to do; the assignments made. */
  async dispatch(ms: number, opts: Partial<DispatcherOptions> = {}): Promise<number> {
    let total = 0;
    for (let i = 0; i < 1000; i++) {
      const [n, more] = await dispatchStep(
        this.redis,
        this.ws,
        { ...defaultDispatcherOptions, ...opts },
        this.t0 + ms,
      );
      total += n;
      if (!more) break;
    }
    return total;
  }

  async pairs(): Promise<string[]> {
    const page = await readEvents(this.redis, this.ws, { limit: 1000, types: new Set(['AssignmentMade']) });
    return page.events.map((e) => `${e.data.contactId as string}->${e.data.agentId as string}`);
  }

  async violations(): Promise<string[]> {
    const r = await auditWorkspace(this.redis, this.ws, { idle: true });
    return r.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`);
  }

  async key(id: string): Promise<string> {
    return JSON.parse((await this.redis.hget(workspaceKeys(this.ws).contacts, id))!)._key;
  }
}

const aging = (priorityWeightMs: number, extra: Record<string, unknown> = {}) =>
  plainSettings({ priorityWeightMs, ...extra });
const agent = (id: string, skills: string[]): Command =>
  ({ type: 'RegisterAgent', agentId: id, skills, capacity: 1 }) as Command;
const available = (id: string): Command =>
  ({ type: 'ChangeAgentState', agentId: id, state: 'available' }) as Command;
const queue = (id: string, skills: string[], extra: Record<string, unknown> = {}): Command =>
  ({ type: 'QueueContact', contactId: id, skills, priority: 0, ...extra }) as Command;
/** Waits for agent "other", who stays offline. */
const blocked = (id: string, skill: string) =>
  queue(id, [skill], { preferredAgents: ['other'], preferredForMs: 3_600_000 });

describe('priority aging: ties where a step runs out of reads or pages', () => {
  const suite = suiteRedis();

  // Queue x: h (blocked) and n behind it at the same key. A walk that stops after h must resume at
  // that key, not past it.
  for (const [maxReads, later] of [
    [1024, false],
    [6, false],
    [8, false],
    [10, false],
    [8, true],
    [12, true],
  ] as const) {
    it(`a walk out of reads resumes at a tied key (maxReads ${maxReads}${later ? ', a later contact behind' : ''})`, async () => {
      const s = await new Scenario(suite.redis).init();
      await s.at(0, aging(2), agent('agent', ['x']), agent('other', ['x']));
      await s.at(10, blocked('h', 'x'));
      await s.at(11, aging(1));
      await s.at(19, queue('n', ['x']));
      if (later) await s.at(25, queue('z', ['x']));
      expect(await s.dispatch(29)).toBe(0);
      expect(await s.key('h')).toBe(await s.key('n'));
      await s.at(40, available('agent'));
      await s.dispatch(41, { maxReads });
      expect(await s.pairs()).toEqual(['n->agent']);
      expect(await s.violations()).toEqual([]);
    });
  }

  // The head turned down by the only agent (rejected), n behind it at the same key.
  for (const maxReads of [1024, 8, 10, 12, 14]) {
    it(`a head turned down, a tied contact behind it (maxReads ${maxReads})`, async () => {
      const s = await new Scenario(suite.redis).init();
      await s.at(0, aging(2, { offerTimeoutMs: 60_000 }), agent('agent', ['x']), available('agent'));
      await s.at(10, queue('h', ['x']));
      expect(await s.dispatch(10)).toBe(1);
      await s.at(10, { type: 'RejectOffer', contactId: 'h', agentId: 'agent' } as Command);
      await s.at(11, aging(1, { offerTimeoutMs: 60_000 }));
      await s.at(19, queue('n', ['x']));
      expect(await s.key('h')).toBe(await s.key('n'));
      await s.dispatch(20, { maxReads });
      expect(await s.pairs()).toEqual(['h->agent', 'n->agent']);
      expect(await s.violations()).toEqual([]);
    });
  }

  // a1 (blocked) and a2 in queue y, b in queue x, all three at one key: rule 1 gives a2 (the
  // lower id of the two assignable). A tie check that runs out of reads must not decide b.
  for (const maxReads of [1024, 12, 16, 20, 24]) {
    it(`a tie check out of reads waits for the next step (maxReads ${maxReads})`, async () => {
      const s = await new Scenario(suite.redis).init();
      await s.at(0, aging(3), agent('agent', ['x', 'y']), agent('other', ['y']));
      await s.at(10, blocked('a1', 'y'));
      await s.at(11, aging(2));
      await s.at(19, queue('a2', ['y']));
      await s.at(20, aging(1));
      await s.at(28, queue('b', ['x']));
      expect(await s.dispatch(29)).toBe(0);
      expect(new Set([await s.key('a1'), await s.key('a2'), await s.key('b')]).size).toBe(1);
      await s.at(40, available('agent'));
      await s.dispatch(41, { maxReads });
      expect(await s.pairs()).toEqual(['a2->agent']);
      expect(await s.violations()).toEqual([]);
    });
  }

  // 63 queues nobody serves, with earlier keys, fill the first page of queue heads; m's and yy's
  // heads tie at the page's end. A pool walking the heads must not pass yy by.
  for (const [label, opts, wide] of [
    ['the heads walked (enumerateMax 0)', { enumerateMax: 0 }, false],
    ['the heads looked up', {}, false],
    ['the heads walked: an agent of 10 skills, a contact of 4 queued', {}, true],
  ] as const) {
    it(`a pool's walk over queue heads pages at a tied score: ${label}`, async () => {
      const s = await new Scenario(suite.redis).init();
      const skills = wide ? ['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 'a8', 'y'] : ['y'];
      await s.at(0, aging(2), agent('agent', skills));
      await s.at(
        1,
        ...Array.from({ length: 63 }, (_, i) =>
          queue(`u${i}`, wide && i === 0 ? ['b1', 'b2', 'b3', 'b4'] : [`q${String(i).padStart(2, '0')}`]),
        ),
      );
      await s.at(10, queue('m', ['m']));
      await s.at(11, aging(1));
      await s.at(19, queue('yy', ['y']));
      expect(await s.dispatch(20, opts)).toBe(0);
      expect(await s.key('m')).toBe(await s.key('yy'));
      await s.at(40, available('agent'));
      await s.dispatch(41, opts);
      expect(await s.pairs()).toEqual(['yy->agent']);
      expect(await s.violations()).toEqual([]);
    });
  }

  // With the default read budget: blocked contacts of a third queue use up a step's reads.
  it('with the default read budget, blocked contacts elsewhere taking the reads', async () => {
    const misses: string[] = [];
    for (let n = 320; n <= 350; n += 3) {
      const s = await new Scenario(suite.redis).init();
      await s.at(0, aging(2), agent('agent', ['w', 'x']), agent('other', ['w', 'x']));
      await s.at(1, ...Array.from({ length: n }, (_, i) => blocked(`z${String(i).padStart(4, '0')}`, 'w')));
      await s.at(10, blocked('h', 'x'));
      await s.at(11, aging(1));
      await s.at(19, queue('n', ['x']));
      await s.dispatch(29);
      await s.at(40, available('agent'));
      await s.dispatch(41);
      const pairs = await s.pairs();
      const v = await s.violations();
      if (v.length > 0 || pairs[0] !== 'n->agent') misses.push(`${n}: ${pairs.join(' ')} ${v.join(' ')}`);
    }
    expect(misses).toEqual([]);
  }, 120_000);
});
