/**
 * The auditor holds the workspace's counters (sb:{ws}:stats: what GET /stats answers as
 * contactsQueuedSoFar, assignments, completed, abandoned, expired, transferred) to the log: each
 * is the number of its events (ContactQueued, AssignmentMade, ContactCompleted, ContactAbandoned,
 * ContactExpired, ContactTransferred). A counter off by one is a figure users read that the log
 * does not give.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { dispatchPending, fireTimers } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { plainSettings } from '../support/positions.ts';
import { sendAndSettle } from '../support/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

describe('the auditor on the counters of /stats', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  let n = 0;

  const send = (ws: string, ...commands: Command[]) => sendAndSettle(suite.redis, ws, ...commands);

  /** Every counter moved: queued, assigned, completed, abandoned, expired, transferred. */
  async function history(): Promise<string> {
    const ws = `ca-${run}-${++n}`;
    await ensureGroup(suite.redis, ws);
    await send(
      ws,
      plainSettings(),
      { type: 'RegisterAgent', agentId: 'ana', skills: ['A', 'B'], capacity: 2 },
      { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
      { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0 },
      { type: 'QueueContact', contactId: 'c2', skills: ['A'], priority: 0 },
      { type: 'QueueContact', contactId: 'c3', skills: ['C'], priority: 0 },
      { type: 'QueueContact', contactId: 'c4', skills: ['C'], priority: 0, maxWaitMs: 20 },
    );
    await send(
      ws,
      { type: 'CompleteContact', contactId: 'c1' },
      { type: 'TransferContact', contactId: 'c2', skills: ['B'] },
      { type: 'AbandonContact', contactId: 'c3' },
    );
    await sleep(40);
    await fireTimers(suite.redis, ws);
    await projectPending(suite.redis, ws);
    await dispatchPending(suite.redis, ws);
    return ws;
  }

  it('finds the counters the log gives', async () => {
    const ws = await history();
    expect(await suite.redis.hgetall(workspaceKeys(ws).stats)).toEqual({
      queued: '4',
      assignments: '3',
      completed: '1',
      transferred: '1',
      abandoned: '1',
      expired: '1',
    });
    const report = await auditWorkspace(suite.redis, ws);
    expect(report.violations).toEqual([]);
    expect(report.state).toBe('compared');
  });

  it('reports a counter off by one, one missing and one the log has no events for', async () => {
    const ws = await history();
    const k = workspaceKeys(ws);
    await suite.redis.hincrby(k.stats, 'completed', 1);
    await suite.redis.hdel(k.stats, 'expired');
    await suite.redis.hset(k.stats, 'offers', '3');
    const report = await auditWorkspace(suite.redis, ws);
    expect(report.violations).toEqual([
      expect.objectContaining({
        kind: 'state',
        stream: 'state',
        message: expect.stringContaining(
          'counters (/stats): completed 2, the log 1; expired 0, the log 1; offers 3, the log 0',
        ),
      }),
    ]);
  });
});
