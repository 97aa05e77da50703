import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { projectPending } from '../../src/projections/projector.ts';
import { waitFor } from './wait.ts';

/**
 * Appends commands as the API does, then runs the projector's steps on them until none is left
 * (the dispatcher's not: a test runs it, or its own Dispatcher does).
 */
export async function sendProjected(redis: RedisClient, ws: string, ...commands: Command[]): Promise<void> {
  for (const command of commands) await appendCommand(redis, { workspace: ws, command });
  await projectPending(redis, ws);
}

/**
 * Appends and projects many commands: 500 at a time, sent 100 together (the last of 500 sent at
 * once waited for the 499 before it, past the client's command timeout on a loaded machine).
 */
export async function sendProjectedMany(
  redis: RedisClient,
  ws: string,
  commands: readonly Command[],
): Promise<void> {
  for (let i = 0; i < commands.length; i += 500) {
    for (let j = i; j < Math.min(i + 500, commands.length); j += 100)
      await Promise.all(
        commands
          .slice(j, Math.min(j + 100, i + 500))
          .map((command) => appendCommand(redis, { workspace: ws, command })),
      );
    await projectPending(redis, ws);
  }
}

/**
 * Appends commands as the API does, then runs the production steps until nothing is left: the
 * projector's on the commands, the dispatcher's on what they queued (no workers running).
 */
export async function sendAndSettle(redis: RedisClient, ws: string, ...commands: Command[]): Promise<void> {
  await sendProjected(redis, ws, ...commands);
  await dispatchPending(redis, ws);
}

/**
 * Waits until a projector has created its consumer group on each workspace's command stream,
 * i.e. its loops run, so the first commands a suite sends are answered with their outcome.
 */
export async function projectorReady(r: RedisClient, workspaces: readonly string[]): Promise<void> {
  for (const ws of workspaces) {
    await waitFor(
      `a projector consumer group on ${ws}`,
      async () =>
        ((await r.xinfo('GROUPS', workspaceKeys(ws).commands).catch(() => [])) as unknown[]).length > 0,
      { timeoutMs: 20_000, everyMs: 20 },
    );
  }
}
