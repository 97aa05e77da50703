/**
 * `successor()` (src/archive/segment.ts), the first position a later entry can have, at the edges
 * of a position's parts: after the largest sequence comes `<ms+1>-0` (not a sequence of 2^64, which
 * is no position), and nothing comes after the largest position. Through the archiver: a segment
 * whose last event stands at the largest sequence of its millisecond is archived, the stream trimmed
 * up to it, and the whole history reads back; a segment ending at the largest position empties
 * the stream (src/archive/archiver.ts `trimAndMark`).
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver, trimAndMark } from '../../src/archive/archiver.ts';
import { successor } from '../../src/archive/segment.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { POSITION_PATTERN } from '../../src/domain/values.ts';
import { inProcessApi } from '../support/api.ts';

const MAX = '18446744073709551615';
const BASE = 1796482163000;
const dir = mkdtempSync(path.join(tmpdir(), 'sb-successor-'));
const api = inProcessApi([], { env: { ROLES: 'api', ARCHIVE_DIR: dir } });
afterAll(() => rm(dir, { recursive: true, force: true }));
const run = Date.now().toString(36);

describe('successor()', () => {
  it('is the next sequence of the millisecond, `<ms+1>-0` after the largest sequence, none after the largest position', () => {
    expect(successor('5-3')).toBe('5-4');
    expect(successor('0-0')).toBe('0-1');
    expect(successor(`5-${BigInt(MAX) - 1n}`)).toBe(`5-${MAX}`);
    expect(successor(`5-${MAX}`)).toBe('6-0');
    expect(successor(`${BigInt(MAX) - 1n}-${MAX}`)).toBe(`${MAX}-0`);
    expect(successor(`${MAX}-${MAX}`)).toBeNull();
    for (const p of ['5-3', `5-${MAX}`, `${BigInt(MAX) - 1n}-${MAX}`])
      expect(successor(p), p).toMatch(POSITION_PATTERN);
  });
});

describe('the archiver at a segment ending at the largest sequence of its millisecond', () => {
  it('archives it, trims the stream up to it, and the whole history reads back', async () => {
    const redis = api.running.redis;
    const source = `successor-${run}-source`;
    await writeLog(redis, source, { events: 150, agents: 4, seed: 3 });
    const fields = ((await redis.xrange(workspaceKeys(source).events, '-', '+')) as StreamEntry[]).map(
      (e) => e[1],
    );
    const ws = `successor-${run}`;
    const k = workspaceKeys(ws);
    // Events 0..98 in millisecond BASE, event 99 (the first segment's last) at its largest sequence.
    const id = (i: number) => (i < 99 ? `${BASE}-${i}` : i === 99 ? `${BASE}-${MAX}` : `${BASE + i}-0`);
    const ids = fields.map((_, i) => id(i));
    const m = redis.multi();
    for (const [i, f] of fields.entries()) m.xadd(k.events, ids[i]!, ...f);
    await m.exec();
    const errors: string[] = [];
    const archiver = new Archiver(redis, new DiskArchive(dir), pino({ level: 'silent' }), {
      retention: { count: 50 },
      segmentEntries: 100,
      everyMs: 10,
    });
    await archiver.drain(ws).catch((err: Error) => errors.push(err.message));
    expect(errors).toEqual([]);
    expect(await redis.xlen(k.events)).toBe(fields.length - 100);
    expect((await redis.xrange(k.events, '-', '+', 'COUNT', 1))[0]![0]).toBe(ids[100]);

    const res = await api.running.api!.inject({
      method: 'GET',
      url: `/v1/workspaces/${ws}/events?after=0-0&limit=1000`,
    });
    expect(res.statusCode, res.body).toBe(200);
    expect((res.json() as { events: { position: string }[] }).events.map((e) => e.position)).toEqual(ids);
  });

  it('a segment ending at the largest position: the stream is emptied (no entry can follow it)', async () => {
    const redis = api.running.redis;
    const ws = `successor-${run}-max`;
    const k = workspaceKeys(ws);
    await redis.xadd(k.events, `${BASE}-0`, 'type', 'x', 'event', '{}');
    await redis.xadd(k.events, `${MAX}-${MAX}`, 'type', 'x', 'event', '{}');
    const done = await trimAndMark(redis, ws, 'events', {
      index: 0,
      last: `${MAX}-${MAX}`,
      hash: 'h',
      total: 2,
    });
    expect(done).toBe(true);
    expect(await redis.xlen(k.events)).toBe(0);
  });
});
