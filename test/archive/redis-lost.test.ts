/**
 * Redis back without a workspace's data (restarted without persistence, or from an older copy)
 * while the archive keeps its history: the archive is then ahead of Redis. The archiver must not
 * chain the new history onto the old one (segments that no log ever held in that order, and the
 * old archive no longer separable from the new); it refuses the stream, trims nothing and logs
 * why, as it does for an archive behind Redis.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { parseAnchor } from '../../src/archive/chain.ts';
import type { Retention } from '../../src/archive/retention.ts';
import { LOG_STREAMS } from '../../src/archive/segment.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { suiteRedis } from '../support/redis.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';

const log = pino({ level: 'silent' });

describe('an archive ahead of Redis', () => {
  const suite = suiteRedis();
  const tempDir = suiteTempDirs();

  it('is refused when Redis lost the workspace: nothing trimmed, no segment chained on', async () => {
    const ws = `redis-lost-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const dir = await tempDir('sb-redis-lost-');
    const store = new DiskArchive(dir);
    const opts = { retention: { count: 10 } as Retention, segmentEntries: 100, everyMs: 50 };
    await writeLog(suite.redis, ws, { events: 300, agents: 8, seed: 3 });
    await new Archiver(suite.redis, store, log, opts).drain(ws);
    const archived = { commands: await store.list(ws, 'commands'), events: await store.list(ws, 'events') };
    expect(archived.commands.length).toBeGreaterThan(0);

    // Redis comes back without the workspace (every key of it gone), and a new history starts.
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await suite.admin.scan(cursor, 'MATCH', `${k.prefix}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    expect(keys.length).toBeGreaterThan(0);
    await suite.admin.del(...keys);
    await writeLog(suite.redis, ws, { events: 300, agents: 8, seed: 4 });
    const lengths = [await suite.redis.xlen(k.commands), await suite.redis.xlen(k.events)];

    const late = new Archiver(suite.redis, store, log, opts);
    for (const stream of LOG_STREAMS)
      await expect(late.step(ws, stream), stream).rejects.toThrow(/is not in Redis: Redis lost entries/);
    expect([await suite.redis.xlen(k.commands), await suite.redis.xlen(k.events)]).toEqual(lengths);
    expect(await store.list(ws, 'commands')).toEqual(archived.commands);
    expect(await store.list(ws, 'events')).toEqual(archived.events);
    expect(parseAnchor(await suite.redis.hget(k.archive, 'commands'))).toBeUndefined();
  }, 30_000);
});
