/**
 * `keys list` with a damaged key record in Redis (not JSON, or not a key's record): the other keys
 * are listed, and the damaged one is named on stderr with what is wrong and what to do, with no
 * stack trace.
 */
import { describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { suiteRedis } from '../support/redis.ts';
import { runCli } from './run-cli.ts';

describe('keys list with a damaged record', () => {
  const suite = suiteRedis();

  it('lists the sound keys and names the damaged records, without a stack', async () => {
    const ws = 'keys-damaged';
    const { info } = await createApiKey(suite.admin, { workspace: ws, role: 'supervisor', name: 'good' });
    await suite.admin.hset(
      workspaceKeys(ws).apiKeys,
      'deadbeefdeadbeef',
      '{"keyId":"deadbeef',
      'feedfacefeedface',
      '42',
    );
    const args = ['list', '--workspace', ws, '--redis-url', suite.server.url];
    const [table, json] = await Promise.all([runCli('keys', args), runCli('keys', [...args, '--json'])]);
    for (const run of [table, json]) {
      expect(run.stderr).not.toMatch(/\n\s+at /);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(
        /keys: key deadbeefdeadbeef of workspace "keys-damaged": its record is not JSON/,
      );
      expect(run.stderr).toMatch(
        /keys: key feedfacefeedface of workspace "keys-damaged": its record is not a key's record/,
      );
      expect(run.stderr).toMatch(
        /delete the record \(redis-cli HDEL sb:\{keys-damaged\}:keys deadbeefdeadbeef\)/,
      );
    }
    expect(table.stdout).toContain(info.keyId);
    expect(table.stdout).not.toContain('deadbeefdeadbeef');
    const listed = JSON.parse(json.stdout) as { keys: { keyId: string }[]; damaged: { keyId: string }[] };
    expect(listed.keys.map((k) => k.keyId)).toEqual([info.keyId]);
    expect(listed.damaged.map((k) => k.keyId).sort()).toEqual(['deadbeefdeadbeef', 'feedfacefeedface']);
  });
});
