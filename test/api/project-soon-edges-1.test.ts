/**
 * A tick of many commands sent to an API with the projector role: each tick step appended the whole
 * tick's commands (up to PROJECT_BATCH, which may be 5,000) before applying any, so a large tick
 * held Redis, and every workspace on it, for the appends alone (1,000 keyed commands: about 7 ms),
 * past the step's budget. With a step budget, a tick step appends at most TICK_APPENDS (32)
 * commands, and the steps for the rest follow right behind; every command is still applied once
 * and answered.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { TICK_APPENDS } from '../../src/app/composition-root.ts';
import { inProcessApi } from '../support/api.ts';
import { commandsDuring } from '../support/slowlog.ts';

const WS = 'api-tick-appends';
const api = inProcessApi([WS], {
  env: { ROLES: 'api,projector', PROJECT_BATCH: '2000', COMMAND_TIMEOUT_MS: '10000' },
});

describe("a tick's appends", () => {
  it('appends at most TICK_APPENDS commands a step, and applies and answers each command once', async () => {
    const admin = api.server.adminClient();
    try {
      const stream = workspaceKeys(WS).commands;
      const app = api.running.api!;
      const n = 600;
      const { result: answers, calls } = await commandsDuring(admin, () =>
        Promise.all(
          Array.from({ length: n }, (_, i) =>
            app.inject({
              method: 'POST',
              url: `/v1/workspaces/${WS}/contacts`,
              payload: { id: `t${i}`, skills: ['k'] },
              headers: { 'idempotency-key': `tick-${i}` },
            }),
          ),
        ),
      );
      expect(answers.map((a) => a.statusCode)).toEqual(Array(n).fill(201));
      // The commands each step ran are logged before it: count the appends to the stream per step.
      const perStep: number[] = [];
      let appended = 0;
      for (const args of calls) {
        const name = (args[0] ?? '').toLowerCase();
        if (name === 'xadd' && args[1] === stream) appended++;
        else if (name === 'fcall' || name === 'evalsha') {
          if (appended > 0) perStep.push(appended);
          appended = 0;
        }
      }
      expect(perStep.reduce((a, b) => a + b, 0)).toBe(n);
      expect(Math.max(...perStep), `appends per step: ${perStep.join(', ')}`).toBeLessThanOrEqual(
        TICK_APPENDS,
      );
      expect(await api.running.redis.xlen(stream)).toBe(n);
      expect(await api.running.redis.zcard(workspaceKeys(WS).queue)).toBe(n);
    } finally {
      admin.disconnect();
    }
  });
});
