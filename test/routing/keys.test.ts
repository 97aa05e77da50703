import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { KEY_ROOT, type WorkspaceKeys, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { declaredScripts } from '../../src/adapters/redis/scripts.ts';
import '../../src/dispatcher/leases.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

// cluster-key-slot ships no types: it is CRC16 of the hash tag mod 16384, as Redis Cluster computes.
const calculateSlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

/** Every key of a workspace, as keys.ts builds them. */
function workspaceKeyList(k: WorkspaceKeys): string[] {
  return Object.entries(k)
    .filter(([name, v]) => typeof v === 'string' && name !== 'workspace' && name !== 'prefix')
    .map(([, v]) => v as string);
}

const src = fileURLToPath(new URL('../../src/', import.meta.url));

function luaFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? luaFiles(path.join(dir, e.name))
      : e.name.endsWith('.lua')
        ? [path.join(dir, e.name)]
        : [],
  );
}

describe('every key of a workspace is declared and in one slot', () => {
  const suite = suiteRedis();

  it('puts every key of a workspace in the slot of its hash tag', () => {
    for (const ws of ['default', 'acme', 'w-1', 'x'.repeat(64)]) {
      const keys = workspaceKeyList(workspaceKeys(ws));
      expect(keys.length).toBeGreaterThan(10);
      for (const key of keys) {
        expect(key.startsWith(`${KEY_ROOT}:{${ws}}:`)).toBe(true);
        expect(calculateSlot(key)).toBe(calculateSlot(`{${ws}}`));
      }
    }
  });

  it('builds no key inside Lua: scripts only use the keys they are given', () => {
    for (const file of luaFiles(src)) {
      const code = readFileSync(file, 'utf8').replace(/--\[\[[\s\S]*?\]\]/g, '');
      // The workspace prefix (ARGV[1]) is never concatenated into a key name.
      expect(code, file).not.toMatch(/ARGV\[1\]\s*\.\./);
      expect(code, file).not.toMatch(/\bP\s*\.\./);
    }
    // Each script's file name states its number of keys, and its header documents each of them.
    expect(declaredScripts.length).toBeGreaterThanOrEqual(5);
    for (const s of declaredScripts) {
      if (s.keys === 'any') continue;
      const text = readFileSync(s.file, 'utf8');
      for (let i = 1; i <= s.keys; i++)
        expect(text, `${s.file.pathname} KEYS[${i}]`).toMatch(new RegExp(`KEYS\\[${i}\\]`));
      expect(text).not.toMatch(new RegExp(`KEYS\\[${s.keys + 1}\\]`));
    }
  });

  it('leaves only declared keys in Redis after every kind of command and decision', async () => {
    const ws = `declared-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    const commands: Command[] = [
      { type: 'RegisterAgent', agentId: 'a:1', skills: ['English', 'Support'], capacity: 2, name: 'Ann' },
      { type: 'RegisterAgent', agentId: 'b.2', skills: ['Spanish'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'a:1', state: 'available' },
      { type: 'ChangeAgentState', agentId: 'b.2', state: 'available' },
      {
        type: 'QueueContact',
        contactId: 'c1',
        skills: ['English', 'Support'],
        priority: 3,
        attributes: { x: [] },
      },
      { type: 'QueueContact', contactId: 'c2', skills: ['Billing'], priority: 0 },
      { type: 'QueueContact', contactId: 'c3', skills: ['Spanish'], priority: 9 },
      { type: 'UpdateAgent', agentId: 'a:1', skills: ['Billing', 'English'] },
      { type: 'CompleteContact', contactId: 'c1' },
      { type: 'AbandonContact', contactId: 'c2' },
      { type: 'QueueContact', contactId: 'c4', skills: ['English'], priority: 1 },
      { type: 'ChangeAgentState', agentId: 'b.2', state: 'away' },
      { type: 'RemoveAgent', agentId: 'nobody' },
      { type: 'RegisterAgent', agentId: 'd', skills: ['Disputes'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'd', state: 'available' },
      { type: 'QueueContact', contactId: 'c5', skills: ['French'], priority: 0 },
    ];
    let i = 0;
    for (const command of commands) {
      await appendCommand(suite.redis, { workspace: ws, command, idempotencyKey: `key-${i++}` });
      await projectPending(suite.redis, ws);
      await dispatchPending(suite.redis, ws);
    }
    const k = workspaceKeys(ws);
    const declared = new Set(workspaceKeyList(k));
    const found = new Set<string>();
    // SCAN as the admin: Switchboard's user may not list the keyspace.
    for (const client of 'nodes' in suite.admin ? suite.admin.nodes('master') : [suite.admin]) {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${k.prefix}*`, 'COUNT', 1000);
        for (const key of keys) found.add(key);
        cursor = next;
      } while (cursor !== '0');
    }
    expect([...found].filter((key) => !declared.has(key))).toEqual([]);
    // The scenario did reach the keys that replace per-document and per-skill keys.
    for (const key of [
      k.agents,
      k.contacts,
      k.pools,
      k.poolHeads,
      k.agentSkillSets,
      k.skillSetQueues,
      k.queueHeads,
      k.idempotency,
      k.events,
    ]) {
      expect(found.has(key), key).toBe(true);
    }
  });
});
