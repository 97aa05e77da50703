/**
 * Replay across the archive boundary through the API: `GET /events?after=` and the live feed's
 * `after` read the archived segments when the position is older than the stream's first entry,
 * in order, with no gap and no duplicate where the archive ends and the stream begins.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { Running } from '../../src/app/composition-root.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import type { Command } from '../../src/domain/commands.ts';
import { type ArchivingSwitchboard, archivingSwitchboard } from '../support/archive-log.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'replay-archived';
const log = pino({ level: 'silent' });
let sb: ArchivingSwitchboard | undefined;
let main: Running;
let dir: string;
/** Every event position, read before anything was archived. */
let all: string[];

beforeAll(async () => {
  sb = await archivingSwitchboard('sb-replay-', { ROLES: 'api,projector,dispatcher', WORKSPACES: WS }, log);
  ({ main, dir } = sb);
  const r = main.redis;
  const commands: Command[] = [
    { type: 'RegisterAgent', agentId: 'a', skills: ['s'], capacity: 1 },
    ...Array.from(
      { length: 150 },
      (_, i): Command => ({ type: 'QueueContact', contactId: `c${i}`, skills: ['s'], priority: 0 }),
    ),
    { type: 'ChangeAgentState', agentId: 'a', state: 'available' },
  ];
  for (const command of commands) await appendCommand(r, { workspace: WS, command });
  const k = workspaceKeys(WS);
  // 150 queued, one assigned: 153 events once the workers are done.
  await waitFor('the log to settle', async () => (await r.xlen(k.events)) === 153, { timeoutMs: 20_000 });
  all = ((await r.xrange(k.events, '-', '+')) as StreamEntry[]).map((e) => e[0]);
  const archiver = new Archiver(r, new DiskArchive(dir), log, {
    retention: { count: 40 },
    segmentEntries: 25,
    everyMs: 10,
  });
  await archiver.drain(WS);
  expect(await r.xlen(k.events)).toBeLessThanOrEqual(40);
}, 60_000);

afterAll(async () => sb?.stop());

describe('replay across the archive', () => {
  it('GET /events pages from an archived position through to the stream', async () => {
    for (const start of [0, 1, 24, 25, 26, 100, all.length - 41]) {
      const after = start === 0 ? '0-0' : all[start - 1]!;
      const seen: string[] = [];
      let cursor: string | null = after;
      while (cursor !== null) {
        const res = await main.api!.inject({
          method: 'GET',
          url: `/v1/workspaces/${WS}/events?after=${cursor}&limit=17`,
        });
        expect(res.statusCode).toBe(200);
        const page = res.json() as { events: { position: string }[]; next: string | null };
        seen.push(...page.events.map((e) => e.position));
        cursor = page.next;
      }
      expect(seen, `after ${after}`).toEqual(all.slice(start));
    }
  });

  it('a live feed resumed from an archived position replays it all, then goes live', async () => {
    const url = `${main.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live?after=${all[9]}`;
    const socket = new WebSocket(url);
    const got: string[] = [];
    socket.on('message', (m) => {
      const e = JSON.parse(String(m)) as { position?: string };
      if (e.position !== undefined) got.push(e.position); // not a heartbeat
    });
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    await waitFor('the replay', async () => got.length >= all.length - 10, { timeoutMs: 10_000 });
    // Then live: one more contact, one more event.
    await appendCommand(main.redis, {
      workspace: WS,
      command: { type: 'QueueContact', contactId: 'late', skills: ['s'], priority: 0 },
    });
    await waitFor('the live event', async () => got.length === all.length - 10 + 1, { timeoutMs: 10_000 });
    socket.close(1000);
    expect(got.slice(0, all.length - 10)).toEqual(all.slice(10));
    expect(new Set(got).size).toBe(got.length);
  });
});
