/**
 * The projector's consumer group destroyed or moved by hand, and the command stream deleted, while
 * Switchboard runs: the next requests are answered (201/200 or 202), their commands apply, and the
 * auditor finds the workspace right.
 */
import { describe, expect, it } from 'vitest';
import { PROJECTOR_GROUP, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'robust-2';
const api = inProcessApi([WS], { env: { COMMAND_TIMEOUT_MS: '3000' } });

describe('the group or the stream changed by hand', () => {
  it('XGROUP DESTROY, SETID 0 and DEL of the command stream: requests still answered, state right before the DEL', async () => {
    const k = workspaceKeys(WS);
    const admin = api.server.adminClient();
    try {
      await api.ok('POST', WS, '/agents', { id: 'ana', skills: ['A'], capacity: 5 });
      const statuses: number[] = [];
      const queue = async (id: string) => {
        const a = await api.call('POST', `/v1/workspaces/${WS}/contacts`, { id, skills: ['A'], priority: 0 });
        statuses.push(a.status);
      };
      await admin.call('XGROUP', 'DESTROY', k.commands, PROJECTOR_GROUP);
      await queue('c1');
      await queue('c2');
      await admin.call('XGROUP', 'SETID', k.commands, PROJECTOR_GROUP, '0').catch(() => undefined);
      await queue('c3');
      await api.until(WS, '/contacts/c3', (v) => v.id === 'c3');
      // Before the stream is deleted (after that the log no longer holds the commands of its facts).
      const report = await auditWorkspace(api.running.redis, WS, { idle: true });
      expect(report.violations.map((v) => JSON.stringify(v).slice(0, 300))).toEqual([]);
      await admin.del(k.commands);
      await queue('c4');
      await queue('c5');
      expect(
        statuses.every((s) => s === 201 || s === 202),
        `statuses ${statuses}`,
      ).toBe(true);
      for (const id of ['c1', 'c2', 'c3', 'c4', 'c5'])
        await api.until(WS, `/contacts/${id}`, (v) => typeof v.id === 'string', 8000);
      expect(statuses).toEqual([201, 201, 201, 201, 201]);
    } finally {
      admin.disconnect();
    }
  });
});
