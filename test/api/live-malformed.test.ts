/**
 * A malformed entry in a workspace's event stream (not decodable as an event: not JSON, or JSON
 * that is no event) read by the live feed in one batch with good events: the feed skips that entry
 * alone (logged once by the tail, with its position), every subscriber still gets the good events
 * of the batch it wants (unfiltered, `agent=`, `type=`), positions move past the bad entry (the
 * heartbeat's `after`), and a replay (`after=`) over it sends the good events and stays open.
 * Only Switchboard writes the stream normally: the test writes the entries with raw XADDs, in one
 * MULTI so the tail reads them in one batch.
 */
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';
import { capturedLogger } from '../support/log-capture.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'live-malformed';
const EVERY = 150;
const { logger, lines: logged } = capturedLogger('warn');
const api = inProcessApi([WS], { env: { LIVE_HEARTBEAT_MS: String(EVERY) }, logger });

type Message = Record<string, unknown> & { position?: string; heartbeat?: { after: string } };
interface Feed {
  readonly socket: WebSocket;
  readonly messages: Message[];
  closed: { code: number; reason: string } | undefined;
}
const feeds: Feed[] = [];
afterAll(() => {
  for (const f of feeds) f.socket.terminate();
});

function open(query: string): Promise<Feed> {
  const url = `${api.running.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live?${query}`;
  const socket = new WebSocket(url);
  const feed: Feed = { socket, messages: [], closed: undefined };
  feeds.push(feed);
  socket.on('message', (m) => feed.messages.push(JSON.parse(String(m)) as Message));
  socket.once('close', (code, reason) => {
    feed.closed = { code, reason: String(reason) };
  });
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(feed));
    socket.once('error', reject);
  });
}

const events = (f: Feed) => f.messages.filter((m) => m.heartbeat === undefined).map((m) => m.position);
const event = (type: string, data: Record<string, unknown>) => [
  'type',
  type,
  'event',
  JSON.stringify({ type, workspace: WS, at: new Date().toISOString(), data, meta: {} }),
];

describe('a malformed entry among good events of one batch', () => {
  it('is skipped alone by the tail: every live feed gets the good events, positions pass it', async () => {
    const redis = api.server.adminClient();
    const key = workspaceKeys(WS).events;
    const all = await open('heartbeat=1');
    const byAgent = await open('agent=a1');
    const byType = await open('type=AgentStateChanged');
    // One MULTI: the tail reads these four in one batch.
    const r = (await redis
      .multi()
      .xadd(key, '*', ...event('AgentStateChanged', { agentId: 'a1', state: 'available' }))
      .xadd(key, '*', 'type', 'AgentStateChanged', 'event', '{"type": "AgentStateChanged", not json')
      .xadd(key, '*', ...event('AgentStateChanged', { agentId: 'a1', state: 'away' }))
      // JSON, but no event: no `type`, no `data`.
      .xadd(key, '*', 'type', 'AgentStateChanged', 'event', '"just a string"')
      .exec())!.map(([err, id]) => {
      expect(err).toBeNull();
      return id as string;
    });
    const [good1, bad1, good2, bad2] = r as [string, string, string, string];
    await waitFor(
      'every feed handed the good events',
      () => [all, byAgent, byType].every((f) => events(f).length >= 2),
      { timeoutMs: 3000 },
    ).catch(() => undefined);
    expect({ all: events(all), byAgent: events(byAgent), byType: events(byType) }).toEqual({
      all: [good1, good2],
      byAgent: [good1, good2],
      byType: [good1, good2],
    });
    // The position a feed is done with passes the malformed entry that ends the batch.
    const passed = (f: Feed) =>
      f.messages.some((m) => m.heartbeat !== undefined && m.heartbeat.after === bad2);
    for (const f of [all, byAgent, byType])
      await waitFor(`${f.socket.url} heartbeat after ${bad2}`, () => passed(f), { timeoutMs: 3000 });
    // Logged once each by the tail (three subscribers), with its position.
    for (const bad of [bad1, bad2]) expect(logged.filter((l) => l.position === bad)).toHaveLength(1);

    // The feeds go on: a later event reaches them all.
    const later = (await redis.xadd(
      key,
      '*',
      ...event('AgentStateChanged', { agentId: 'a1', state: 'available' }),
    ))!;
    for (const f of [all, byAgent, byType])
      await waitFor(`${f.socket.url} handed ${later}`, () => events(f).includes(later), { timeoutMs: 3000 });

    expect(all.closed).toBeUndefined();
    expect(byAgent.closed).toBeUndefined();
  });

  it('is skipped alone by a replay (after=): the good events are sent, and the feed stays open', async () => {
    const redis = api.server.adminClient();
    const key = workspaceKeys(WS).events;
    const before = (await redis.xadd(
      key,
      '*',
      ...event('AgentStateChanged', { agentId: 'r0', state: 'away' }),
    ))!;
    const good1 = (await redis.xadd(
      key,
      '*',
      ...event('AgentStateChanged', { agentId: 'r1', state: 'away' }),
    ))!;
    await redis.xadd(key, '*', 'type', 'AgentStateChanged', 'event', '{not json');
    const good2 = (await redis.xadd(
      key,
      '*',
      ...event('AgentStateChanged', { agentId: 'r1', state: 'available' }),
    ))!;
    await redis.xadd(key, '*', 'type', 'AgentStateChanged', 'event', '{"type": "AgentStateChanged"}');
    const replayAll = await open(`after=${before}&heartbeat=0`);
    const replayAgent = await open(`after=${before}&agent=r1&heartbeat=0`);
    await waitFor(
      'both replays',
      () => [replayAll, replayAgent].every((f) => events(f).length >= 2 || f.closed),
      {
        timeoutMs: 3000,
      },
    ).catch(() => undefined);
    expect({ all: events(replayAll), agent: events(replayAgent) }).toEqual({
      all: [good1, good2],
      agent: [good1, good2],
    });
    expect(replayAll.closed).toBeUndefined();
    expect(replayAgent.closed).toBeUndefined();
  });
});
