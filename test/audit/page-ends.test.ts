/**
 * The audit reads its streams in pages; where a page ends changes nothing it finds. A real log (the
 * append step, the projector's and the dispatcher's steps) is altered, then audited at every page
 * size up to past its length, by the function and by the command.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { auditCli } from '../support/tamper.ts';

describe('page ends', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  let n = 0;

  /** Two agents, three contacts, two of them assigned: 7 commands, 9 events, 7 outcomes. */
  async function log(): Promise<string> {
    const ws = `pages-${run}-${++n}`;
    await ensureGroup(suite.redis, ws);
    const commands: Command[] = [
      { type: 'RegisterAgent', agentId: 'a1', skills: ['Sierra'], capacity: 1 },
      { type: 'RegisterAgent', agentId: 'a2', skills: ['Sierra'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'a1', state: 'available' },
      { type: 'ChangeAgentState', agentId: 'a2', state: 'available' },
      { type: 'QueueContact', contactId: 'c1', skills: ['Sierra'], priority: 0 },
      { type: 'QueueContact', contactId: 'c2', skills: ['Sierra'], priority: 5 },
      { type: 'QueueContact', contactId: 'c3', skills: ['Sierra'], priority: 1 },
    ];
    for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws);
    expect(await dispatchPending(suite.redis, ws)).toBe(2);
    return ws;
  }

  it('reports an outcome repeated after the last command at any page size', async () => {
    const ws = await log();
    const k = workspaceKeys(ws);
    const outcomes = (await suite.redis.xrange(k.outcomes, '-', '+')) as StreamEntry[];
    expect(outcomes).toHaveLength(7);
    const last = outcomes.at(-1)!;
    const position = last[1][last[1].indexOf('position') + 1]!;
    const repeated = (await suite.redis.xadd(k.outcomes, '*', ...last[1]))!;

    for (const pageSize of [1, 2, 3, 6, 7, 8, 5000]) {
      const report = await auditWorkspace(suite.redis, ws, { pageSize });
      expect(
        report.violations.map((v) => [v.kind, v.stream, v.position, v.message]),
        `page size ${pageSize}`,
      ).toEqual([['outcome', 'outcomes', repeated, `a second outcome for the command at ${position}`]]);
    }
    const cli = await auditCli([
      '--workspace',
      ws,
      '--redis-url',
      suite.server.url,
      '--page-size',
      '7',
      '--json',
    ]);
    expect(cli.code, cli.stderr).toBe(1);
    expect(cli.summary?.violations.map((v) => [v.kind, v.position])).toEqual([['outcome', repeated]]);
  });
});
