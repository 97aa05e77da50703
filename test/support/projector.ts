import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { waitFor } from './wait.ts';

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
