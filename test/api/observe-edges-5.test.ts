/**
 * A request that fails for a reason Switchboard does not know (a fault of its own, or a key of the
 * workspace damaged by hand) is answered 500 `/problems/internal` and logged at error as `request
 * failed`, with nothing saying what to do: every other error line does. The line now says it is
 * a defect to report (or damaged data to check), with the request id to report it under.
 *
 * Likewise an entry of the event stream that is no event (written by something else: Switchboard
 * appends none) was logged `event stream entry is not an event; skipped` by each reader (GET
 * /events, a feed's replay, the live tail) with nothing saying what to do: they now say what wrote
 * it and what to do.
 */
import { afterAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { inProcessApi } from '../support/api.ts';
import { capturedLogger } from '../support/log-capture.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'observe-internal';
const FOREIGN = 'observe-foreign';
const { logger, lines } = capturedLogger('warn');
const api = inProcessApi([WS, FOREIGN], { logger });

let admin: RedisClient | undefined;
afterAll(() => admin?.disconnect());

it('a 500: the error line says what to do and names the request', async () => {
  await api.ok('POST', WS, '/agents', { id: 'a1', skills: ['s'] });
  admin = api.server.adminClient();
  // The agents' documents replaced by a value of another type, as a hand-written command would.
  await admin.set(workspaceKeys(WS).agents, 'damaged');
  const answer = await api.call('GET', `/v1/workspaces/${WS}/agents/a1`);
  expect(answer.status).toBe(500);
  const failed = await waitFor('the request failed line', () =>
    lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('request failed')),
  );
  expect(failed).toMatchObject({ level: 50, reqId: expect.any(String) });
  expect(failed.msg).toMatch(/report/i);
  expect(failed.msg).toMatch(/WRONGTYPE|damaged|changed by hand/);
});

it("an event stream entry that is no event: each reader's line says what to do", async () => {
  await api.ok('POST', FOREIGN, '/agents', { id: 'a1', skills: ['s'] });
  const base = api.running.url!.replace(/^http/, 'ws');
  const feed = new WebSocket(`${base}/v1/workspaces/${FOREIGN}/events/live`);
  await new Promise((resolve, reject) => feed.on('open', resolve).on('error', reject));
  admin ??= api.server.adminClient();
  const position = await admin.xadd(workspaceKeys(FOREIGN).events, '*', 'type', 'AgentUpdated', 'event', '{');
  expect((await api.call('GET', `/v1/workspaces/${FOREIGN}/events?after=0-0`)).status).toBe(200);
  const replay = new WebSocket(`${base}/v1/workspaces/${FOREIGN}/events/live?after=0-0`);
  await new Promise((resolve, reject) => replay.on('open', resolve).on('error', reject));
  const skipped = await waitFor('a line from each of the three readers', () => {
    const found = lines.filter(
      (l) =>
        typeof l.msg === 'string' &&
        l.msg.startsWith('event stream entry is not an event') &&
        l.position === position,
    );
    return found.length >= 3 ? found : undefined;
  });
  feed.close();
  replay.close();
  for (const l of skipped) {
    expect(l.level).toBe(40);
    expect(l.msg).toMatch(/Switchboard appends no such entry/);
    expect(l.msg).toMatch(/stop it/);
  }
});
