/**
 * A live feed asked for while the instance knows Redis does not answer (its `GET /health` is a
 * 503) is refused before the upgrade, as a `503` problem+json `redis-unavailable` with
 * `Retry-After` (docs/API.md, "Refusals and closes"), whatever its `after`: a feed from the log's
 * start (`after=0-0`) too, which reads nothing of Redis before its upgrade and so opened and was
 * then closed with `1011`. Once Redis answers again, the same feed opens and replays the log.
 *
 * The single target only: the server is stopped with SIGSTOP (test/support/freeze.ts).
 */
import { expect, it } from 'vitest';
import WebSocket from 'ws';
import { inProcessApi } from '../support/api.ts';
import { freezeRedis } from '../support/freeze.ts';
import { tryLiveOpen } from '../support/live-open.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'livedown';
const api = inProcessApi([WS]);

/** The types of the first `n` events a feed from `after=0-0` sends. */
function firstEvents(base: string, n: number): Promise<string[]> {
  const socket = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live?after=0-0`);
  const types: string[] = [];
  return new Promise((resolve, reject) => {
    socket.on('message', (m) => {
      for (const line of String(m).split('\n').filter(Boolean)) {
        const e = JSON.parse(line) as { type?: string };
        if (e.type) types.push(e.type);
      }
      if (types.length >= n) {
        socket.close();
        resolve(types.slice(0, n));
      }
    });
    socket.on('error', reject);
    socket.on('close', (code, reason) => reject(new Error(`closed with ${code} ${reason}`)));
  });
}

it('a live feed while Redis does not answer is refused with 503 redis-unavailable, from after=0-0 too', async () => {
  const base = api.running.url!;
  await api.ok('POST', WS, '/contacts', { id: 'c1', skills: ['s'] });
  const admin = api.server.adminClient();
  await admin.ping();
  const frozen = await freezeRedis(admin, { atMostMs: 20_000 });
  try {
    // The instance's once-a-second PING goes unanswered: noticed within about 2 s.
    await waitFor(
      'GET /health to answer 503',
      async () => (await api.call('GET', '/health')).status === 503,
      { timeoutMs: 10_000 },
    );
    for (const query of ['?after=0-0', '']) {
      const r = await tryLiveOpen(base, `/v1/workspaces/${WS}/events/live${query}`);
      expect(r, `events/live${query}`).toMatchObject({
        status: 503,
        body: {
          type: '/problems/redis-unavailable',
          detail: expect.stringMatching(/not reachable.*nothing was read.*again/s),
        },
      });
    }
  } finally {
    await frozen.thaw();
    admin.disconnect();
  }
  // Redis answers again (the instance notices within a second or so): the same feed opens and
  // replays from the start.
  await waitFor('GET /health to answer 200', async () => (await api.call('GET', '/health')).status === 200, {
    timeoutMs: 10_000,
  });
  expect(await firstEvents(base, 1)).toEqual(['ContactQueued']);
});
