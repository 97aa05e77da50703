/**
 * Lua compares strings by the collation redis-server takes from its environment (LC_COLLATE):
 * byte order only in the C locales. Ids sort by bytes in Redis's sorted sets and in rule 1, so a
 * Redis started under en_US.UTF-8 (where "a" sorts before "B") must route as one started under C.
 * The server here runs under en_US.UTF-8, built with localedef into a temp dir (Debian's locales
 * package has the sources; the test command installs it when missing).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { readEvents } from '../../src/adapters/redis/event-log.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup } from '../../src/projections/projector.ts';
import { type RedisServerHandle, startRedisServer } from '../../src/topology/redis-server.ts';
import { agingSettings, appendAt, assignedPairs } from '../support/positions.ts';

const SOURCES = '/usr/share/i18n/locales/en_US';

describe('routing under a redis-server whose locale does not collate by bytes', () => {
  let dir: string;
  let server: RedisServerHandle;
  let redis: RedisClient;
  let n = 0;

  beforeAll(async () => {
    if (!existsSync(SOURCES))
      throw new Error(`${SOURCES} is missing: install Debian's locales package (npm test does, as root)`);
    dir = mkdtempSync(path.join(tmpdir(), 'sb-locale-'));
    mkdirSync(path.join(dir, 'locales'));
    execFileSync('localedef', ['-i', 'en_US', '-f', 'UTF-8', path.join(dir, 'locales', 'en_US.UTF-8')]);
    server = await startRedisServer({ env: { LOCPATH: path.join(dir, 'locales'), LC_ALL: 'en_US.UTF-8' } });
    redis = connectRedis({ url: server.url });
  }, 60_000);

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const at = (workspace: string, entries: [string, Command][]) => appendAt(redis, workspace, entries);
  const assigned = (workspace: string) => assignedPairs(redis, workspace);

  it("the server's Lua collates by the locale (else this suite would prove nothing)", async () => {
    expect(await redis.eval("return ('B' < 'a') and 1 or 0", 0)).toBe(0);
  });

  it('two agents available since the same millisecond: the lower id in byte order ("B") is the longest available', async () => {
    const ws = `collation-${++n}-${Date.now().toString(36)}`;
    await ensureGroup(redis, ws);
    const t0 = Date.now() - 60_000;
    await at(ws, [
      [`${t0}-0`, { type: 'RegisterAgent', agentId: 'a', skills: ['x'], capacity: 1 } as Command],
      [`${t0}-1`, { type: 'RegisterAgent', agentId: 'B', skills: ['x'], capacity: 1 } as Command],
      // The same millisecond: the same available-since; "a" joins the pool first.
      [`${t0 + 1}-0`, { type: 'ChangeAgentState', agentId: 'a', state: 'available' } as Command],
      [`${t0 + 1}-1`, { type: 'ChangeAgentState', agentId: 'B', state: 'available' } as Command],
      [`${t0 + 2}-0`, { type: 'QueueContact', contactId: 'c1', skills: ['x'], priority: 0 } as Command],
    ]);
    expect(await dispatchPending(redis, ws)).toBe(1);
    expect(await assigned(ws)).toEqual(['c1->B']);
    expect((await auditWorkspace(redis, ws, { idle: true })).violations).toEqual([]);
  });

  it('skills and channels in byte order that the locale orders otherwise are applied, and route', async () => {
    const ws = `collation-${++n}-${Date.now().toString(36)}`;
    await ensureGroup(redis, ws);
    // The API sends them in byte order; this locale puts "alpha" before "Zeta" and "a_" before "a1".
    expect(await redis.eval("return ('alpha' < 'Zeta' and 'a_' < 'a1') and 1 or 0", 0)).toBe(1);
    const t0 = Date.now() - 60_000;
    await at(ws, [
      [
        `${t0}-0`,
        {
          type: 'ChangeSettings',
          offerTimeoutMs: 0,
          wrapUpMs: 0,
          missedOfferPresence: 'away',
          maxWaitMs: null,
          channels: ['a1', 'a_', 'voice'],
        } as Command,
      ],
      [
        `${t0 + 1}-0`,
        { type: 'RegisterAgent', agentId: 'ag', skills: ['Zeta', 'alpha'], capacity: 1 } as Command,
      ],
      [`${t0 + 2}-0`, { type: 'ChangeAgentState', agentId: 'ag', state: 'available' } as Command],
      [
        `${t0 + 3}-0`,
        {
          type: 'QueueContact',
          contactId: 'c1',
          skills: ['Zeta', 'alpha'],
          priority: 0,
          channel: 'a_',
        } as Command,
      ],
    ]);
    const rejected = await readEvents(redis, ws, { limit: 10, types: new Set(['CommandRejected']) });
    expect(rejected.events.map((e) => e.data)).toEqual([]);
    expect(await dispatchPending(redis, ws)).toBe(1);
    expect(await assigned(ws)).toEqual(['c1->ag']);
    expect((await auditWorkspace(redis, ws, { idle: true })).violations).toEqual([]);
  });

  it('priority aging, keys tied across queues: the lower contact id in byte order ("B") goes first', async () => {
    const ws = `collation-${++n}-${Date.now().toString(36)}`;
    await ensureGroup(redis, ws);
    const t0 = Date.now() - 60_000;
    const settings = agingSettings;
    // As in aged-tie.test.ts: weight 2 ms, then 1 ms 9 ms later, so the two keys are equal.
    await at(ws, [
      [`${t0}-0`, settings(2)],
      [
        `${t0 + 1}-0`,
        { type: 'RegisterAgent', agentId: 'agent', skills: ['x', 'y'], capacity: 1 } as Command,
      ],
      [`${t0 + 10}-0`, { type: 'QueueContact', contactId: 'a', skills: ['x'], priority: 0 } as Command],
      [`${t0 + 11}-0`, settings(1)],
      [`${t0 + 19}-0`, { type: 'QueueContact', contactId: 'B', skills: ['y'], priority: 0 } as Command],
    ]);
    expect(await dispatchPending(redis, ws)).toBe(0);
    await at(ws, [
      [`${t0 + 30}-0`, { type: 'ChangeAgentState', agentId: 'agent', state: 'available' } as Command],
    ]);
    expect(await dispatchPending(redis, ws)).toBe(1);
    expect(await assigned(ws)).toEqual(['B->agent']);
    expect((await auditWorkspace(redis, ws, { idle: true })).violations).toEqual([]);
  });
});
