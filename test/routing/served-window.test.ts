/**
 * Each queue's recent decisions (the served set: the estimated wait's service rate and the /stats
 * window) hold, between dispatch steps, the decisions of the last 5 minutes, at most 64 per queue,
 * the newest: a step of many decisions trims once at its end to what trimming after each would
 * leave. A real Redis and the real Lua steps; decisions dated by the step's `atMs`.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { readServed } from '../../src/adapters/redis/routing-index.ts';
import { defaultDispatcherOptions, dispatchStep } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

describe('the served window', () => {
  const suite = suiteRedis();

  async function send(ws: string, commands: Command[]): Promise<void> {
    for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws);
  }

  it('keeps the newest 64 decisions of a queue within 5 minutes, after steps of many decisions', async () => {
    const ws = `served-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    const ids = Array.from({ length: 110 }, (_, i) => String(i).padStart(3, '0'));
    const t0 = Date.now() + 1000;
    const all = () => suite.redis.zrangebylex(k.served, '-', '+');
    // Another queue's decision first: trimming A's window below leaves it be.
    await send(ws, [
      { type: 'RegisterAgent', agentId: 'z1', skills: ['B'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'z1', state: 'available' },
      { type: 'QueueContact', contactId: 'b0', skills: ['B'], priority: 0 },
    ]);
    expect((await dispatchStep(suite.redis, ws, defaultDispatcherOptions, t0 - 1))[0]).toBe(1);
    const [other] = await all();
    expect(other).toMatch(/^voice\/B\|.*\|b0$/);
    await send(ws, [
      ...ids.map((i) => ({ type: 'RegisterAgent', agentId: `a${i}`, skills: ['A'], capacity: 1 }) as Command),
      ...ids.map((i) => ({ type: 'ChangeAgentState', agentId: `a${i}`, state: 'available' }) as Command),
      ...ids.map(
        (i) => ({ type: 'QueueContact', contactId: `c${i}`, skills: ['A'], priority: 0 }) as Command,
      ),
      { type: 'QueueContact', contactId: 'b1', skills: ['B'], priority: 0 },
    ]);
    const opts = { ...defaultDispatcherOptions, batch: 100, stepBudgetMs: 0 };
    const members = async () => (await all()).filter((m) => m.startsWith('voice/A|'));
    const of = (ms: string[], contact: string) => ms.some((m) => m.endsWith(`|${contact}`));

    // One step of 100 decisions: 64 stay, those trimming after each decision leaves (the last
    // 64 in the set's order: time, then the wait as text, then the contact).
    expect((await dispatchStep(suite.redis, ws, opts, t0))[0]).toBe(100);
    const made = (await suite.redis.xrange(k.events, '-', '+'))
      .map(([, f]) => JSON.parse(f[3]!) as { type: string; data: { contactId: string; waitedMs: number } })
      .filter((e) => e.type === 'AssignmentMade' && e.data.contactId !== 'b0')
      .map((e) => `voice/A|${String(t0).padStart(15, '0')}|${e.data.waitedMs}|${e.data.contactId}`);
    expect(made).toHaveLength(100);
    let now = await members();
    expect(now).toEqual([...made].sort().slice(-64));
    // Six minutes later, 10 more: the 64 before are out of the window.
    expect((await dispatchStep(suite.redis, ws, opts, t0 + 360_000))[0]).toBe(10);
    now = await members();
    expect(now).toHaveLength(10);
    expect(of(now, 'c100') && of(now, 'c109')).toBe(true);
    expect((await readServed(suite.redis, ws, t0 + 360_000)).map((s) => s.queue)).toEqual(
      Array(10).fill('voice/A'),
    );
    // B's decision was trimmed by none of A's steps (only a step deciding for B takes it out).
    expect((await all()).filter((m) => !m.startsWith('voice/A|'))).toEqual([other]);
  });
});
