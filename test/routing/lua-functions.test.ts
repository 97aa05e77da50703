/**
 * The projector's and dispatcher's steps as Redis Functions (src/adapters/redis/scripts.ts): the
 * library defines their code once, where a script defines it on every call. What must hold: a step
 * decides and writes exactly what the same step run as a script does, including when calls for
 * other workspaces run in between (what the library's top level holds outlives a call); a library
 * that is gone is loaded again without a step failing; without FUNCTION LOAD in the ACL, steps stay
 * scripts. A real Redis (or cluster) and the real steps.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { APP_ACL_RULES } from '../../src/adapters/redis/acl.ts';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { declaredScripts, type RedisClient, useLuaFunctions } from '../../src/adapters/redis/scripts.ts';
import { commandCalls, masters } from '../../src/cli/bench/redis-time.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

async function libraries(admin: RedisClient): Promise<string[][]> {
  return Promise.all(
    masters(admin).map(async (n) => {
      const list = (await n.call('FUNCTION', 'LIST')) as unknown[][];
      return list.map((lib) => String(lib[1])).sort();
    }),
  );
}

const fcalls = (admin: RedisClient) => commandCalls(admin, 'fcall');

/** Commands that go through most of the projector's handlers and the dispatcher's paths. */
function scenario(): Command[][] {
  const agent = (id: string, skills: string[], capacity = 1): Command[] => [
    { type: 'RegisterAgent', agentId: id, skills, capacity },
    { type: 'ChangeAgentState', agentId: id, state: 'available' },
  ];
  const contact = (id: string, skills: string[], priority = 0): Command => ({
    type: 'QueueContact',
    contactId: id,
    skills,
    priority,
  });
  return [
    [...agent('ann', ['English', 'Sales']), ...agent('bob', ['English'], 2), ...agent('cy', ['Spanish'])],
    [contact('c1', ['English']), contact('c2', ['English', 'Sales'], 2), contact('c3', ['Spanish'])],
    [contact('c4', ['English'], 1), contact('c5', ['English']), contact('c6', ['English', 'Sales'])],
    [
      { type: 'CompleteContact', contactId: 'c2' },
      { type: 'AbandonContact', contactId: 'c6' },
    ],
    [
      {
        type: 'ChangeSettings',
        offerTimeoutMs: 60_000,
        wrapUpMs: 0,
        missedOfferPresence: 'away',
        maxWaitMs: null,
      },
      { type: 'CompleteContact', contactId: 'c1' },
      { type: 'CompleteContact', contactId: 'c3' },
    ],
    [
      contact('c7', ['Spanish']),
      contact('c8', ['English'], 3),
      { type: 'TransferContact', contactId: 'c4', skills: ['Spanish'] },
    ],
    [
      { type: 'AcceptOffer', contactId: 'c4', agentId: 'cy' },
      { type: 'RejectOffer', contactId: 'c8', agentId: 'bob' },
      { type: 'ChangeAgentState', agentId: 'bob', state: 'available' },
      { type: 'RemoveAgent', agentId: 'nobody' },
    ],
    [
      { type: 'CompleteContact', contactId: 'c4' },
      { type: 'CompleteContact', contactId: 'c5' },
    ],
  ];
}

/** What a workspace decided and holds, without the times and positions that differ run to run. */
async function outcome(redis: RedisClient, ws: string): Promise<unknown> {
  const k = workspaceKeys(ws);
  const events = (await redis.xrange(k.events, '-', '+')) as [string, string[]][];
  const facts = events.map(([, f]) => {
    const e = JSON.parse(f[f.indexOf('event') + 1]!) as { type: string; data: Record<string, unknown> };
    const d = e.data;
    return [e.type, d.contactId ?? d.id ?? d.agentId, d.agentId ?? d.state ?? d.status ?? null];
  });
  const docs = async (key: string) =>
    Object.fromEntries(
      Object.entries(await redis.hgetall(key)).map(([id, text]) => {
        const d = JSON.parse(text) as Record<string, unknown>;
        return [id, [d.state, d.presence, d.agentId, d.activeContacts, d.skills]];
      }),
    );
  return {
    facts,
    agents: await docs(k.agents),
    contacts: await docs(k.contacts),
    queued: await redis.zcard(k.queue),
    stats: await redis.hgetall(k.stats),
  };
}

