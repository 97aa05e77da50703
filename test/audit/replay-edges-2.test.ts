/**
 * The rebuild meeting an event stream entry typed AssignmentMade whose `event` field is no event
 * (not JSON, or JSON of no object: something else wrote to the stream). A user saw
 * `rebuild: the rebuild could not run: Unexpected token …` and exit 3, with no word of where in
 * the log or what to do, and nothing compared. Now the entry is reported as a decision the log does
 * not explain, at its position (exit 1, as the audit reports it as an unreadable event), and the
 * rest of the log is rebuilt and compared.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { rebuildWorkspace } from '../../src/cli/rebuild/rebuild.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { runCli } from '../cli/run-cli.ts';
import { suiteRedis } from '../support/redis.ts';

const WS = 'replay-edges-2';

describe('rebuild of a log with an unreadable AssignmentMade', () => {
  const suite = suiteRedis();

  it('reports it at its position as a decision the log does not explain, and rebuilds the rest', {
    timeout: 60_000,
  }, async () => {
    const r = suite.redis;
    const k = workspaceKeys(WS);
    await ensureGroup(r, WS);
    const send = async (commands: Command[]) => {
      for (const command of commands) await appendCommand(r, { workspace: WS, command });
      await projectPending(r, WS);
      await dispatchPending(r, WS);
    };
    await send([
      { type: 'RegisterAgent', agentId: 'a0', skills: ['A'], capacity: 2 },
      { type: 'ChangeAgentState', agentId: 'a0', state: 'available' },
      { type: 'QueueContact', contactId: 'c0', skills: ['A'], priority: 0 },
    ]);
    const notJson = await r.xadd(k.events, '*', 'type', 'AssignmentMade', 'event', '{not json');
    const notObject = await r.xadd(k.events, '*', 'type', 'AssignmentMade', 'event', 'null');
    await send([{ type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0 }]);
    expect(await r.hget(k.contacts, 'c1')).toContain('"assigned"');

    const report = await rebuildWorkspace(r, WS);
    expect(report.differences).toEqual([
      expect.objectContaining({ kind: 'decision', key: 'events', member: notJson, rebuilt: null }),
      expect.objectContaining({ kind: 'decision', key: 'events', member: notObject, rebuilt: null }),
    ]);
    expect(report.differences[0]!.live).toMatch(/unreadable AssignmentMade/);
    expect(report.assignments).toBe(2);

    const cli = await runCli('rebuild', ['--workspace', WS, '--redis-url', suite.server.url]);
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain('differences  2');
    expect(cli.stdout).toContain(notJson);
  });
});
