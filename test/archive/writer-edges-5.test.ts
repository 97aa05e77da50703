/**
 * A segment another archiver wrote first (a lease lost and taken while this one wrote the same
 * segment): the put fails with SegmentExistsError. That is this stream's step only: the other
 * stream is archived in the same pass, and the stream whose segment was taken goes on from the
 * archive's tip read afresh, rather than the whole pass failing ("workspace loop failed") and the
 * runner starting it again.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import type { LogStream } from '../../src/archive/segment.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { suiteRedis } from '../support/redis.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';
import { waitFor } from '../support/wait.ts';

/** A disk archive where another writer puts the first commands segment just before this one does. */
class AnotherWriterFirst extends DiskArchive {
  raced = false;
  override async put(workspace: string, stream: LogStream, name: string, bytes: Buffer): Promise<void> {
    if (!this.raced && stream === 'commands') {
      this.raced = true;
      await super.put(workspace, stream, name, bytes);
    }
    return super.put(workspace, stream, name, bytes);
  }
}

describe('a segment another archiver wrote first', () => {
  const suite = suiteRedis();
  const tempDir = suiteTempDirs();

  it('fails that stream’s step only: the events are archived in the same pass, and the commands after', async () => {
    const ws = `writer-edges-5-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await writeLog(suite.redis, ws, { events: 300, agents: 5, seed: 5 });
    const [commands, events] = [await suite.redis.xlen(k.commands), await suite.redis.xlen(k.events)];
    const store = new AnotherWriterFirst(await tempDir('sb-writer-edges-5-'));
    const archiver = new Archiver(suite.redis, store, pino({ level: 'silent' }), {
      retention: { count: 50 },
      segmentEntries: 100,
      everyMs: 10,
    });
    let stop = false;
    const run = archiver.run(ws, () => !stop);
    let failed: unknown;
    run.catch((err: unknown) => {
      failed = err;
    });
    await waitFor(
      'both streams trimmed (or the pass failed)',
      async () =>
        failed !== undefined ||
        ((await suite.redis.xlen(k.events)) < events && (await suite.redis.xlen(k.commands)) < commands),
      { timeoutMs: 10_000 },
    );
    stop = true;
    archiver.interrupt(ws);
    expect(failed).toBeUndefined();
    await run;
    expect(store.raced).toBe(true);
  });
});
