/**
 * A rebuild interrupted (Ctrl-C, or SIGTERM) half-way used to die on the signal and leave behind a
 * partial copy of the log in the shadow keyspace, and its hold on the shadow: the next rebuild,
 * run at once, was refused with "another rebuild of workspace ... is running" when none was. It
 * now stops, removes the shadow (kept with --keep-shadow), hands the shadow back and exits 130.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { shadowLock, shadowOf } from '../../src/cli/rebuild/rebuild.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { cliEntry } from '../support/main-build.ts';
import { suiteRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';
import { runCli } from './run-cli.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Enough commands for the replay to take a few seconds, so the signal lands in the middle of it. */
const COMMANDS = 20_000;

describe('rebuild, interrupted', () => {
  const suite = suiteRedis();

  it('removes its shadow, hands it back and exits 130, so the next rebuild runs at once', {
    timeout: 120_000,
  }, async () => {
    const ws = `ri-${Date.now().toString(36)}`;
    const r = suite.redis;
    await ensureGroup(r, ws);
    await appendCommand(r, {
      workspace: ws,
      command: { type: 'RegisterAgent', agentId: 'a', skills: ['A'], capacity: 1 },
    });
    for (let i = 0; i < COMMANDS; i += 5000)
      await Promise.all(
        Array.from({ length: 5000 }, (_, j) => {
          const command: Command = {
            type: 'ChangeAgentState',
            agentId: 'a',
            state: (i + j) % 2 ? 'away' : 'available',
          };
          return appendCommand(r, { workspace: ws, command });
        }),
      );
    await projectPending(r, ws);

    const shadow = workspaceKeys(shadowOf(ws));
    const child = spawn(
      process.execPath,
      [...cliEntry('rebuild'), '--workspace', ws, '--redis-url', suite.server.url],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    // Interrupted once the copy into the shadow is under way.
    await waitFor('the copy into the shadow', async () => (await r.xlen(shadow.commands)) > 0, {
      timeoutMs: 60_000,
      everyMs: 20,
    });
    child.kill('SIGINT');
    const { code, signal } = await exited;
    expect({ code, signal }, stderr).toEqual({ code: 130, signal: null });
    expect(stderr).toContain('interrupted');
    expect(await r.exists(shadow.commands, shadow.agents, shadow.meta)).toBe(0);
    expect(await r.exists(shadowLock(ws))).toBe(0);

    // The next one is not refused as if another were running.
    const next = await runCli('rebuild', ['--workspace', ws, '--redis-url', suite.server.url, '--json']);
    expect(next.code, next.stderr).toBe(0);
    expect(JSON.parse(next.stdout)).toMatchObject({ commands: COMMANDS + 1, differenceCount: 0 });
  });
});
