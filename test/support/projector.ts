import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';

/**
 * Waits until a projector has created its consumer group on each workspace's command stream,
 * i.e. its loops run, so the first commands a suite sends are answered with their outcome.
 */
export async function projectorReady(r: RedisClient, workspaces: readonly string[]): Promise<void> {
  const until = Date.now() + 20_000;
  for (const ws of workspaces) {
    for (;;) {
      const groups = (await r.xinfo('GROUPS', workspaceKeys(ws).commands).catch(() => [])) as unknown[];
      if (groups.length > 0) break;
      if (Date.now() > until) throw new Error(`no projector consumer group on ${ws} after 20 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
