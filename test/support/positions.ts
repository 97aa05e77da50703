/**
 * Routing scenarios written at chosen stream positions, so arrival times (and priority-aging keys)
 * are exact: the commands' entries as an append writes them, then one projector step.
 */
import { stepAppend } from '../../src/adapters/redis/command-log.ts';
import { readEvents } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import type { Command } from '../../src/domain/commands.ts';
import { projectPending } from '../../src/projections/projector.ts';

/** Settings with direct assignment, no wrap-up and no maximum wait; `extra` on top (channels, ...). */
export const plainSettings = (extra: Record<string, unknown> = {}): Command =>
  ({
    type: 'ChangeSettings',
    offerTimeoutMs: 0,
    wrapUpMs: 0,
    missedOfferPresence: 'away',
    maxWaitMs: null,
    ...extra,
  }) as Command;

/** Settings with priority aging at `priorityWeightMs`, direct assignment, no wrap-up, no maximum wait. */
export const agingSettings = (priorityWeightMs: number): Command => plainSettings({ priorityWeightMs });

/**
 * A command-stream position that exists but that no projector will apply: an entry appended
 * straight to `workspace`'s stream, which no instance serves (it is not in the registry), so a
 * query's `minPosition` at it waits its whole time (a position past the stream's end is refused).
 */
export async function unappliedPosition(redis: RedisClient, workspace: string): Promise<string> {
  return (await redis.xadd(workspaceKeys(workspace).commands, '*', 'type', 'Unapplied')) as string;
}

/** Appends each command at its stream id (`[id, command]`), then projects them all. */
export async function appendAt(
  redis: RedisClient,
  workspace: string,
  entries: readonly (readonly [string, Command])[],
): Promise<void> {
  const stream = workspaceKeys(workspace).commands;
  for (const [id, command] of entries)
    await redis.xadd(stream, id, ...stepAppend({ workspace, command }).entry);
  await projectPending(redis, workspace);
}

/** The workspace's AssignmentMade events as "contact->agent". */
export async function assignedPairs(redis: RedisClient, workspace: string): Promise<string[]> {
  const page = await readEvents(redis, workspace, { limit: 100, types: new Set(['AssignmentMade']) });
  return page.events.map((e) => `${e.data.contactId as string}->${e.data.agentId as string}`);
}
