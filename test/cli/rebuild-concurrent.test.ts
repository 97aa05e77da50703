/**
 * Two rebuilds of one workspace at once would share its shadow keyspace: the second drops what the
 * first built and both apply into it, so they reported differences that were not there. The
 * shadow is held by one rebuild at a time; another is refused (exit 3, named), and a rebuild
 * killed half-way holds it for a bounded time only.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { RebuildBusyError, rebuildWorkspace, shadowLock } from '../../src/cli/rebuild/rebuild.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { runCli } from './run-cli.ts';

describe('two rebuilds of one workspace at once', () => {
  const suite = suiteRedis();

  it('the second is refused while the first holds the shadow, which it hands back', async () => {
    const ws = `rc-${Date.now().toString(36)}`;
    const r = suite.redis;
    await ensureGroup(r, ws);
    const send = async (commands: Command[]) => {
      for (const command of commands) await appendCommand(r, { workspace: ws, command });
    };
    await send(
      Array.from({ length: 10 }, (_, i) => ({
        type: 'RegisterAgent' as const,
        agentId: `a${i}`,
        skills: ['A'],
        capacity: 1,
      })),
    );
    for (let round = 0; round < 10; round++) {
      const commands: Command[] = [];
      for (let i = 0; i < 10; i++)
        commands.push({
          type: 'ChangeAgentState',
          agentId: `a${i}`,
          state: round % 2 ? 'away' : 'available',
        });
      for (let i = 0; i < 5; i++)
        commands.push({ type: 'QueueContact', contactId: `c${round}-${i}`, skills: ['A'], priority: 0 });
      await send(commands);
      await projectPending(r, ws);
      await dispatchPending(r, ws);
    }
    const first = rebuildWorkspace(r, ws);
    await expect(rebuildWorkspace(r, ws)).rejects.toThrow(RebuildBusyError);
    const report = await first;
    expect(report.differences).toEqual([]);
    expect(report.assignments).toBeGreaterThan(0);
    // Handed back: the next one runs.
    expect(await r.exists(shadowLock(ws))).toBe(0);
    expect((await rebuildWorkspace(r, ws)).differences).toEqual([]);

    // The command line names it and exits 3.
    await r.set(shadowLock(ws), 'another', 'PX', 20_000);
    const cli = await runCli('rebuild', ['--workspace', ws, '--redis-url', suite.server.url]);
    expect(cli.code, cli.stderr).toBe(3);
    expect(cli.stderr).toMatch(
      /^rebuild: the rebuild could not run: another rebuild of workspace "rc-.*" is running/m,
    );
    expect(cli.stderr).not.toMatch(/^\s+at /m);
    // A hold it does not own is left alone.
    expect(await r.get(shadowLock(ws))).toBe('another');
  });
});
