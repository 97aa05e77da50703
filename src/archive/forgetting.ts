import { randomUUID } from 'node:crypto';
import { callOnNodeOf } from '../adapters/redis/client.ts';
import { appendCommand } from '../adapters/redis/command-log.ts';
import { workspaceKeys } from '../adapters/redis/keys.ts';
import type { RedisClient } from '../adapters/redis/scripts.ts';
import { MAX_FORGOTTEN_PER_COMMAND } from '../domain/commands.ts';

/** Most ForgetContacts commands one pass appends (a pass removes at most this × 500 documents). */
export const MAX_FORGET_COMMANDS_PER_PASS = 64;

/**
 * Keeps finished contacts' documents bounded: when contacts finished more than `keepMs` ago (by
 * Redis's clock), appends as many ForgetContacts commands as they need (up to a bound per pass).
 * The projector applies them in log order like any command, so which documents go, and when, is
 * in the log: the model, the auditor, `state?at=` and the rebuild all do the same. A command that
 * finds nothing left to forget (another archiver's, or a repeat) changes nothing.
 * Returns the number of commands appended.
 */
export async function forgetFinishedContacts(
  redis: RedisClient,
  workspace: string,
  keepMs: number,
  /** Told the position of each command appended. */
  appended?: (position: string) => void,
): Promise<number> {
  const k = workspaceKeys(workspace);
  // The clock of the workspace's node (the one its steps and stream ids use), not a random
  // node's on a cluster.
  const [s, us] = (await callOnNodeOf(redis, k.finished, 'TIME')) as [string, string];
  const cut = Number(s) * 1000 + Math.floor(Number(us) / 1000) - keepMs;
  const due = await redis.zcount(k.finished, '-inf', `(${cut}`);
  const n = Math.min(Math.ceil(due / MAX_FORGOTTEN_PER_COMMAND), MAX_FORGET_COMMANDS_PER_PASS);
  for (let i = 0; i < n; i++) {
    const { position } = await appendCommand(redis, {
      workspace,
      command: { type: 'ForgetContacts', keepMs, max: MAX_FORGOTTEN_PER_COMMAND },
      commandId: randomUUID(),
    });
    appended?.(position);
  }
  return n;
}
