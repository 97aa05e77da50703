/**
 * The rebuild compares the workspace's settings and arrival order (the meta hash's `settings`,
 * `seq` and `tick`) too: they decide every later offer, wrap-up, wait limit and routing order, and
 * nothing else in the state shows them.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { rebuildWorkspace } from '../../src/cli/rebuild/rebuild.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

describe('rebuild: the settings and the arrival order', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);

  async function history(ws: string): Promise<void> {
    const r = suite.redis;
    await ensureGroup(r, ws);
    const commands: Command[] = [
      { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 1 },
      {
        type: 'ChangeSettings',
        offerTimeoutMs: 20_000,
        wrapUpMs: 5000,
        missedOfferPresence: 'away',
        maxWaitMs: 600_000,
        channels: ['voice', 'chat'],
        priorityWeightMs: 30_000,
      },
      { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 1 },
      { type: 'QueueContact', contactId: 'c2', skills: ['A'], priority: 2, channel: 'chat' },
      { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
    ];
    for (const command of commands) await appendCommand(r, { workspace: ws, command });
    await projectPending(r, ws);
    await dispatchPending(r, ws);
  }

  it('rebuilds them as they are, and reports them changed', async () => {
    const ws = `rs-${run}`;
    await history(ws);
    const k = workspaceKeys(ws);
    const clean = await rebuildWorkspace(suite.redis, ws);
    expect(clean.differences).toEqual([]);
    expect(clean.assignments).toBe(1);

    const settings = JSON.parse((await suite.redis.hget(k.meta, 'settings'))!) as Record<string, unknown>;
    await suite.redis.hset(k.meta, 'settings', JSON.stringify({ ...settings, wrapUpMs: 0 }));
    const tick = Number(await suite.redis.hget(k.meta, 'tick'));
    await suite.redis.hset(k.meta, 'tick', String(tick - 1000));
    const report = await rebuildWorkspace(suite.redis, ws);
    expect(report.differences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'settings', key: 'meta', member: 'settings' }),
        expect.objectContaining({ kind: 'counter', key: 'meta', member: 'tick' }),
      ]),
    );
  });

  // The meta hash's `excluded` (how many queued contacts some agent turned down, or that wait for
  // their preferred agents: src/adapters/redis/lua/includes/routing.lua) decides whether an agent
  // who becomes available looks again at such contacts: one drifted to 0 strands them. The
  // rebuild made it and did not compare it, so a drifted count rebuilt as "the same".
  it('reports the count of turned-down contacts changed', async () => {
    const ws = `rs-excl-${run}`;
    const r = suite.redis;
    await ensureGroup(r, ws);
    const commands: Command[] = [
      { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 1 },
      { type: 'RegisterAgent', agentId: 'bo', skills: ['A'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
      {
        type: 'QueueContact',
        contactId: 'c1',
        skills: ['A'],
        priority: 1,
        preferredAgents: ['bo'],
        preferredForMs: 600_000,
      },
    ];
    for (const command of commands) await appendCommand(r, { workspace: ws, command });
    await projectPending(r, ws);
    await dispatchPending(r, ws);
    const k = workspaceKeys(ws);
    expect(await r.hget(k.meta, 'excluded')).toBe('1');
    expect((await rebuildWorkspace(r, ws)).differences).toEqual([]);

    await r.hset(k.meta, 'excluded', '0');
    const report = await rebuildWorkspace(r, ws);
    expect(report.differences).toEqual([
      { kind: 'counter', key: 'meta', member: 'excluded', live: '0', rebuilt: '1' },
    ]);
  });
});
