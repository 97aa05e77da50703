/**
 * A hole in the archive (a segment removed): the client hands the application where the history
 * reads again, so it can choose to skip the hole, and never skips it by itself.
 *
 * - `GET /events` answers 503 `/problems/archive-unreadable` with `lostAfter`, `resumeAt` and
 *   `resumeAfter`: the SwitchboardError carries them as `hole`, and is not tried again (every try
 *   meets the same damage: no Retry-After, nothing a wait mends).
 * - The live feed is closed with 1011 `...; resumeAfter=<position>`: the error told to onError
 *   carries `hole.resumeAfter` (and `resumeAt`), the subscription's own position stays before the
 *   hole, and a subscription the application opens with `after: hole.resumeAfter` reads on.
 */
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EventEnvelope } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { archivedLog } from '../support/archive-log.ts';
import { sleep } from '../support/wait.ts';
import { type ClientFixture, failure, startClientFixture } from './fixture.ts';

let p: ClientFixture;
let dir: string;
let events: string[];
let key: string;
const WS = 'client-hole-resume';
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sb-client-hole-'));
  // On every loopback address: 127.0.0.2 is a second base URL of the same instance (failover).
  p = await startClientFixture(['client-hole-served'], { ARCHIVE_DIR: dir, HOST: '0.0.0.0' });
  const log = await archivedLog(p.main.redis, WS, dir, 11);
  events = log.events;
  await unlink(path.join(log.dir, log.names.filter((f) => f.endsWith('.jsonl'))[1]!)); // events[100..199]
  key = (await createApiKey(p.main.redis, { workspace: WS, role: 'admin' })).key;
}, 30_000);
afterAll(async () => {
  await p?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** `<ms>-<seq>` of the position right before `p` (as the server's resumeAfter). */
const positionBefore = (pos: string) => {
  const [ms, seq] = pos.split('-').map(BigInt) as [bigint, bigint];
  return seq > 0n ? `${ms}-${seq - 1n}` : `${ms - 1n}-18446744073709551615`;
};

describe('a hole in the archive, through the client', () => {
  it('GET /events: the 503 is thrown at once with the hole; after=hole.resumeAfter reads on', async () => {
    const c = p.client(WS, { key });
    const t0 = Date.now();
    const err = await failure(c.listEvents({ after: events[50]!, limit: 1000 }));
    const took = Date.now() - t0;
    expect(err.status).toBe(503);
    expect(err.type).toBe('/problems/archive-unreadable');
    const hole = (err as unknown as { hole?: Record<string, unknown> }).hole;
    expect(hole).toEqual({
      lostAfter: events[99],
      resumeAt: events[200],
      resumeAfter: positionBefore(events[200]!),
    });
    // Every try meets the same damage: not tried again for seconds.
    expect(err.attempts).toBe(1);
    expect(took).toBeLessThan(1_000);

    const rest: string[] = [];
    for await (const e of c.allEvents({ after: hole!.resumeAfter as string, limit: 100 }))
      rest.push(e.position);
    expect(rest).toEqual(events.slice(200));
  });

  it('with failover: each base URL is asked once, then the 503 is thrown', async () => {
    const port = new URL(p.main.url!).port;
    const urls: string[] = [];
    const c = p.client(WS, {
      key,
      url: `http://127.0.0.1:${port}`,
      failover: [`http://127.0.0.2:${port}`],
      onRetry: (i) => {
        urls.push(i.url);
        return 0;
      },
    });
    const err = await failure(c.listEvents({ after: events[50]!, limit: 1000 }));
    expect(err.hole?.resumeAfter).toBe(positionBefore(events[200]!));
    expect(urls).toEqual([`http://127.0.0.1:${port}`]);
    expect(err.attempts).toBe(2);
  });

  it('live: onError is told resumeAfter; the position stays before the hole; after: it reads on', async () => {
    const c = p.client(WS, { key });
    const got: EventEnvelope[] = [];
    const errors: Error[] = [];
    const sub = c.subscribe({ after: events[50]!, onError: (e) => errors.push(e) }, (e) => got.push(e));
    try {
      const ended = await Promise.race([sub.ended.then(() => true), sleep(5_000).then(() => false)]);
      expect(ended).toBe(true);
    } finally {
      sub.close();
    }
    expect(got.map((e) => e.position)).toEqual(events.slice(51, 51 + got.length));
    // Never moved past the hole by itself.
    expect(sub.position).toBe(events[50 + got.length]);
    expect(errors).toHaveLength(1);
    const err = errors[0] as Error & { hole?: Record<string, unknown> };
    expect(err.message).toMatch(/1011.*\/problems\/archive-unreadable/);
    expect(err.hole).toEqual({
      lostAfter: null,
      resumeAt: events[200],
      resumeAfter: positionBefore(events[200]!),
    });

    const on: string[] = [];
    const next = c.subscribe({ after: err.hole!.resumeAfter as string }, (e) => on.push(e.position));
    try {
      await next.ready;
      await expect.poll(() => on.length, { timeout: 3_000 }).toBe(events.length - 200);
      expect(on).toEqual(events.slice(200));
    } finally {
      next.close();
    }
  });
});
