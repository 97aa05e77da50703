/**
 * A live feed resumed with `after=` over a hole of the archive is closed with 1011, and the reason
 * names the `after=` that reads on past the hole when the archive tells it (`resumeAfter=`, as the
 * 503 archive-unreadable's field), within the 123 bytes a close reason may hold; reopening with it
 * replays the rest. It is not written `after=`, which a client takes for the position it is done
 * with (test/client/live-archive-unreadable.test.ts). A hole whose end the archive does not tell (the last segment emptied)
 * closes with the reason naming no position.
 */
import { mkdtempSync } from 'node:fs';
import { rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { archiveUnreadableReason, MAX_CLOSE_REASON_BYTES } from '../../src/adapters/http/live.ts';
import { inProcessApi } from '../support/api.ts';
import { archivedLog } from '../support/archive-log.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'sb-live-hole-'));
const api = inProcessApi([], { env: { ROLES: 'api', ARCHIVE_DIR: dir } });
afterAll(() => rm(dir, { recursive: true, force: true }));
const MAX = '18446744073709551615';

interface Feed {
  readonly positions: string[];
  readonly closed: Promise<{ code: number; reason: string }>;
}

function open(ws: string, after: string): Feed {
  const url = `${api.running.url!.replace(/^http/, 'ws')}/v1/workspaces/${ws}/events/live?after=${after}&heartbeat=0`;
  const socket = new WebSocket(url);
  const positions: string[] = [];
  socket.on('message', (m) => positions.push((JSON.parse(String(m)) as { position: string }).position));
  socket.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  setTimeout(() => socket.terminate(), 5000).unref();
  return { positions, closed };
}

async function broken(ws: string, segment: number, how: 'removed' | 'emptied') {
  const log = await archivedLog(api.running.redis, ws, dir, 7);
  const file = path.join(log.dir, log.names.filter((f) => f.endsWith('.jsonl'))[segment]!);
  if (how === 'removed') await unlink(file);
  else await writeFile(file, '');
  return log;
}

describe('a live feed resumed over a hole of the archive', () => {
  it('is closed with 1011 naming the after= that reads on (the 503’s resumeAfter); reopened with it, the rest follows', async () => {
    const ws = `live-hole-${Date.now().toString(36)}`;
    const { events } = await broken(ws, 1, 'removed'); // events[100..199]
    const page = await api.call('GET', `/v1/workspaces/${ws}/events?after=${events[50]}&limit=1000`);
    expect(page.status).toBe(503);
    const resumeAfter = page.body.resumeAfter as string;
    expect(resumeAfter).toMatch(/^\d+-\d+$/);

    const feed = open(ws, events[50]!);
    const closed = await feed.closed;
    expect(closed.code).toBe(1011);
    expect(closed.reason).toBe(
      `history unreadable from the archive (/problems/archive-unreadable); resumeAfter=${resumeAfter}`,
    );
    // No `after=` in it: a client takes that for the position it is done with (src/client/live.ts).
    expect(/after=(\d{1,20}-\d{1,20})/.exec(closed.reason)).toBeNull();
    // Never a hole in what was sent before the close.
    expect(feed.positions).toEqual(events.slice(51, 51 + feed.positions.length));

    const on = open(ws, resumeAfter);
    await expect.poll(() => on.positions.length, { timeout: 3000 }).toBe(events.length - 200);
    expect(on.positions).toEqual(events.slice(200));
  });

  it('a hole whose end the archive does not tell: the reason names no position', async () => {
    const ws = `live-hole-end-${Date.now().toString(36)}`;
    const { events } = await broken(ws, 3, 'emptied'); // events[300..349], the last segment
    const closed = await open(ws, events[250]!).closed;
    expect(closed).toEqual({
      code: 1011,
      reason: 'history unreadable from the archive (/problems/archive-unreadable)',
    });
  });

  it('the reason holds the longest position within the 123 bytes of a close reason', () => {
    const reason = archiveUnreadableReason(`${MAX}-0`, '0-0');
    expect(reason).toBe(
      `history unreadable from the archive (/problems/archive-unreadable); resumeAfter=18446744073709551614-${MAX}`,
    );
    expect(Buffer.byteLength(reason)).toBeLessThanOrEqual(MAX_CLOSE_REASON_BYTES);
    // Not past the position the feed is done with: no position named.
    expect(archiveUnreadableReason('5-3', '5-2')).toBe(
      'history unreadable from the archive (/problems/archive-unreadable)',
    );
  });
});
