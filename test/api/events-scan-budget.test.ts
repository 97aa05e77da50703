/**
 * `GET /events?type=` reads a bounded stretch of the log per page (EVENTS_SCAN_BUDGET events): a
 * type found rarely, or not at all, no longer has one request read the whole history. A page may
 * then hold fewer than `limit` events, or none, with a `next` to go on from; paging until `next` is
 * null finds every event of the type, once, in order (the typed client's `allEvents` does).
 */
import { describe, expect, it } from 'vitest';
import { EVENTS_SCAN_BUDGET, readEvents } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { SwitchboardClient } from '../../src/client/index.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'events-scan-budget';
const api = inProcessApi([WS]);

/** Appends `n` AgentRemoved events then one SettingsChanged, as raw entries of the event stream. */
async function appendLog(ws: string, n: number): Promise<string> {
  const redis = api.running.redis;
  const key = workspaceKeys(ws).events;
  const entry = (type: string, data: object) =>
    JSON.stringify({ type, workspace: ws, at: new Date().toISOString(), data, meta: {} });
  for (let i = 0; i < n; i += 1000) {
    const batch = redis.pipeline();
    for (let j = i; j < Math.min(n, i + 1000); j++)
      batch.xadd(key, '*', 'type', 'AgentRemoved', 'event', entry('AgentRemoved', { agentId: `a${j}` }));
    await batch.exec();
  }
  return (await redis.xadd(key, '*', 'type', 'SettingsChanged', 'event', entry('SettingsChanged', {})))!;
}

describe('GET /events?type= reads a bounded stretch of the log per page', () => {
  it('pages past a long run of other events: pages with nothing and a next, then the event, then null', async () => {
    const last = await appendLog(WS, EVENTS_SCAN_BUDGET + 50);
    const first = await api.ok('GET', WS, '/events?type=SettingsChanged');
    expect(first.events).toEqual([]);
    expect(first.next).toEqual(expect.stringMatching(/^\d+-\d+$/));
    const second = await api.ok('GET', WS, `/events?type=SettingsChanged&after=${first.next}`);
    expect((second.events as { type: string }[]).map((e) => e.type)).toEqual(['SettingsChanged']);
    expect(second.next).toBeNull();

    // Unfiltered pages are not affected: full pages of `limit`.
    const plain = await api.ok('GET', WS, '/events?limit=1000');
    expect(plain.events).toHaveLength(1000);

    // The typed client pages through the empty pages to the event.
    const client = new SwitchboardClient({ url: api.running.url!, workspace: WS });
    const found = [];
    for await (const e of client.allEvents({ types: ['SettingsChanged'] })) found.push(e.position);
    expect(found).toEqual([last]);
  });

  it('holds a page to its budget, and ends it with null only at the end of the log', async () => {
    const ws = `${WS}-small`;
    const last = await appendLog(ws, 30);
    const redis = api.running.redis;
    const pages = [];
    let after: string | undefined;
    for (;;) {
      const p = await readEvents(redis, ws, {
        limit: 5,
        types: new Set(['SettingsChanged']),
        scanBudget: 10,
        ...(after ? { after } : {}),
      });
      pages.push(p.events.map((e) => e.position));
      if (p.next === null) break;
      after = p.next;
    }
    expect(pages).toEqual([[], [], [], [last]]);
    const many = await readEvents(redis, ws, { limit: 5, types: new Set(['AgentRemoved']), scanBudget: 10 });
    expect(many.events).toHaveLength(5);
    expect(many.next).toBe(many.events[4]!.position);
  });
});
