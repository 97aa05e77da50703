/**
 * /metrics past an event stream entry typed `AssignmentMade` that is no event (docs/API.md: something
 * else writing to the stream can append one; every reader of the log passes over it). The wait
 * histogram's fold parsed its `event` field and threw: the workspace was reported
 * `switchboard_workspace_up 0`, its figures gone, at every scrape from then on (the fold's cursor
 * never moved past the entry). Now the fold passes over it, and counts the decisions after it.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'stats-edges-metrics';
const api = inProcessApi([WS]);

const scrape = async (): Promise<string> => (await api.running.api!.inject({ url: '/metrics' })).body;

/** The value of a sample (undefined when absent). */
const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('the wait histogram past an AssignmentMade entry that is no event', () => {
  it('passes over it: the workspace stays up and the decisions after it are counted', async () => {
    const w = `workspace="${WS}"`;
    await api.ok('POST', WS, '/agents', { id: 'a1', skills: ['S'] });
    // The histogram counts from the first scrape that reports the workspace.
    expect(sample(await scrape(), `switchboard_workspace_up{${w}}`)).toBe(1);
    const events = workspaceKeys(WS).events;
    const redis = api.running.redis;
    await redis.xadd(events, '*', 'type', 'AssignmentMade', 'event', 'not json');
    await redis.xadd(events, '*', 'type', 'AssignmentMade', 'event', '{"data":');
    await redis.xadd(events, '*', 'type', 'AssignmentMade', 'event', 'null');
    await redis.xadd(events, '*', 'type', 'AssignmentMade');
    // A wait Redis's integer increments refuse (and one longer than time since 1970): no wait.
    for (const waited of ['1e20', '1e300', '-1e20'])
      await redis.xadd(
        events,
        '*',
        'type',
        'AssignmentMade',
        'event',
        `{"type":"AssignmentMade","data":{"contactId":"x","waitedMs":${waited}},"meta":{}}`,
      );
    await api.ok('POST', WS, '/agents/a1/state', { state: 'available' });
    await api.ok('POST', WS, '/contacts', { id: 'c1', skills: ['S'] });
    await api.until(WS, '/contacts/c1', (c) => c.state === 'assigned');

    // A wait a little below 0 is real (the clock stepped back between arrival and decision): it
    // counts, in the first bucket.
    await redis.xadd(
      events,
      '*',
      'type',
      'AssignmentMade',
      'event',
      '{"type":"AssignmentMade","data":{"contactId":"y","waitedMs":-5},"meta":{}}',
    );

    const text = await scrape();
    expect(sample(text, `switchboard_workspace_up{${w}}`)).toBe(1);
    expect(sample(text, `switchboard_wait_seconds_count{${w}}`)).toBe(2);
    expect(sample(text, `switchboard_workspace_assignments_total{${w}}`)).toBe(1);
  });
});
