/**
 * A decision's `meta.basedOn` edited to a later command, one whose facts the log holds after the
 * decision. The audit reported it, but not where the log was changed: the commands between the
 * true basis and the new one as `missing` (at the commands), and their facts, further on, as
 * `duplicate` (at those facts), nothing at the decision. Now the decision is `unverifiable` at its
 * own position (the state it names is not the one the log had before it), and the facts that come
 * after it are held to their commands as any others. Facts removed instead are still `missing`.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace, WorkspaceAudit } from '../../src/audit/read.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { auditCli } from '../support/tamper.ts';

describe("a decision's basedOn moved", () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  let n = 0;

  /** Commands appended and projected, then one dispatch. */
  async function step(ws: string, commands: Command[]): Promise<void> {
    for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws);
    await dispatchPending(suite.redis, ws);
  }

  /** A contact assigned, then an agent who could have taken it registered and made available. */
  async function log(): Promise<{ ws: string; events: StreamEntry[]; commands: StreamEntry[] }> {
    const ws = `tamper-based-${run}-${++n}`;
    await ensureGroup(suite.redis, ws);
    await step(ws, [
      { type: 'RegisterAgent', agentId: 'a1', skills: ['Alpha'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'a1', state: 'available' },
      { type: 'QueueContact', contactId: 'c1', skills: ['Alpha'], priority: 0 },
    ]);
    await step(ws, [
      { type: 'RegisterAgent', agentId: 'a0', skills: ['Alpha'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'a0', state: 'available' },
      { type: 'QueueContact', contactId: 'c2', skills: ['Alpha'], priority: 0 },
    ]);
    expect((await auditWorkspace(suite.redis, ws, { idle: true })).violations).toEqual([]);
    const k = workspaceKeys(ws);
    return {
      ws,
      events: (await suite.redis.xrange(k.events, '-', '+')) as StreamEntry[],
      commands: (await suite.redis.xrange(k.commands, '-', '+')) as StreamEntry[],
    };
  }

  const violations = async (ws: string) =>
    (await auditWorkspace(suite.redis, ws)).violations.map((v) => `${v.kind} ${v.position}: ${v.message}`);

  it('reports the decision, at its position, and nothing else', async () => {
    const { ws, events, commands } = await log();
    const [position, fields] = events.find(([, f]) => f[1] === 'AssignmentMade')!;
    const env = JSON.parse(fields[3]!) as { meta: { basedOn: string } };
    // Based on the command that makes a0 available: a0 registered, available, c2 queued come after.
    const later = commands[4]![0];
    env.meta.basedOn = later;
    const key = workspaceKeys(ws).events;
    await suite.redis.del(key);
    for (const [id, f] of events)
      await suite.redis.xadd(
        key,
        id,
        ...(id === position ? ['type', 'AssignmentMade', 'event', JSON.stringify(env)] : f),
      );

    expect(await violations(ws)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^unverifiable ${position}: AssignmentMade c1->a1 cannot be re-checked: based on ${later}, yet the events of the command at ${commands[3]![0]} are not before it`,
        ),
      ),
    ]);
    const cli = await auditCli(['--workspace', ws, '--redis-url', suite.server.url, '--json']);
    expect(cli.code, cli.stderr).toBe(1);
    expect(cli.summary?.violations).toEqual([expect.objectContaining({ kind: 'unverifiable', position })]);
  });

  it('reports facts the decision was based on, removed, as missing, and the decision at its position', async () => {
    const { ws, events, commands } = await log();
    const decision = events.find(([, f]) => f[1] === 'AssignmentMade')![0];
    // c1's ContactQueued, which the decision read, gone.
    const queued = events.find(([, f]) => f[1] === 'ContactQueued')![0];
    await suite.redis.xdel(workspaceKeys(ws).events, queued);
    expect(await violations(ws)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^unverifiable ${decision}: AssignmentMade c1->a1 cannot be re-checked: .*the events of the command at ${commands[2]![0]} are not before it`,
        ),
      ),
      expect.stringMatching(
        new RegExp(`^missing ${commands[2]![0]}: QueueContact c1 .*: no ContactQueued in the event log$`),
      ),
      `missing ${queued}: entries deleted from the events stream other than by the archiver: 1 (XDEL, the latest at ${queued})`,
      'state ' + events.at(-1)![0] + ': counters (/stats): queued 2, the log 1',
    ]);
  });
});

