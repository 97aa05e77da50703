/**
 * A workspace's log made through the Lua steps (src/cli/bench/audit-log.ts `writeLog`: 400 events),
 * then archived in segments of 100 events with the newest 50 kept in Redis: the events archive
 * holds four segments (0..99, 100..199, 200..299, 300..349), for suites that damage one.
 */

import { readdir } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';

export async function archivedLog(
  redis: RedisClient,
  ws: string,
  root: string,
  seed: number,
): Promise<{ events: string[]; store: DiskArchive; dir: string; names: string[] }> {
  await writeLog(redis, ws, { events: 400, agents: 6, seed });
  const events = ((await redis.xrange(workspaceKeys(ws).events, '-', '+')) as StreamEntry[]).map((e) => e[0]);
  const store = new DiskArchive(root);
  await new Archiver(redis, store, pino({ level: 'silent' }), {
    retention: { count: 50 },
    segmentEntries: 100,
    everyMs: 10,
  }).drain(ws);
  const dir = path.join(store.root, ws, 'events');
  return { events, store, dir, names: (await readdir(dir)).sort() };
}
