/**
 * What an operator reads when a live feed's replay meets a Redis that stops answering: the feed is
 * closed with 1011 and `after=` (the client reconnects), and the warning logged said only `replay
 * failed`, where every other line about a failed Redis call says what to do (check that Redis is
 * up and reachable: src/adapters/redis/advice.ts). Now it says so, with the workspace and the
 * position the feed resumes from.
 *
 * Redis is held with CLIENT PAUSE (every master on the cluster target: the pause stops clients, not
 * the cluster bus, so no node is failed over).
 */
import type { Cluster } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CHECK_REDIS } from '../../src/adapters/redis/advice.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { inProcessApi } from '../support/api.ts';
import { capturedLogger } from '../support/log-capture.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'observe-replay';
const { logger, lines } = capturedLogger('warn');
const api = inProcessApi([WS], { logger });

let admin: RedisClient | undefined;
afterAll(() => admin?.disconnect());

/** Pauses every client of every master for `ms` (the admin's own later commands too). */
async function pauseRedis(ms: number): Promise<void> {
  admin = api.server.adminClient();
  await admin.ping();
  const masters = api.server.target === 'cluster' ? (admin as Cluster).nodes('master') : [admin];
  await Promise.all(masters.map((m) => m.call('CLIENT', 'PAUSE', String(ms), 'ALL')));
}

/** Opens a feed; resolves with its close code and reason. */
function closeOf(base: string, query: string): Promise<{ code: number; reason: string }> {
  const socket = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live${query}`);
  return new Promise((resolve, reject) => {
    socket.on('error', reject);
    socket.on('close', (code, reason) => resolve({ code, reason: String(reason) }));
  });
}

it("a replay that Redis does not answer: the warning says to check Redis, and names the feed's position", async () => {
  const base = api.running.url!;
  await api.ok('POST', WS, '/contacts', { id: 'c1', skills: ['s'] });
  // A first feed makes the workspace's tail: the next one opens without a Redis read.
  const first = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live`);
  await new Promise((resolve, reject) => first.on('open', resolve).on('error', reject));
  first.close();
  await pauseRedis(3500);
  const closed = await closeOf(base, '?after=0-0');
  expect(closed).toEqual({ code: 1011, reason: 'replay failed; reconnect with after=0-0' });
  const warned = await waitFor('the replay warning', () =>
    lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('replay failed')),
  );
  expect(warned).toMatchObject({ level: 40, workspace: WS, resumeAfter: '0-0', err: expect.any(String) });
  expect(warned.msg).toContain(CHECK_REDIS);
  // The pause over, the instance is stopped against a Redis that answers.
  await waitFor('GET /health to answer 200', async () => (await api.call('GET', '/health')).status === 200, {
    timeoutMs: 15_000,
  });
});
