/**
 * GET /stats/intervals over an event stream entry typed `ContactsForgotten` whose `contactIds` is
 * no list (something else writing to the stream, docs/API.md "Events": the intervals count an entry
 * by its `type` field when its `event` field is JSON). The rule's `.filter` of a number threw: the
 * log's reading answered 500, and the live projection stopped at the entry for good (its loop
 * failed at every step), so every later range fell back to the log and its 500. Now a list that
 * is none forgets nothing, and both readings go on past it.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';
import { expectLiveEqualsLog, intervalsCaughtUp } from '../support/intervals.ts';

const WS = 'stats-edges-bad-list';
const api = inProcessApi([WS]);

describe('GET /stats/intervals past a ContactsForgotten whose list is none', () => {
  it('forgets nothing for it, and counts the events around it, live and from the log', async () => {
    const started = Date.now();
    await api.ok('POST', WS, '/contacts', { id: 'c1', skills: ['S'] });
    const redis = api.running.redis;
    const events = workspaceKeys(WS).events;
    for (const list of ['5', '"c1"', '{"0": "c1"}'])
      await redis.xadd(
        events,
        '*',
        'type',
        'ContactsForgotten',
        'event',
        `{"type": "ContactsForgotten", "workspace": "${WS}", "data": {"contactIds": ${list}}}`,
      );
    await api.ok('POST', WS, '/contacts', { id: 'c2', skills: ['S'] });
    // A handle time Redis's integer increments refuse: none, live and from the log.
    await redis.xadd(
      events,
      '*',
      'type',
      'ContactCompleted',
      'event',
      `{"type": "ContactCompleted", "workspace": "${WS}", "data": {"contactId": "c2", "handledMs": 1e20}}`,
    );
    await api.ok('POST', WS, '/contacts/c1/abandon');

    const range = `from=${new Date(started - 60_000).toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`;
    const log = await api.call('GET', `/v1/workspaces/${WS}/stats/intervals?${range}&source=log`);
    expect(log.status, JSON.stringify(log.body)).toBe(200);
    const total = (body: Record<string, unknown>) => {
      const out = { queued: 0, abandoned: 0 };
      for (const i of body.intervals as {
        queued: number;
        abandoned: number;
        queues: Record<string, { abandoned: number }>;
      }[]) {
        out.queued += i.queued;
        out.abandoned += i.queues['voice ["S"]']?.abandoned ?? 0;
      }
      return out;
    };
    // c1 still known to be in its queue: its abandon counts there.
    expect(total(log.body)).toEqual({ queued: 2, abandoned: 1 });

    await intervalsCaughtUp(redis, WS);
    await expectLiveEqualsLog(redis, WS, 20_000);
    const live = await api.ok('GET', WS, `/stats/intervals?${range}`);
    expect(live.source).toBe('live');
    expect(total(live)).toEqual({ queued: 2, abandoned: 1 });
  });
});
