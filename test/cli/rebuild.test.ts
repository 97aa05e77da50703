/**
 * The rebuild: the whole command log re-projected with the production Lua in a shadow keyspace,
 * each decision replayed where it was made, and the state compared with the live one. A faithful
 * log rebuilds to the same state; a document, an index member or a decision that the log does not
 * explain is reported (and the command exits 1).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { rebuildWorkspace, shadowOf } from '../../src/cli/rebuild/rebuild.ts';
import { seededRandom } from '../../src/cli/sim/random.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { runCli } from './run-cli.ts';

const SKILLS = ['A', 'B', 'C', 'D'];

describe('rebuild', () => {
  const suite = suiteRedis();

  /** A workspace with a varied history: agents that change, contacts queued, routed, completed, abandoned. */
  async function history(ws: string): Promise<void> {
    const r = suite.redis;
    const rng = seededRandom(7);
    const pick = () => SKILLS.filter(() => rng() < 0.5).slice(0, 3);
    const skills = () => {
      const s = pick();
      return s.length > 0 ? s : ['A'];
    };
    await ensureGroup(r, ws);
    const send = async (commands: Command[]) => {
      for (const command of commands) await appendCommand(r, { workspace: ws, command });
    };
    await send(
      Array.from({ length: 12 }, (_, i) => ({
        type: 'RegisterAgent' as const,
        agentId: `a${i}`,
        skills: skills(),
        capacity: 1 + (i % 2),
      })),
    );
    let contact = 0;
    const assigned: string[] = [];
    for (let round = 0; round < 30; round++) {
      const commands: Command[] = [];
      for (let i = 0; i < 12; i++)
        if (rng() < 0.3)
          commands.push({
            type: 'ChangeAgentState',
            agentId: `a${i}`,
            state: rng() < 0.8 ? 'available' : 'away',
          });
      for (let i = 0; i < 6; i++)
        commands.push({
          type: 'QueueContact',
          contactId: `c${contact++}`,
          skills: skills(),
          priority: Math.floor(rng() * 3),
        });
      if (rng() < 0.3)
        commands.push({ type: 'AbandonContact', contactId: `c${Math.floor(rng() * contact)}` });
      if (rng() < 0.2)
        commands.push({ type: 'UpdateAgent', agentId: `a${Math.floor(rng() * 12)}`, skills: skills() });
      while (assigned.length > 0 && rng() < 0.7)
        commands.push({ type: 'CompleteContact', contactId: assigned.shift()! });
      await send(commands);
      // Projection and dispatch interleave as they would with the workers running.
      await projectPending(r, ws);
      const before = (await r.xrevrange(workspaceKeys(ws).events, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
      if (rng() < 0.8) await dispatchPending(r, ws);
      const made = (await r.xrange(workspaceKeys(ws).events, `(${before}`, '+')) as [string, string[]][];
      for (const [, f] of made)
        if (f[1] === 'AssignmentMade')
          assigned.push((JSON.parse(f[3]!) as { data: { contactId: string } }).data.contactId);
    }
  }

  it('rebuilds a faithful log to the live state, and leaves no shadow behind', async () => {
    const ws = `rebuild-${Date.now().toString(36)}`;
    await history(ws);
    const report = await rebuildWorkspace(suite.redis, ws);
    expect(report.differences).toEqual([]);
    expect(report.compared).toBe(true);
    expect(report.assignments).toBeGreaterThan(20);
    expect(report.commands).toBe(await suite.redis.xlen(workspaceKeys(ws).commands));
    // KEYS as the admin: the Switchboard user may not list the keyspace.
    const admin = suite.server.adminClient();
    expect(await admin.keys(`*{${shadowOf(ws)}}*`)).toEqual([]);
    admin.disconnect();

    const cli = await runCli('rebuild', ['--workspace', ws, '--redis-url', suite.server.url]);
    expect(cli.stdout).toContain('differences  0');
    expect(cli.code).toBe(0);
  });

  it('reports a document, an index member and a decision the log does not explain', async () => {
    const ws = `rebuild-bad-${Date.now().toString(36)}`;
    await history(ws);
    const k = workspaceKeys(ws);
    const contacts = await suite.redis.hgetall(k.contacts);
    const [id, text] = Object.entries(contacts).find(([, t]) => JSON.parse(t).state === 'queued')!;
    await suite.redis.hset(k.contacts, id, JSON.stringify({ ...JSON.parse(text), priority: 9 }));
    const [member] = await suite.redis.zrange(k.skillSetQueues, 0, 0);
    await suite.redis.zrem(k.skillSetQueues, member!);
    // An agent's id gone from the agent ids' index (marked whole: compared).
    await suite.redis.zrem(k.agentIds, 'a3');
    const report = await rebuildWorkspace(suite.redis, ws);
    expect(report.differences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'document', key: 'contacts', member: id }),
        expect.objectContaining({ kind: 'index', key: 'queues', member, live: null }),
        expect.objectContaining({ kind: 'index', key: 'agent-ids', member: 'a3', live: null, rebuilt: '0' }),
      ]),
    );
    // Unmarked (a workspace from before the index, not listed yet): not compared.
    await suite.redis.hdel(k.meta, 'agentIds');
    const unmarked = await rebuildWorkspace(suite.redis, ws);
    expect(unmarked.differences.filter((d) => d.key === 'agent-ids')).toEqual([]);
    await suite.redis.hset(k.meta, 'agentIds', '1');

    // An assignment appended by hand: no decision of the dispatcher makes it.
    await suite.redis.xadd(
      k.events,
      '*',
      'type',
      'AssignmentMade',
      'event',
      JSON.stringify({
        type: 'AssignmentMade',
        data: { contactId: 'nobody', agentId: 'a0', assignedAt: new Date().toISOString() },
        meta: { basedOn: await suite.redis.hget(k.meta, 'applied') },
      }),
    );
    const cli = await runCli('rebuild', ['--workspace', ws, '--redis-url', suite.server.url, '--json']);
    expect(cli.code).toBe(1);
    const json = JSON.parse(cli.stdout) as { differences: { kind: string; live: string }[] };
    expect(json.differences).toEqual(
      expect.arrayContaining([expect.objectContaining({ kind: 'decision', live: 'nobody->a0' })]),
    );
  });

  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('reads the log across the archive and the streams', async () => {
    const ws = `rebuild-archived-${Date.now().toString(36)}`;
    await history(ws);
    const k = workspaceKeys(ws);
    const total = await suite.redis.xlen(k.commands);
    const dir = await mkdtemp(path.join(tmpdir(), 'sb-rebuild-'));
    dirs.push(dir);
    const archive = new DiskArchive(dir);
    const archiver = new Archiver(suite.redis, archive, pino({ level: 'silent' }), {
      retention: { count: 20 },
      segmentEntries: 50,
      everyMs: 10,
    });
    await archiver.drain(ws);
    expect(await suite.redis.xlen(k.commands)).toBeLessThan(total);

    // Without the archive, the log starts in the middle: the rebuild cannot be the live state.
    const partial = await rebuildWorkspace(suite.redis, ws);
    expect(partial.differenceCount).toBeGreaterThan(0);

    const report = await rebuildWorkspace(suite.redis, ws, { archive });
    expect(report.differences).toEqual([]);
    expect(report.compared).toBe(true);
    expect(report.commands).toBe(total);

    const cli = await runCli('rebuild', [
      '--workspace',
      ws,
      '--redis-url',
      suite.server.url,
      '--archive-dir',
      dir,
    ]);
    expect(cli.stdout).toContain('differences  0');
    expect(cli.code).toBe(0);
  });
});