describe('steps as Redis Functions', () => {
  const suite = suiteRedis();
  afterEach(() => useLuaFunctions(true));

  it('decide and write what the same steps run as scripts do, with other workspaces’ calls in between', async () => {
    const run = `${Date.now().toString(36)}`;
    const asFunctions = [`fa-${run}`, `fb-${run}`];
    const asScripts = `sc-${run}`;
    for (const ws of [...asFunctions, asScripts]) await ensureGroup(suite.redis, ws);
    // Each batch goes to every workspace in turn, one step each: the functions' calls for one
    // workspace run between the other's, as on a Redis serving many.
    for (const batch of scenario()) {
      for (const ws of [...asFunctions, asScripts]) {
        useLuaFunctions(ws !== asScripts);
        for (const command of batch) await appendCommand(suite.redis, { workspace: ws, command });
        await projectPending(suite.redis, ws);
        await dispatchPending(suite.redis, ws);
      }
    }
    useLuaFunctions(true);
    const expected = await outcome(suite.redis, asScripts);
    const kinds = new Set((expected as { facts: string[][] }).facts.map((f) => f[0]));
    for (const kind of ['AssignmentMade', 'AssignmentAccepted', 'AssignmentRejected', 'ContactTransferred'])
      expect(kinds).toContain(kind);
    for (const kind of ['ContactAbandoned', 'ContactCompleted', 'SettingsChanged', 'CommandRejected'])
      expect(kinds).toContain(kind);
    for (const ws of asFunctions) expect(await outcome(suite.redis, ws)).toEqual(expected);
    // They did run as functions: the library is on every master, and FCALL was called.
    const project = declaredScripts.find((s) => s.command.startsWith('sb_project_'))!;
    const dispatch = declaredScripts.find((s) => s.command.startsWith('sb_dispatch_'))!;
    for (const libs of await libraries(suite.admin))
      expect(libs).toEqual(expect.arrayContaining([project.command, dispatch.command]));
    expect(await fcalls(suite.admin)).toBeGreaterThan(10);
  });

  it('loads a library again when it is gone, and no step fails meanwhile', async () => {
    const ws = `gone-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    const step = async (n: number) => {
      await appendCommand(suite.redis, {
        workspace: ws,
        command: { type: 'RegisterAgent', agentId: `a${n}`, skills: ['X'], capacity: 1 },
      });
      return projectPending(suite.redis, ws);
    };
    await step(0);
    await step(1);
    for (const m of masters(suite.admin)) await m.call('FUNCTION', 'FLUSH');
    expect((await libraries(suite.admin)).flat()).toEqual([]);
    // Each of these applies its command: the first finds no function and runs as a script.
    for (let n = 2; n < 8; n++) expect(await step(n)).toBe(1);
    const before = await fcalls(suite.admin);
    for (let n = 8; n < 12; n++) expect(await step(n)).toBe(1);
    expect(await fcalls(suite.admin)).toBeGreaterThan(before);
    expect(await suite.redis.hlen(workspaceKeys(ws).agents)).toBe(12);
  });

  it('stay scripts for a user whose ACL has no FUNCTION LOAD', async () => {
    const user = `nofn${Date.now().toString(36)}`;
    const password = 'pw-without-function-load';
    const rules = APP_ACL_RULES.filter((r) => r !== '+function|load');
    expect(rules.length).toBe(APP_ACL_RULES.length - 1);
    for (const m of masters(suite.admin)) {
      await m.call('ACL', 'SETUSER', user, 'on', `>${password}`, ...rules);
      await m.call('FUNCTION', 'FLUSH');
    }
    const limited =
      suite.server.target === 'cluster'
        ? connectRedis({
            clusterNodes: masters(suite.admin).map(
              (m) => `${user}:${password}@${m.options.host}:${m.options.port}`,
            ),
          })
        : (() => {
            const u = new URL(suite.server.url);
            u.username = user;
            u.password = password;
            return connectRedis({ url: u.toString() });
          })();
    try {
      const ws = `nofn-${Date.now().toString(36)}`;
      await ensureGroup(limited, ws);
      for (let n = 0; n < 6; n++) {
        await appendCommand(limited, {
          workspace: ws,
          command: { type: 'QueueContact', contactId: `c${n}`, skills: ['X'], priority: 0 },
        });
        expect(await projectPending(limited, ws)).toBe(1);
        await dispatchPending(limited, ws);
      }
      expect(await limited.zcard(workspaceKeys(ws).queue)).toBe(6);
      expect((await libraries(suite.admin)).flat()).toEqual([]);
    } finally {
      limited.disconnect();
      for (const m of masters(suite.admin)) await m.call('ACL', 'DELUSER', user);
    }
  });

  it('reset in `step` every top-level value a call changes (the library outlives its calls)', () => {
    // A file written as a function keeps each call's values in `step` or resets them there (or in
    // the *_reset and begin functions it calls); iso_ms/iso_text only cache a pure function.
    const persistent = new Set(['iso_ms', 'iso_text']);
    const functions = declaredScripts.filter((s) => s.library !== undefined);
    expect(functions.map((s) => s.command.replace(/_[0-9a-f]+$/, '')).sort()).toEqual([
      'sb_dispatch',
      'sb_project',
    ]);
    for (const s of functions) {
      // Comments out; a list that goes on over lines (after a comma) read as one line.
      const text = s.lua
        .replace(/--\[\[[\s\S]*?\]\]/g, '')
        .replace(/--[^\n]*/g, '')
        .replace(/,[ \t]*\n\s*/g, ', ');
      const lines = text.split('\n');
      const topLevel = new Set<string>();
      for (const l of lines) {
        const m = /^local (?!function)([\w, ]+?)\s*(=|$)/.exec(l);
        if (m) for (const n of m[1]!.split(',')) topLevel.add(n.trim());
      }
      const resetText = [
        ...text.matchAll(/\nlocal function (step|begin|\w+_reset)\(.*?\)\n([\s\S]*?)\nend\n/g),
      ]
        .map((m) => m[2])
        .join('\n');
      // Names assigned there (left of an `=` that is not `==`).
      const reset = new Set(
        [...resetText.matchAll(/^\s*([\w, ]+?)\s*=(?!=)/gm)].flatMap((m) =>
          m[1]!.split(',').map((n) => n.trim()),
        ),
      );
      const changedInCall = (name: string) =>
        lines.some(
          (l) =>
            /^\s+/.test(l) &&
            new RegExp(`(^|[^\\w.])${name}(\\s*,\\s*\\w+)*\\s*(\\[[^\\]]*\\]\\s*)?=(?!=)`).test(l),
        );
      const missing = [...topLevel].filter((n) => !persistent.has(n) && changedInCall(n) && !reset.has(n));
      expect(missing, `${s.file.pathname}: changed in a call, not reset in step`).toEqual([]);
      // The scan sees what it must: these are reset.
      expect(reset).toContain('K_META');
      expect([...topLevel].filter(changedInCall).length).toBeGreaterThan(3);
    }
    expect(readFileSync(functions[0]!.file, 'utf8')).toMatch(/\nreturn step\(KEYS, ARGV\)\s*$/);
  });

  it('runs a step as a script when functions are off, and as a function once loaded otherwise', async () => {
    const project = declaredScripts.find((s) => s.command.startsWith('sb_project_'))!;
    const fresh = suite.server.client();
    try {
      const ws = `mode-${Date.now().toString(36)}`;
      await ensureGroup(fresh, ws);
      useLuaFunctions(false);
      const before = await fcalls(suite.admin);
      for (let i = 0; i < 4; i++) await projectPending(fresh, ws);
      expect(await fcalls(suite.admin)).toBe(before);
      useLuaFunctions(true);
      for (let i = 0; i < 20 && (await fcalls(suite.admin)) === before; i++) await projectPending(fresh, ws);
      expect(await fcalls(suite.admin)).toBeGreaterThan(before);
      expect(project.library).toMatch(new RegExp(`^#!lua name=${project.command}\\n`));
    } finally {
      fresh.disconnect();
    }
  });
});
