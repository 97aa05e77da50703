/**
 * The archiver suites' setup for an archive folder that cannot be written: a workspace with a log
 * of 300 events, its archive directory with a file where one folder must be (the suites run as
 * root, for whom a read-only mode is no obstacle), and a real `ROLES=archiver` process on it.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { type SwitchboardProcess, startProcess } from './processes.ts';
import type { TestRedis } from './redis.ts';

export interface BlockedArchive {
  readonly ws: string;
  readonly k: ReturnType<typeof workspaceKeys>;
  readonly dir: string;
}

/** `name`'s workspace with its log written, and `folder` of its archive in `dir` a file. */
export async function blockedArchive(
  redis: RedisClient,
  name: string,
  seed: number,
  dir: string,
  folder: 'commands' | 'events' | 'snapshots',
): Promise<BlockedArchive> {
  const ws = `${name}-${Date.now().toString(36)}`;
  await writeLog(redis, ws, { events: 300, agents: 5, seed });
  const blocked = path.join(dir, ws, folder);
  await mkdir(path.dirname(blocked), { recursive: true });
  await writeFile(blocked, 'not a folder');
  return { ws, k: workspaceKeys(ws), dir };
}

/** An archiver of `a`'s workspace: segments of 100 entries, 10 kept, a pass every 50 ms. */
export function startArchiver(
  server: TestRedis,
  a: BlockedArchive,
  env: Record<string, string> = {},
): Promise<SwitchboardProcess> {
  return startProcess({
    roles: 'archiver',
    redis: server,
    env: {
      WORKSPACES: a.ws,
      DISCOVER_WORKSPACES: 'false',
      ARCHIVE_DIR: a.dir,
      LOG_RETENTION: '10',
      ARCHIVE_SEGMENT_ENTRIES: '100',
      ARCHIVE_EVERY_MS: '50',
      LEASE_TTL_MS: '500',
      ...env,
    },
  });
}
