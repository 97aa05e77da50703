/**
 * A request that fails for a reason Switchboard does not know (a fault of its own, or a key of the
 * workspace damaged by hand) is answered 500 `/problems/internal` and logged at error as `request
 * failed`, with nothing saying what to do: every other error line does. The line now says it is
 * a defect to report (or damaged data to check), with the request id to report it under.
 */
import { afterAll, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { inProcessApi } from '../support/api.ts';
import { capturedLogger } from '../support/log-capture.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'observe-internal';
const { logger, lines } = capturedLogger('warn');
const api = inProcessApi([WS], { logger });

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
