/**
 * The rebuild compares the windows GET /stats reads too: each queue's recent decisions
 * (`sb:{ws}:served`, the dispatcher's: the service rate behind a queued contact's
 * `estimatedWaitMs`, the window's mean wait and service level) and its recent abandons and
 * expirations (`sb:{ws}:ended`, the projector's). Both are rebuilt by the same Lua steps from the
 * log; a member the log does not explain, or one missing, changes what /stats answers, and the
 * rebuild reported "differences 0".
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { rebuildWorkspace } from '../../src/cli/rebuild/rebuild.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

describe('rebuild: the windows of /stats', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);

  async function history(ws: string): Promise<void> {
    const r = suite.redis;
    await ensureGroup(r, ws);
    const send = async (commands: Command[]) => {
      for (const command of commands) await appendCommand(r, { workspace: ws, command });
      await projectPending(r, ws);
      await dispatchPending(r, ws);
    };
    await send([
      { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 2 },
      { type: 'RegisterAgent', agentId: 'bo', skills: ['B'], capacity: 1 },
      { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 1 },
      { type: 'QueueContact', contactId: 'c2', skills: ['A'], priority: 1 },
      { type: 'QueueContact', contactId: 'c3', skills: ['B'], priority: 1 },
      { type: 'QueueContact', contactId: 'c4', skills: ['B'], priority: 1 },
    ]);
    await send([
      { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
      { type: 'AbandonContact', contactId: 'c3' },
    ]);
    await send([
      { type: 'CompleteContact', contactId: 'c1' },
      { type: 'QueueContact', contactId: 'c5', skills: ['A'], priority: 1 },
    ]);
  }

  it('rebuilds them as they are, and reports a member added or taken out', async () => {
    const ws = `rw-${run}`;
    await history(ws);
    const r = suite.redis;
    const k = workspaceKeys(ws);
    expect(await r.zcard(k.served)).toBe(3);
    expect(await r.zcard(k.ended)).toBe(1);
    const clean = await rebuildWorkspace(r, ws);
    expect(clean.differences).toEqual([]);
    expect(clean.assignments).toBe(3);

    // One decision taken out of the window, one abandon made up.
    const [served] = await r.zrange(k.served, 0, 0);
    await r.zrem(k.served, served!);
    const [ended] = await r.zrange(k.ended, 0, 0);
    const [queue, ms] = ended!.split('|');
    const forged = `${queue}|${ms}|abandoned|c4`;
    await r.zadd(k.ended, 0, forged);
    const report = await rebuildWorkspace(r, ws);
    expect(report.differences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: 'served', member: served, live: null }),
        expect.objectContaining({ key: 'ended', member: forged, rebuilt: null }),
      ]),
    );
    expect(report.differenceCount).toBe(2);
  });
});
