/**
 * Figures of contacts CONTACT_RETENTION forgot (docs/API.md, "Finished contacts", "Historical
 * intervals"): a contact completed and forgotten still counts in `/stats`' counters and in
 * `/stats/intervals`, and its id queued again is a new contact, whose assignment is a first
 * decision of its own (the first contact's `decided` does not carry over), live and from the log.
 */
import { expect, it } from 'vitest';
import { inProcessApi, type Json } from '../support/api.ts';
import { expectLiveEqualsLog, intervalsCaughtUp } from '../support/intervals.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'stats-edges-forgot';
const api = inProcessApi([WS], {
  env: { CONTACT_RETENTION: '300ms', ARCHIVE_EVERY_MS: '50', LOG_RETENTION: '24h' },
});

const sum = (r: Json) => {
  const out: Record<string, number> = {};
  for (const i of r.intervals as Record<string, number>[])
    for (const f of ['queued', 'assigned', 'transferred', 'completed'] as const)
      out[f] = (out[f] ?? 0) + i[f]!;
  return out;
};

it('counts a forgotten contact, and its id queued again as a new one', async () => {
  const started = Date.now();
  await api.ok('POST', WS, '/agents', { id: 'a1', skills: ['S', 'T'] });
  await api.ok('POST', WS, '/agents/a1/state', { state: 'available' });
  await api.ok('POST', WS, '/contacts', { id: 'c1', skills: ['S'] });
  await api.until(WS, '/contacts/c1', (c) => c.state === 'assigned');
  await api.ok('POST', WS, '/contacts/c1/complete');
  await waitFor(
    'c1 forgotten',
    async () => (await api.call('GET', `/v1/workspaces/${WS}/contacts/c1`)).status === 404,
    { timeoutMs: 10_000, everyMs: 50 },
  );
  await api.ok('POST', WS, '/contacts', { id: 'c1', skills: ['S'] });
  await api.until(WS, '/contacts/c1', (c) => c.state === 'assigned');
  await api.ok('POST', WS, '/contacts/c1/transfer', { skills: ['T'] });
  await api.until(WS, '/contacts/c1', (c) => c.state === 'assigned');
  const done = await api.ok('POST', WS, '/contacts/c1/complete');

  const stats = await api.ok('GET', WS, `/stats?minPosition=${done.position as string}`);
  expect(stats).toMatchObject({ contactsQueuedSoFar: 2, assignments: 3, completed: 2, transferred: 1 });

  const redis = api.running.redis;
  await intervalsCaughtUp(redis, WS);
  const range = `from=${new Date(started - 60_000).toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`;
  const live = await api.ok('GET', WS, `/stats/intervals?${range}`);
  expect(live.source).toBe('live');
  const log = await api.ok('GET', WS, `/stats/intervals?${range}&source=log`);
  expect(sum(live)).toEqual({ queued: 2, assigned: 2, transferred: 1, completed: 2 });
  expect(sum(log)).toEqual(sum(live));
  await expectLiveEqualsLog(redis, WS, 20_000);
});
