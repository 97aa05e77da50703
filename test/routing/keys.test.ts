import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { globalKeys, KEY_ROOT, type WorkspaceKeys, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { loadLua, type RedisClient } from '../../src/adapters/redis/scripts.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

// cluster-key-slot (a dependency of ioredis) ships no types: it is CRC16 of the hash tag mod 16384.
const calculateSlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

const includesDir = new URL('../../src/adapters/redis/lua/includes/', import.meta.url);
const keysLua = readFileSync(new URL('keys.lua', includesDir), 'utf8');

/** Every per-document / per-skill key builder: its keys.ts name, its Lua name, and sample arguments. */
const DERIVED: readonly { ts: keyof WorkspaceKeys; lua: string }[] = [
  { ts: 'agent', lua: 'k_agent' },
  { ts: 'contact', lua: 'k_contact' },
  { ts: 'availability', lua: 'k_avail' },
  { ts: 'skillSetQueue', lua: 'k_skillset_queue' },
  { ts: 'idempotency', lua: 'k_idempotency' },
];
const SAMPLES = ['a1', 'agent:with:colons', 'English', 'English,Support', 'x.y_z-9', 'k'.repeat(128)];

/** The fixed (non-derived) keys of a workspace, as keys.ts builds them. */
function fixedKeys(k: WorkspaceKeys): string[] {
  return Object.entries(k)
    .filter(([name, v]) => typeof v === 'string' && name !== 'workspace' && name !== 'prefix')
    .map(([, v]) => v as string);
}

function allKeys(ws: string): string[] {
  const k = workspaceKeys(ws);
  const derived = DERIVED.flatMap(({ ts }) => SAMPLES.map((s) => (k[ts] as (x: string) => string)(s)));
  return [...fixedKeys(k), ...derived, globalKeys.leases(ws)];
}

/** The hash tag Redis Cluster hashes: between the first '{' and the first '}' after it, if non-empty. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

describe('key spelling, Lua and TypeScript', () => {
  let server: TestRedis;
  let redis: RedisClient;
  let dir: string;

  beforeAll(async () => {
    server = await startTestRedis();
    redis = connectRedis({ url: server.url });
    dir = mkdtempSync(path.join(tmpdir(), 'sb-keys-test-'));
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keys.lua defines exactly the derived key builders keys.ts has', () => {
    const defined = [...keysLua.matchAll(/^local function (k_[a-z_]+)\(/gm)].map((m) => m[1]);
    expect(defined.sort()).toEqual(DERIVED.map((d) => d.lua).sort());
    // Every function-valued member of WorkspaceKeys is covered.
    const tsBuilders = Object.entries(workspaceKeys('w'))
      .filter(([, v]) => typeof v === 'function')
      .map(([name]) => name);
    expect(tsBuilders.sort()).toEqual(DERIVED.map((d) => d.ts as string).sort());
  });

  it('the Lua builders, run in Redis, spell every key as keys.ts does', async () => {
    // A tiny script inlining the include the way the real steps do (loadLua).
    const file = path.join(dir, 'probe-0.lua');
    writeFileSync(
      file,
      [
        '--@include "keys"',
        'local out = {}',
        'for i = 2, #ARGV do',
        `  ${DERIVED.map((d) => `out[#out + 1] = ${d.lua}(ARGV[i])`).join('\n  ')}`,
        'end',
        'return out',
        '',
      ].join('\n'),
    );
    const lua = loadLua(pathToFileURL(file));
    expect(lua).toContain('local function k_agent(');
    for (const ws of ['w', 'team_1-eu', 'W'.repeat(64)]) {
      const k = workspaceKeys(ws);
      const fromLua = (await redis.eval(lua, 0, k.prefix, ...SAMPLES)) as string[];
      const fromTs = SAMPLES.flatMap((s) => DERIVED.map(({ ts }) => (k[ts] as (x: string) => string)(s)));
      expect(fromLua).toEqual(fromTs);
    }
  });

  it('every key of a workspace carries the hash tag {<workspace>} and maps to one slot', () => {
    for (const ws of ['w', 'acme', 'team_1-eu', 'Z-9_z', 'W'.repeat(64)]) {
      const slot = calculateSlot(`{${ws}}`);
      for (const key of allKeys(ws)) {
        expect(key.startsWith(`${KEY_ROOT}:`)).toBe(true);
        expect(key).toContain(`{${ws}}`);
        expect(hashTag(key)).toBe(ws);
        expect(calculateSlot(key)).toBe(slot);
      }
    }
    // Different workspaces spread over slots.
    const slots = new Set(
      Array.from({ length: 50 }, (_, i) => calculateSlot(workspaceKeys(`ws${i}`).commands)),
    );
    expect(slots.size).toBeGreaterThan(40);
  });

  it('every key the Lua steps create for a workspace is in its slot', async () => {
    const ws = `slotcheck-${Date.now().toString(36)}`;
    await ensureGroup(redis, ws);
    const cmds: Command[] = [
      { type: 'RegisterAgent', agentId: 'a:1', skills: ['English', 'Support'], capacity: 2 },
      { type: 'RegisterAgent', agentId: 'a2', skills: ['Spanish'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'a:1', state: 'available' },
      { type: 'QueueContact', contactId: 'c1', skills: ['English', 'Support'], priority: 2 },
      { type: 'QueueContact', contactId: 'c2', skills: ['Spanish'], priority: 0 },
      { type: 'QueueContact', contactId: 'c3', skills: ['Billing'], priority: 0 },
    ];
    for (const [i, command] of cmds.entries()) {
      await appendCommand(redis, { workspace: ws, command, idempotencyKey: `key-${i}` });
      await projectPending(redis, ws);
      await dispatchPending(redis, ws);
    }
    const keys = (await redis.keys(`*${ws}*`)).sort();
    // Documents, availability sets, skill-set queues and idempotency records all exist.
    const k = workspaceKeys(ws);
    for (const expected of [
      k.agent('a:1'),
      k.contact('c1'),
      k.availability('English'),
      k.skillSetQueue('Billing'),
      k.idempotency('key-0'),
      k.commands,
      k.events,
      k.meta,
    ])
      expect(keys).toContain(expected);
    const slot = calculateSlot(`{${ws}}`);
    for (const key of keys) {
      expect(key.startsWith(k.prefix), key).toBe(true);
      expect(calculateSlot(key), key).toBe(slot);
    }
  });
});
