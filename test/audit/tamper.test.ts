/**
 * Tampered logs: each change made to a real log (XADD, XDEL, or a stream rewritten with one entry
 * changed) is reported at the right position with the right kind, by the function and by the
 * command (`src/cli/audit.ts`, spawned as a user runs it: exit 1, the violation in its output).
 * The untouched log passes (exit 0), `--after` hides what comes before it, bad arguments exit 2.
 */
import { describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace, WorkspaceAudit } from '../../src/audit/read.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { auditCli as cli, forgeAssignment } from '../support/tamper.ts';

describe('tampered logs', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  let n = 0;

  const audit = (ws: string, ...more: string[]) =>
    cli(['--workspace', ws, '--redis-url', suite.server.url, '--json', ...more]);

  /** A fresh workspace with a real log of about 600 events. */
  async function log(): Promise<{ ws: string; events: StreamEntry[] }> {
    const ws = `tamper-${run}-${++n}`;
    await writeLog(suite.redis, ws, { events: 600, agents: 12, seed: n });
    return { ws, events: (await suite.redis.xrange(workspaceKeys(ws).events, '-', '+')) as StreamEntry[] };
  }

  const typeOf = (e: StreamEntry) => e[1][1];
  const envelopeOf = (e: StreamEntry) =>
    JSON.parse(e[1][3]!) as { data: Record<string, unknown>; meta: Record<string, unknown> };

  /** Rewrites a stream with the same ids, one entry's fields replaced. */
  async function rewrite(key: string, id: string, fields: string[]): Promise<void> {
    const entries = (await suite.redis.xrange(key, '-', '+')) as StreamEntry[];
    await suite.redis.del(key);
    for (const [at, f] of entries) await suite.redis.xadd(key, at, ...(at === id ? fields : f));
  }

  /** Rewrites the event at `id` as the envelope `env`, of type `type`. */
  const rewriteEvent = (ws: string, id: string, type: string, env: object) =>
    rewrite(workspaceKeys(ws).events, id, ['type', type, 'event', JSON.stringify(env)]);

  it('passes the untouched log, and refuses bad arguments with exit 2', async () => {
    const { ws } = await log();
    // Four runs of the command that read and change nothing: at once.
    const [clean, text, bad, unknown] = await Promise.all([
      audit(ws, '--idle'),
      cli(['--workspace', ws, '--redis-url', suite.server.url]),
      cli(['--workspace', ws, '--after', 'yesterday']),
      cli(['--workspace', 'nobody-here', '--redis-url', suite.server.url]),
    ]);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.summary).toMatchObject({ ok: true, violationCount: 0, state: 'compared' });
    expect(clean.summary!.decisionsChecked).toBeGreaterThan(0);

    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/violations +0/);
    expect(text.stdout).toMatch(/events\/s/);

    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--after: must be a stream position/);
    expect(bad.stderr).toMatch(/no Redis to read/);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no workspace "nobody-here"/);
  });

  it('an audit run again reads only what is new, and still finds a forged assignment appended since', async () => {
    const { ws } = await log();
    const follower = new WorkspaceAudit(suite.redis, ws, { idle: true });
    const first = await follower.run();
    expect(first).toMatchObject({ ok: true, state: 'compared' });
    const commands: Command[] = [
      { type: 'RegisterAgent', agentId: 'f1', skills: ['Foxtrot'], capacity: 1 },
      { type: 'RegisterAgent', agentId: 'f2', skills: ['Foxtrot'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'f1', state: 'available' },
      { type: 'ChangeAgentState', agentId: 'f2', state: 'available' },
    ];
    for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws);
    const second = await follower.run();
    expect(second).toMatchObject({ ok: true, state: 'compared', commands: first.commands + 4 });
    // Each event is replayed once over the runs: the log read again would count its events twice
    // and flag every command as appended again.
    expect(second.events).toBe(first.events + 4);

    await appendCommand(suite.redis, {
      workspace: ws,
      command: { type: 'QueueContact', contactId: 'cf', skills: ['Foxtrot'], priority: 0 },
    });
    await projectPending(suite.redis, ws);
    const position = await forgeAssignment(suite.redis, ws, 'cf', 'f2');
    const third = await follower.run();
    const whole = await auditWorkspace(suite.redis, ws, { idle: true });
    expect(third.violations[0]).toMatchObject({ kind: 'decision', stream: 'events', position });
    expect(third.violations).toEqual(whole.violations);
    expect([third.commands, third.events, third.decisionsChecked]).toEqual([
      whole.commands,
      whole.events,
      whole.decisionsChecked,
    ]);
  });

  it('an audit run again reports the end of the log as it is now, each finding once', async () => {
    const { ws } = await log();
    const commands: Command[] = [
      { type: 'RegisterAgent', agentId: 'i1', skills: ['India'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'i1', state: 'available' },
      { type: 'QueueContact', contactId: 'ci', skills: ['India'], priority: 0 },
    ];
    for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws); // and no dispatch: ci waits while i1 could take it
    const follower = new WorkspaceAudit(suite.redis, ws, { idle: true });
    const idle = [
      expect.objectContaining({ kind: 'idle', message: expect.stringMatching(/contact ci waits/) }),
    ];
    const first = await follower.run();
    expect(first.violations).toEqual(idle);
    const second = await follower.run();
    const whole = await auditWorkspace(suite.redis, ws, { idle: true });
    expect(whole.violations).toEqual(idle);
    expect(second.violations).toEqual(whole.violations);
    expect(second).toMatchObject({ violationCount: 1, violationsByKind: { idle: 1 } });

    // Dispatched since: the end of the log is right now, and so is the audit.
    expect(await dispatchPending(suite.redis, ws)).toBe(1);
    const third = await follower.run();
    expect(third).toMatchObject({ ok: true, violationCount: 0, violationsByKind: {}, violations: [] });
    expect((await auditWorkspace(suite.redis, ws, { idle: true })).ok).toBe(true);
  });

  it('reports an AssignmentMade to the wrong agent appended with XADD', async () => {
    const { ws } = await log();
    // Two agents able to take "Zulu", the first longest available; a Zulu contact waits, undispatched.
    const commands: Command[] = [
      { type: 'RegisterAgent', agentId: 'z1', skills: ['Zulu'], capacity: 1 },
      { type: 'RegisterAgent', agentId: 'z2', skills: ['Zulu'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'z1', state: 'available' },
      { type: 'ChangeAgentState', agentId: 'z2', state: 'available' },
      { type: 'QueueContact', contactId: 'cz', skills: ['Zulu'], priority: 0 },
    ];
    for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws);
    const position = await forgeAssignment(suite.redis, ws, 'cz', 'z2');

    const report = await auditWorkspace(suite.redis, ws);
    expect(report.violations[0]).toMatchObject({ kind: 'decision', stream: 'events', position });
    expect(report.violations[0]!.message).toMatch(/rule 1 gives cz->z1/);
    // Redis never made it: the documents still have cz queued and z2 free.
    expect(report.violationsByKind.state).toBeGreaterThan(0);

    const r = await audit(ws);
    expect(r.code).toBe(1);
    expect(r.summary!.violations[0]).toMatchObject({ kind: 'decision', position });
  });

  it('reports an AssignmentMade whose time the log cannot have, or whose meta names more than the decision', async () => {
    const HOUR = 3_600_000;
    const forged: [
      string,
      (env: { data: Record<string, unknown>; meta: Record<string, unknown> }, position: string) => void,
      RegExp,
    ][] = [
      [
        'after its append',
        (env, position) => {
          const at = Number(position.split('-')[0]) + HOUR;
          env.data.waitedMs =
            (env.data.waitedMs as number) + (at - Date.parse(env.data.assignedAt as string));
          env.data.assignedAt = new Date(at).toISOString();
        },
        /is after the event was appended/,
      ],
      [
        'before the command it is based on',
        (env) => {
          const at = Number((env.meta.basedOn as string).split('-')[0]) - HOUR;
          env.data.waitedMs =
            (env.data.waitedMs as number) - (Date.parse(env.data.assignedAt as string) - at);
          env.data.assignedAt = new Date(at).toISOString();
        },
        /is before the command it is based on/,
      ],
      [
        'with an API key in its meta',
        (env) => {
          env.meta.keyId = '0123456789abcdef';
          env.meta.role = 'admin';
        },
        /meta: keyId, role/,
      ],
    ];
    for (const [what, change, says] of forged) {
      const { ws, events } = await log();
      const target = events.filter((e) => typeOf(e) === 'AssignmentMade').at(-1)!;
      const env = envelopeOf(target) as {
        at?: unknown;
        data: Record<string, unknown>;
        meta: Record<string, unknown>;
      };
      change(env, target[0]);
      env.at = env.data.assignedAt;
      await rewriteEvent(ws, target[0], 'AssignmentMade', env);
      const report = await auditWorkspace(suite.redis, ws);
      const found = report.violations.find((v) => v.position === target[0] && v.kind === 'fact');
      expect(found?.message, `${what}: ${JSON.stringify(report.violations.slice(0, 3))}`).toMatch(says);
    }
  });

  it("reports a command sent with a key whose role may not send it, and the clock's with a key", async () => {
    const { ws } = await log();
    const sent = async (command: Command, role: string) =>
      (await appendCommand(suite.redis, { workspace: ws, command, keyId: '0123456789abcdef', role }))
        .position;
    const byAuditor = await sent(
      { type: 'RegisterAgent', agentId: 'r1', skills: ['Romeo'], capacity: 1 },
      'auditor',
    );
    const byAgent = await sent(
      {
        type: 'ChangeSettings',
        offerTimeoutMs: 0,
        wrapUpMs: 0,
        missedOfferPresence: 'away',
        maxWaitMs: null,
      },
      'agent',
    );
    const byIntegration = await sent({ type: 'EndWrapUp', agentId: 'r1', wrapUp: 1 }, 'integration');
    const allowed = await sent(
      { type: 'QueueContact', contactId: 'r-c', skills: ['Romeo'], priority: 0 },
      'integration',
    );
    await projectPending(suite.redis, ws);
    const report = await auditWorkspace(suite.redis, ws);
    const at = (p: string) => report.violations.filter((v) => v.position === p && v.kind === 'command');
    expect(at(byAuditor)[0]?.message).toMatch(/role auditor, which may not send it/);
    expect(at(byAgent)[0]?.message).toMatch(/role agent, which may not send it/);
    expect(at(byIntegration)[0]?.message).toMatch(/clock or the archiver only/);
    expect(at(allowed)).toEqual([]);
  });

  it("reports an agent key's command for another agent than the key's own", async () => {
    const { ws } = await log();
    const { info } = await createApiKey(suite.redis, { workspace: ws, role: 'agent', agentId: 'r1' });
    const sent = async (command: Command) =>
      (await appendCommand(suite.redis, { workspace: ws, command, keyId: info.keyId, role: 'agent' }))
        .position;
    await appendCommand(suite.redis, {
      workspace: ws,
      command: { type: 'RegisterAgent', agentId: 'r1', skills: ['Romeo'], capacity: 1 },
    });
    await appendCommand(suite.redis, {
      workspace: ws,
      command: { type: 'RegisterAgent', agentId: 'r2', skills: ['Romeo'], capacity: 1 },
    });
    const own = await sent({ type: 'ChangeAgentState', agentId: 'r1', state: 'available' });
    const another = await sent({ type: 'ChangeAgentState', agentId: 'r2', state: 'available' });
    const accept = await sent({ type: 'AcceptOffer', contactId: 'nope', agentId: 'r2' });
    const reject = await sent({ type: 'RejectOffer', contactId: 'nope', agentId: 'r2' });
    const complete = await sent({ type: 'CompleteContact', contactId: 'nope', agentId: 'r2' });
    // Appended before a completion named its agent: not held to it.
    const completeUnnamed = await sent({ type: 'CompleteContact', contactId: 'nope' });
    await projectPending(suite.redis, ws);
    const report = await auditWorkspace(suite.redis, ws);
    const at = (p: string) => report.violations.filter((v) => v.position === p && v.kind === 'command');
    expect(at(own)).toEqual([]);
    expect(at(completeUnnamed)).toEqual([]);
    for (const p of [another, accept, reject, complete])
      expect(at(p)[0]?.message, p).toMatch(/bound to agent "r1"/);
  });

  it("reports a malformed entry's rejection rewritten to name another command", async () => {
    const { ws } = await log();
    const k = workspaceKeys(ws);
    const bad = await suite.redis.xadd(
      k.commands,
      '*',
      'type',
      'QueueContact',
      'commandId',
      'raw-1',
      'command',
      'no',
    );
    await projectPending(suite.redis, ws);
    const events = (await suite.redis.xrange(k.events, '-', '+')) as StreamEntry[];
    const rejection = events.filter((e) => typeOf(e) === 'CommandRejected').at(-1)!;
    const env = envelopeOf(rejection);
    expect(env.data).toMatchObject({
      commandId: 'raw-1',
      command: 'QueueContact',
      title: 'Malformed command',
    });
    expect((await auditWorkspace(suite.redis, ws)).violations).toEqual([]);
    env.data.commandId = 'another-command';
    env.data.target = 'c1';
    await rewriteEvent(ws, rejection[0], 'CommandRejected', env);
    const report = await auditWorkspace(suite.redis, ws);
    expect(report.violations.find((v) => v.position === rejection[0])?.kind, bad!).toBe('fact');
  });

  it('reports an outcome stream emptied', async () => {
    const { ws } = await log();
    await suite.redis.del(workspaceKeys(ws).outcomes);
    const report = await auditWorkspace(suite.redis, ws);
    expect(report.violations.filter((v) => v.kind === 'outcome').map((v) => v.message)).toEqual([
      expect.stringMatching(/the outcome stream is empty, yet the commands up to \S+ were applied/),
    ]);
  });

  it('reports an event written without its type field', async () => {
    const { ws, events } = await log();
    const target = events.filter((e) => typeOf(e) === 'AssignmentMade').at(-1)!;
    await rewrite(workspaceKeys(ws).events, target[0], ['event', target[1][3]!]);
    const report = await auditWorkspace(suite.redis, ws);
    expect(report.violations.find((v) => v.position === target[0])?.message).toMatch(/no "type" field/);
  });

  it('reports a fact changed in place, at its position', async () => {
    const { ws, events } = await log();
    const target = events.find((e) => typeOf(e) === 'ContactQueued' && envelopeOf(e).data.priority === 0)!;
    const env = envelopeOf(target);
    env.data.priority = 7;
    await rewriteEvent(ws, target[0], 'ContactQueued', env);

    const report = await auditWorkspace(suite.redis, ws);
    expect(report.violations).toEqual([
      expect.objectContaining({
        kind: 'fact',
        position: target[0],
        message: expect.stringMatching(/priority: log 7, model 0/),
      }),
    ]);
    const r = await audit(ws);
    expect(r.code).toBe(1);
    expect(r.summary!.violations.map((v) => [v.kind, v.position])).toEqual([['fact', target[0]]]);
  });

  it('reports a command applied twice, and --after hides it when it is not after the position (leading zeros or not)', async () => {
    const { ws, events } = await log();
    const k = workspaceKeys(ws);
    const fact = events.find((e) => typeOf(e) === 'AgentStateChanged')!;
    const position = (await suite.redis.xadd(k.events, '*', ...fact[1]))!;

    const report = await auditWorkspace(suite.redis, ws);
    expect(report.violations).toEqual([expect.objectContaining({ kind: 'duplicate', position })]);
    expect(report.violations[0]!.message).toMatch(/already applied/);
    // A position with leading zeros is the same position (as the API reads it): one just before
    // the duplicate, written so, still reports it.
    const padded = `000${BigInt(position.split('-')[0]!) - 1n}-00`;
    const [r, after, before] = await Promise.all([
      audit(ws),
      audit(ws, '--after', position),
      audit(ws, '--after', padded),
    ]);
    expect(r.code).toBe(1);
    expect(r.summary!.violations.map((v) => [v.kind, v.position])).toEqual([['duplicate', position]]);

    expect(after.code).toBe(0);
    expect(after.summary).toMatchObject({ violationCount: 0, violationsBeforeAfter: 1 });
    expect(before.code, padded).toBe(1);
    expect(before.summary!.violations.map((v) => [v.kind, v.position])).toEqual([['duplicate', position]]);
  });

  it('reports a command whose rejection is missing, and a command whose outcome is missing', async () => {
    const { ws, events } = await log();
    const k = workspaceKeys(ws);
    const rejection = events.find((e) => typeOf(e) === 'CommandRejected')!;
    const commandId = envelopeOf(rejection).meta.commandId as string;
    const commands = (await suite.redis.xrange(k.commands, '-', '+')) as StreamEntry[];
    const command = commands.find(([, f]) => f[3] === commandId)!;
    await suite.redis.xdel(k.events, rejection[0]);
    const outcomes = (await suite.redis.xrange(k.outcomes, '-', '+')) as StreamEntry[];
    const dropped = outcomes[Math.floor(outcomes.length / 2)]!;
    const droppedFor = dropped[1][dropped[1].indexOf('position') + 1]!;
    await suite.redis.xdel(k.outcomes, dropped[0]);

    const report = await auditWorkspace(suite.redis, ws);
    const found = report.violations.map((v) => [v.kind, v.stream, v.position]);
    expect(found).toContainEqual(['missing', 'commands', command[0]]);
    expect(found).toContainEqual(['outcome', 'commands', droppedFor]);
    // And the deletion itself, at the entry deleted (Redis counts it: XINFO STREAM).
    expect(found).toContainEqual(['missing', 'events', rejection[0]]);
    expect(found).toHaveLength(3);
    expect(report.violations.find((v) => v.kind === 'missing')!.message).toMatch(
      /no CommandRejected in the event log/,
    );

    const r = await audit(ws);
    expect(r.code).toBe(1);
    expect(r.summary!.violationCount).toBe(3);
  });

  it('reports documents that are not the replayed state', async () => {
    const { ws } = await log();
    const k = workspaceKeys(ws);
    const withAttrs = Object.entries(await suite.redis.hgetall(k.contacts)).find(([, t]) =>
      t.includes('"_attrs"'),
    )!;
    const doc = JSON.parse(withAttrs[1]) as Record<string, unknown>;
    await suite.redis.hset(
      k.contacts,
      withAttrs[0],
      JSON.stringify({ ...doc, _attrs: '{"tier":99}', _seq: 0 }),
    );
    const agent = JSON.parse((await suite.redis.hget(k.agents, 'agent-1'))!) as Record<string, unknown>;
    await suite.redis.hset(k.agents, 'agent-1', JSON.stringify({ ...agent, capacity: 7 }));
    await suite.redis.hset(k.agents, 'ghost', JSON.stringify({ ...agent, id: 'ghost' }));
    await suite.redis.hdel(k.agents, 'agent-2');

    const report = await auditWorkspace(suite.redis, ws);
    expect(report.violations.map((v) => [v.kind, v.message])).toEqual(
      expect.arrayContaining([
        [
          'state',
          expect.stringMatching(
            new RegExp(`contact ${withAttrs[0]} differs: attributes: log \\{"tier":99\\}`),
          ),
        ],
        ['state', expect.stringMatching(/agent agent-1 differs: capacity: log 7, model [12]/)],
        ['state', 'agent ghost has a document but the replay has no such agent'],
        ['state', 'agent agent-2 has no document'],
      ]),
    );
    expect(report.violationCount).toBe(4);
  });

  it('reports, with --idle, a contact left waiting while an agent could take it', async () => {
    const { ws } = await log();
    const commands: Command[] = [
      { type: 'RegisterAgent', agentId: 'x1', skills: ['Xeno'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'x1', state: 'available' },
      { type: 'QueueContact', contactId: 'cx', skills: ['Xeno'], priority: 3 },
    ];
    for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws); // and no dispatch

    const [busy, idle] = await Promise.all([audit(ws), audit(ws, '--idle')]);
    expect(busy.code).toBe(0);
    expect(idle.code).toBe(1);
    expect(idle.summary!.violations).toEqual([
      expect.objectContaining({
        kind: 'idle',
        message: expect.stringMatching(/contact cx waits while agent x1/),
      }),
    ]);
  });
});