describe('entries deleted from the streams by hand', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);

  it('reports commands and their facts deleted whole (XDEL), at the latest deleted position of each stream', async () => {
    const ws = `tamper-xdel-${run}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    const commands: Command[] = [
      { type: 'RegisterAgent', agentId: 'a1', skills: ['Alpha'], capacity: 1 },
      { type: 'RegisterAgent', agentId: 'gone', skills: ['Alpha'], capacity: 1 },
      { type: 'RemoveAgent', agentId: 'gone' },
      { type: 'ChangeAgentState', agentId: 'a1', state: 'available' },
    ];
    for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws);
    expect((await auditWorkspace(suite.redis, ws)).violations).toEqual([]);
    // An agent that came and went, wiped from the log: its commands, their facts and answers.
    const all = async (key: string) => (await suite.redis.xrange(key, '-', '+')) as StreamEntry[];
    const cmds = (await all(k.commands)).slice(1, 3).map(([id]) => id);
    const facts = (await all(k.events)).filter(([, f]) => f[3]!.includes('"gone"')).map(([id]) => id);
    const answers = (await all(k.outcomes))
      .filter(([, f]) => cmds.some((c) => f.includes(c)))
      .map(([id]) => id);
    expect([cmds.length, facts.length, answers.length]).toEqual([2, 2, 2]);
    await suite.redis.xdel(k.commands, ...cmds);
    await suite.redis.xdel(k.events, ...facts);
    await suite.redis.xdel(k.outcomes, ...answers);

    const found = (await auditWorkspace(suite.redis, ws)).violations.map((v) => [
      v.kind,
      v.stream,
      v.position,
    ]);
    expect(found).toEqual([
      ['missing', 'commands', cmds[1]],
      ['missing', 'events', facts[1]],
    ]);
    const cli = await auditCli(['--workspace', ws, '--redis-url', suite.server.url]);
    expect(cli.code, cli.stderr).toBe(1);
    expect(cli.stdout).toMatch(/entries deleted from the events stream/);
  });

  it("reports a stream cut at its start (XTRIM) that the archiver's mark does not count, at the first entry kept", async () => {
    const ws = `tamper-xtrim-${run}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    const commands: Command[] = [
      { type: 'RegisterAgent', agentId: 'a1', skills: ['Alpha'], capacity: 1 },
      { type: 'RegisterAgent', agentId: 'a2', skills: ['Alpha'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'a1', state: 'available' },
    ];
    for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws);
    const kept = ((await suite.redis.xrange(k.events, '-', '+')) as StreamEntry[])[1]![0];
    await suite.redis.xtrim(k.events, 'MINID', kept);
    const report = await auditWorkspace(suite.redis, ws);
    expect(report.violations).toContainEqual({
      kind: 'missing',
      stream: 'events',
      position: kept,
      message: 'entries deleted from the events stream other than by the archiver: 1 (XTRIM or XDEL)',
    });
  });

  it('a follower reports a deletion once, however the stream grows after it', async () => {
    const ws = `tamper-follow-${run}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    const send = async (command: Command) => {
      await appendCommand(suite.redis, { workspace: ws, command });
      await projectPending(suite.redis, ws);
    };
    await send({ type: 'RegisterAgent', agentId: 'a1', skills: ['Alpha'], capacity: 1 });
    await send({ type: 'RegisterAgent', agentId: 'a2', skills: ['Alpha'], capacity: 1 });
    const follower = new WorkspaceAudit(suite.redis, ws, { idle: true });
    expect((await follower.run()).violations).toEqual([]);
    const kept = ((await suite.redis.xrange(k.events, '-', '+')) as StreamEntry[])[1]![0];
    await suite.redis.xtrim(k.events, 'MINID', kept);
    const deleted = (v: { message: string }) => v.message.startsWith('entries deleted');
    expect((await follower.run()).violations.filter(deleted)).toHaveLength(1);
    // The stream grows; the one deletion stays one.
    await send({ type: 'ChangeAgentState', agentId: 'a1', state: 'available' });
    await send({ type: 'ChangeAgentState', agentId: 'a2', state: 'available' });
    const again = await follower.run();
    expect(again.violations.filter(deleted), JSON.stringify(again.violations)).toHaveLength(1);
    // A second deletion is a second finding.
    const [one] = (await suite.redis.xrange(k.events, '-', '+', 'COUNT', 1)) as StreamEntry[];
    await suite.redis.xdel(k.events, one![0]);
    const third = await follower.run();
    expect(third.violations.filter(deleted).map((v) => v.message)).toEqual([
      'entries deleted from the events stream other than by the archiver: 1 (XTRIM or XDEL)',
      `entries deleted from the events stream other than by the archiver: 2 (XDEL, the latest at ${one![0]})`,
    ]);
  });
});
