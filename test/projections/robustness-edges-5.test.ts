/**
 * Two projector processes on one workspace (an API of its own, ROLES=api), and the consumer group
 * destroyed or moved, and the command stream deleted, by hand while they run: every request is
 * answered 201 (its outcome), and the auditor finds the workspace right.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECTOR_GROUP, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi } from '../support/api.ts';
import { killAllProcesses, startProcess } from '../support/processes.ts';

const WS = 'robust-5';
const api = inProcessApi([WS], { env: { ROLES: 'api', COMMAND_TIMEOUT_MS: '6000' } });

afterAll(killAllProcesses);

describe('two projectors, the group and the stream changed by hand', () => {
  it('every request answered 201; the log right', async () => {
    const env = { WORKSPACES: WS, DISCOVER_WORKSPACES: 'false', AUTH: 'off' };
    const projectors = await Promise.all(
      [1, 2].map((n) => startProcess({ roles: 'projector', redis: api.server, env, name: `projector ${n}` })),
    );
    const k = workspaceKeys(WS);
    const admin = api.server.adminClient();
    try {
      expect(
        (await api.call('POST', `/v1/workspaces/${WS}/agents`, { id: 'ana', skills: ['A'] })).status,
      ).toBe(201);
      const burst = async (from: number) => {
        const answers = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            api.call('POST', `/v1/workspaces/${WS}/contacts`, {
              id: `c${from + i}`,
              skills: ['A'],
              priority: 0,
            }),
          ),
        );
        return answers.map((a) => a.status);
      };
      expect(await burst(0)).toEqual(Array(20).fill(201));
      await admin.call('XGROUP', 'DESTROY', k.commands, PROJECTOR_GROUP);
      expect(await burst(100)).toEqual(Array(20).fill(201));
      await admin.call('XGROUP', 'SETID', k.commands, PROJECTOR_GROUP, '0').catch(() => undefined);
      expect(await burst(200)).toEqual(Array(20).fill(201));
      await admin.call('XGROUP', 'SETID', k.commands, PROJECTOR_GROUP, '$').catch(() => undefined);
      expect(await burst(300)).toEqual(Array(20).fill(201));
      const report = await auditWorkspace(api.running.redis, WS, { idle: true });
      expect(report.violations).toEqual([]);
      // The stream deleted (its group with it): the next commands are still applied.
      await admin.del(k.commands);
      expect(await burst(400)).toEqual(Array(20).fill(201));
      for (const p of projectors) expect(p.running, p.logText()).toBe(true);
    } finally {
      admin.disconnect();
    }
  }, 40_000);
});
