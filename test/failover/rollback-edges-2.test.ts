/**
 * Redis comes back with less than it acknowledged, and the lost entries' positions are later than
 * those the Redis that comes back makes (a failover to a host whose clock is behind the lost
 * primary's). An API process and a projector-and-dispatcher process run apart. What a user saw:
 * the projector remembered the lost checkpoint and took every command appended after the loss,
 * its position below that checkpoint, for one applied already: none was applied (every command a
 * 202, for as long as the clocks differed). Now a reconnection forgets what the projector
 * remembered, and the commands are applied; the log audits clean. API keys follow the snapshot,
 * as documented (docs/DEPLOYMENT.md, Durability): one made after it is unknown, one revoked after
 * it opens again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, revokeApiKey } from '../../src/adapters/redis/api-keys.ts';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { type RedisServerHandle, startRedisServer } from '../../src/topology/redis-server.ts';
import { killAllProcesses, type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'rollbackahead';

describe('Redis restarted from an older snapshot whose lost entries lie ahead of its clock', () => {
  let dir: string;
  let server: RedisServerHandle;
  let redis: RedisClient;
  let api: SwitchboardProcess;
  let workers: SwitchboardProcess;
  let admin = '';
  const auth = (key: string) => ({ authorization: `Bearer ${key}` });

  const send = async (p: string, body: unknown, key: string) => {
    const r = await fetch(`${api.url}/v1/workspaces/${WS}${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key, ...auth(admin) },
      body: JSON.stringify(body),
    });
    return r.status;
  };
  const agentStatus = async (id: string, key = admin) =>
    (await fetch(`${api.url}/v1/workspaces/${WS}/agents/${id}`, { headers: auth(key) })).status;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-rollback-'));
    server = await startRedisServer({ dataDir: dir });
    redis = connectRedis({ url: server.url });
    admin = (await createApiKey(redis, { workspace: WS, role: 'admin' })).key;
    [api, workers] = await Promise.all([
      startProcess({ roles: 'api', redisUrl: server.url, env: { AUTH: 'on', RATE_LIMIT: 'off' } }),
      startProcess({ roles: 'projector,dispatcher', redisUrl: server.url }),
    ]);
  }, 30_000);

  afterAll(async () => {
    await killAllProcesses();
    redis?.disconnect();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies the commands appended after the loss', async () => {
    expect(await send('/agents', { id: 'a1', skills: ['English'] }, 'reg-a1')).toBe(201);
    const revoked = await createApiKey(redis, { workspace: WS, role: 'admin' });
    await redis.save(); // Point A.
    await revokeApiKey(redis, WS, revoked.info.keyId);
    const made = (await createApiKey(redis, { workspace: WS, role: 'admin' })).key;
    await waitFor('the revocation seen', async () =>
      (await agentStatus('a1', revoked.key)) === 401 ? true : undefined,
    );
    expect(await agentStatus('a1', made)).toBe(200);

    // After A, from the primary whose clock runs ahead: applied, then lost.
    const ahead = `${Date.now() + 120_000}-0`;
    const command = { type: 'RegisterAgent', agentId: 'lost', skills: ['English'], capacity: 1 };
    await redis.xadd(
      workspaceKeys(WS).commands,
      ahead,
      'type',
      'RegisterAgent',
      'commandId',
      'lost-1',
      'command',
      JSON.stringify(command),
    );
    await waitFor('the lost command applied', async () =>
      (await agentStatus('lost')) === 200 ? true : undefined,
    );

    server.kill('SIGKILL');
    await new Promise((r) => server.process.once('exit', r));
    server = await startRedisServer({ dataDir: dir, port: server.port });
    expect(await agentStatus('lost')).toBe(404);
    // The keys as they were at A.
    await waitFor('the key revoked after A opens again', async () =>
      (await agentStatus('a1', revoked.key)) === 200 ? true : undefined,
    );
    // Each key's check is cached on its own: the one made after A is refused once its own entry is
    // read again (a loaded machine read the first before the second).
    await waitFor('the key made after A unknown', async () =>
      (await agentStatus('a1', made)) === 401 ? true : undefined,
    );

    let last = 0;
    await waitFor(
      () => `a2 registered after the loss (last answer ${last})\n${workers.logText()}`,
      async () => {
        last = await send('/agents', { id: 'a2', skills: ['English'] }, 'reg-a2').catch(() => 0);
        return last === 201 ? true : undefined;
      },
      { timeoutMs: 15_000, everyMs: 250 },
    );
    // And the next ones, read by the projector's loop as they come.
    for (const id of ['a3', 'a4', 'a5']) {
      const status = await send('/agents', { id, skills: ['English'] }, `reg-${id}`);
      expect(status, `${id}\n${workers.logText()}`).toBe(201);
    }
    const report = await auditWorkspace(redis, WS, { idle: true });
    expect(report.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
    expect(report.pendingCommands).toBe(0);
  }, 60_000);
});
