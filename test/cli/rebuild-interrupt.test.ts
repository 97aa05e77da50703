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
/** Enough live documents for the comparison to read them page by page for a second or more. */
const STRAY_DOCUMENTS = 400_000;

describe('rebuild, interrupted', () => {
  const suite = suiteRedis();

  /** Agent a registered, then `changes` changes of its state, all projected. */
  async function agentLog(ws: string, changes: number): Promise<void> {
    const r = suite.redis;
    await ensureGroup(r, ws);
    await appendCommand(r, {
      workspace: ws,
      command: { type: 'RegisterAgent', agentId: 'a', skills: ['A'], capacity: 1 },
    });
    for (let i = 0; i < changes; i += 5000)
      await Promise.all(
        Array.from({ length: Math.min(5000, changes - i) }, (_, j) => {
          const command: Command = {
            type: 'ChangeAgentState',
            agentId: 'a',
            state: (i + j) % 2 ? 'away' : 'available',
          };
          return appendCommand(r, { workspace: ws, command });
        }),
      );
    await projectPending(r, ws);
  }

  /**
   * The rebuild of `ws` as a user runs it, interrupted (SIGINT) once `under` says what it is
   * doing is under way: it exits 130, its shadow removed and handed back. Its stderr.
   */
  async function interruptedRebuild(
    ws: string,
    what: string,
    under: () => Promise<boolean>,
  ): Promise<string> {
    const r = suite.redis;
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
    await waitFor(what, under, { timeoutMs: 60_000, everyMs: 10 });
    child.kill('SIGINT');
    const { code, signal } = await exited;
    expect({ code, signal }, stderr).toEqual({ code: 130, signal: null });
    expect(stderr).toContain('interrupted: nothing compared');
    expect(await r.exists(shadow.commands, shadow.agents, shadow.meta)).toBe(0);
    expect(await r.exists(shadowLock(ws))).toBe(0);
    return stderr;
  }

  it('removes its shadow, hands it back and exits 130, so the next rebuild runs at once', {
    timeout: 120_000,
  }, async () => {
    const ws = `ri-${Date.now().toString(36)}`;
    await agentLog(ws, COMMANDS);
    const shadow = workspaceKeys(shadowOf(ws));
    // Interrupted once the copy into the shadow is under way.
    await interruptedRebuild(
      ws,
      'the copy into the shadow',
      async () => (await suite.redis.xlen(shadow.commands)) > 0,
    );

    // The next one is not refused as if another were running.
    const next = await runCli('rebuild', ['--workspace', ws, '--redis-url', suite.server.url, '--json']);
    expect(next.code, next.stderr).toBe(0);
    expect(JSON.parse(next.stdout)).toMatchObject({ commands: COMMANDS + 1, differenceCount: 0 });
  });

  it('stops its final comparison too, at its next read, and exits 130', { timeout: 120_000 }, async () => {
    const ws = `rc-${Date.now().toString(36)}`;
    const r = suite.redis;
    await agentLog(ws, 0);
    // A short log, and a live agents hash the comparison takes seconds to read (HSCAN, page by
    // page): documents no command made, so a comparison run to its end reports them (exit 1).
    for (let i = 0; i < STRAY_DOCUMENTS; i += 10_000)
      await r.hset(
        workspaceKeys(ws).agents,
        Object.fromEntries(Array.from({ length: 10_000 }, (_, j) => [`stray-${i + j}`, '{"id":"stray"}'])),
      );
    const hscans = async () =>
      Number(/cmdstat_hscan:calls=(\d+)/.exec(await r.info('commandstats'))?.[1] ?? 0);
    const before = await hscans();
    // Interrupted once the comparison reads the documents (nothing else of the rebuild scans a hash).
    await interruptedRebuild(
      ws,
      'the comparison to read the documents',
      async () => (await hscans()) > before,
    );
    // It stopped at its next page: most of the hash was never read.
    expect((await hscans()) - before).toBeLessThan(STRAY_DOCUMENTS / 5000 / 2);
  });
});
