/**
 * A workspace quiet for longer than LOG_RETENTION has every entry of its event stream past the
 * retention, and the archiver moves all but the newest, which stays in Redis (src/archive/archiver.ts):
 * the readers that refuse a position past the log's end (`409` `position-ahead`: the live feed's
 * upgrade, `POST /ws-tickets`) read that end from the stream alone. A reader resuming from the last
 * event, or one before it, after a quiet weekend is served (a page, a ticket, a feed opened), not
 * refused as if Redis had lost its data; a position past the end is still refused, naming it.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { inProcessApi } from '../support/api.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'sb-quiet-'));
const api = inProcessApi([], { env: { ROLES: 'api', ARCHIVE_DIR: dir } });
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A workspace's log of 120 events, all past a retention of 1 ms: all archived but the newest. */
async function quietWorkspace(ws: string): Promise<string[]> {
  const redis = api.running.redis;
  await writeLog(redis, ws, { events: 120, agents: 4, seed: 3 });
  const k = workspaceKeys(ws);
  const events = ((await redis.xrange(k.events, '-', '+')) as StreamEntry[]).map((e) => e[0]);
  await new Promise((r) => setTimeout(r, 5));
  await new Archiver(redis, new DiskArchive(dir), pino({ level: 'silent' }), {
    retention: { ageMs: 1 },
    segmentEntries: 50,
    everyMs: 10,
  }).drain(ws);
  const kept = (await redis.xrange(k.events, '-', '+')) as StreamEntry[];
  expect(
    kept.map((e) => e[0]),
    'the newest event, alone in the stream',
  ).toEqual([events.at(-1)]);
  return events;
}

/** The upgrade's answer: 101 (opened, then closed by us) or the refusal's status and body. */
function upgrade(ws: string, after: string): Promise<{ status: number; body?: Record<string, unknown> }> {
  const url = `${api.running.url!.replace(/^http/, 'ws')}/v1/workspaces/${ws}/events/live?after=${after}&heartbeat=0`;
  return new Promise((resolve) => {
    const socket = new WebSocket(url);
    socket.on('open', () => {
      socket.close();
      resolve({ status: 101 });
    });
    socket.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    socket.on('error', () => undefined);
  });
}

describe('a workspace whose event stream is archived but for its newest entry', () => {
  it('serves a read, a ticket and a live feed from its last event', async () => {
    const ws = `quiet-${Date.now().toString(36)}`;
    const events = await quietWorkspace(ws);
    const last = events.at(-1)!;

    const page = await api.call('GET', `/v1/workspaces/${ws}/events?after=${events.at(-3)}`);
    expect(page.status).toBe(200);
    expect((page.body.events as { position: string }[]).map((e) => e.position)).toEqual(events.slice(-2));

    const ticket = await api.call('POST', `/v1/workspaces/${ws}/ws-tickets`, { after: last });
    expect(ticket.status, JSON.stringify(ticket.body)).toBe(201);

    expect(await upgrade(ws, last)).toEqual({ status: 101 });
    expect(await upgrade(ws, events.at(-5)!)).toEqual({ status: 101 });
  });

  it('still refuses a position past the archived end, naming that end', async () => {
    const ws = `quiet-ahead-${Date.now().toString(36)}`;
    const events = await quietWorkspace(ws);
    const last = events.at(-1)!;
    const ahead = `${Number(last.split('-')[0]) + 60_000}-0`;
    const refused = await upgrade(ws, ahead);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ type: '/problems/position-ahead', lastPosition: last });
    const ticket = await api.call('POST', `/v1/workspaces/${ws}/ws-tickets`, { after: ahead });
    expect(ticket.status).toBe(409);
    expect(ticket.body).toMatchObject({ type: '/problems/position-ahead', lastPosition: last });
  });
});
