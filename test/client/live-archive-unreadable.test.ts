/**
 * A live feed whose replay reaches over a part of the archive that cannot be read is closed with
 * 1011 `history unreadable from the archive (/problems/archive-unreadable)`: every reconnection
 * would meet the same damage. The subscription hands on what came before the damage, tells
 * onError, and ends, rather than reconnect for ever in silence.
 */
import { mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EventEnvelope } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { sleep } from '../support/wait.ts';
import { type ClientFixture, log, startClientFixture } from './fixture.ts';

/** Written straight to the streams and archived: no instance serves it (no projector runs on it). */
const WS = 'client-archive-broken';
let p: ClientFixture;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sb-client-archive-'));
  p = await startClientFixture(['client-archive-served'], { ARCHIVE_DIR: dir });
}, 30_000);
afterAll(async () => {
  await p?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the live subscription', () => {
  it('closed with 1011 archive-unreadable: no hole, onError told, and the end', async () => {
    await writeLog(p.main.redis, WS, { events: 400, agents: 6, seed: 7 });
    const stream = workspaceKeys(WS).events;
    const events = ((await p.main.redis.xrange(stream, '-', '+')) as StreamEntry[]).map((e) => e[0]);
    await new Archiver(p.main.redis, new DiskArchive(dir), log, {
      retention: { count: 50 },
      segmentEntries: 100,
      everyMs: 10,
    }).drain(WS);
    const segments = path.join(dir, WS, 'events');
    const files = (await readdir(segments)).filter((f) => f.endsWith('.jsonl')).sort();
    await unlink(path.join(segments, files[1]!)); // events[100..199]

    const key = (await createApiKey(p.main.redis, { workspace: WS, role: 'admin' })).key;
    const got: EventEnvelope[] = [];
    const errors: Error[] = [];
    const closes: { code: number; retryInMs: number | null }[] = [];
    const sub = p.client(WS, { key }).subscribe(
      {
        after: events[50],
        onError: (e) => errors.push(e),
        onClose: (c) => closes.push({ code: c.code, retryInMs: c.retryInMs }),
      },
      (e) => got.push(e),
    );
    try {
      const ended = await Promise.race([sub.ended.then(() => true), sleep(5_000).then(() => false)]);
      expect(ended, `still going: ${sub.reconnects} reconnects, closes ${JSON.stringify(closes)}`).toBe(true);
      // What the replay sent before the damage (perhaps nothing: it reads pages), never a hole.
      expect(got.map((e) => e.position)).toEqual(events.slice(51, 51 + got.length));
      expect(sub.position).toBe(events[50 + got.length]);
      expect(sub.reconnects).toBe(0);
      expect(closes).toEqual([{ code: 1011, retryInMs: null }]);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.message).toMatch(/1011.*\/problems\/archive-unreadable/);
    } finally {
      sub.close();
    }
  }, 30_000);
});
