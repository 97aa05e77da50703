/**
 * An event entry given a field its writers never write: an extra field of the stream entry (beside
 * `type` and `event`), an extra key of the envelope (beside type, workspace, at, data and meta), or
 * a meta key a fact or a decision does not carry. The audit passed such a log as clean (exit 0):
 * what the field says is in the log, and nothing re-checks it. Now each is a `fact` violation at
 * the altered event's position, naming the field (exit 1). Every writer since the first version
 * writes these fields only, so older logs still audit clean.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { auditCli } from '../support/tamper.ts';

describe('event fields no writer writes', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  let n = 0;

  /** A real log: two agents, two contacts queued (one of them with an Idempotency-Key) and assigned. */
  async function log(): Promise<string> {
    const ws = `tamper-fields-${run}-${++n}`;
    await ensureGroup(suite.redis, ws);
    const commands: Command[] = [
      { type: 'RegisterAgent', agentId: 'a1', skills: ['Alpha'], capacity: 1 },
      { type: 'RegisterAgent', agentId: 'a2', skills: ['Alpha', 'Bravo'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'a1', state: 'available' },
      { type: 'ChangeAgentState', agentId: 'a2', state: 'available' },
      { type: 'QueueContact', contactId: 'c1', skills: ['Alpha'], priority: 1 },
      { type: 'QueueContact', contactId: 'c2', skills: ['Bravo'], priority: 0 },
    ];
    for (const [i, command] of commands.entries())
      await appendCommand(suite.redis, {
        workspace: ws,
        command,
        ...(i === 4 ? { idempotencyKey: 'queue-c1' } : {}),
      });
    await projectPending(suite.redis, ws);
    expect(await dispatchPending(suite.redis, ws)).toBe(2);
    expect((await auditWorkspace(suite.redis, ws, { idle: true })).violations).toEqual([]);
    return ws;
  }

  /** Rewrites the events stream with the same ids, the first event of `type` changed by `change`. */
  async function alter(ws: string, type: string, change: (fields: string[]) => string[]): Promise<string> {
    const key = workspaceKeys(ws).events;
    const entries = (await suite.redis.xrange(key, '-', '+')) as StreamEntry[];
    const target = entries.find(([, f]) => f[1] === type)![0];
    await suite.redis.del(key);
    for (const [id, f] of entries) await suite.redis.xadd(key, id, ...(id === target ? change(f) : f));
    return target;
  }

  /** The envelope of an entry's fields changed by `change`. */
  const envelopeChanged =
    (change: (env: { meta: Record<string, unknown> } & Record<string, unknown>) => void) =>
    (f: string[]): string[] => {
      const env = JSON.parse(f[3]!) as { meta: Record<string, unknown> } & Record<string, unknown>;
      change(env);
      return [f[0]!, f[1]!, f[2]!, JSON.stringify(env)];
    };

  const violations = async (ws: string) =>
    (await auditWorkspace(suite.redis, ws)).violations.map((v) => `${v.kind} ${v.position}: ${v.message}`);

  it('reports a field of the stream entry beside type and event, on a fact and on a decision', async () => {
    const ws = await log();
    const fact = await alter(ws, 'ContactQueued', (f) => [...f, 'priority', '9']);
    const decision = await alter(ws, 'AssignmentMade', (f) => [...f, 'agentId', 'a2']);
    expect(await violations(ws)).toEqual([
      expect.stringMatching(
        new RegExp(`^fact ${fact}: ContactQueued of QueueContact c1 .* differs: entry field priority`),
      ),
      expect.stringMatching(
        new RegExp(`^fact ${decision}: AssignmentMade c1->a1 differs: entry field agentId`),
      ),
    ]);
    // As a user runs it: exit 1, the violation in its output.
    const cli = await auditCli(['--workspace', ws, '--redis-url', suite.server.url, '--json']);
    expect(cli.code, cli.stderr).toBe(1);
    expect(cli.summary?.violations[0]).toMatchObject({ kind: 'fact', position: fact });
  });

  it('reports a key of the envelope beside type, workspace, at, data and meta', async () => {
    const ws = await log();
    const fact = await alter(
      ws,
      'AgentRegistered',
      envelopeChanged((env) => {
        env.skills = ['Zulu'];
      }),
    );
    const decision = await alter(
      ws,
      'AssignmentMade',
      envelopeChanged((env) => {
        env.reason = 'manual';
      }),
    );
    expect(await violations(ws)).toEqual([
      expect.stringMatching(
        new RegExp(`^fact ${fact}: AgentRegistered of RegisterAgent a1 .* differs: envelope key skills`),
      ),
      expect.stringMatching(
        new RegExp(`^fact ${decision}: AssignmentMade c1->a1 differs: envelope key reason`),
      ),
    ]);
  });

  it('reports a meta key a fact does not carry, its own kept (an Idempotency-Key included)', async () => {
    const ws = await log();
    const keyed = await alter(
      ws,
      'ContactQueued',
      envelopeChanged((env) => {
        expect(env.meta.idempotencyKey).toBe('queue-c1');
        env.meta.basedOn = '0-1';
      }),
    );
    const plain = await alter(
      ws,
      'AgentStateChanged',
      envelopeChanged((env) => {
        env.meta.causationId = 'someone';
      }),
    );
    expect(await violations(ws)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^fact ${plain}: AgentStateChanged of ChangeAgentState a1 .* differs: meta: causationId \\(a fact carries`,
        ),
      ),
      expect.stringMatching(
        new RegExp(
          `^fact ${keyed}: ContactQueued of QueueContact c1 .* differs: meta: basedOn \\(a fact carries`,
        ),
      ),
    ]);
  });
  it('names the field on every path the event takes: a decision the rule does not give', async () => {
    const ws = await log();
    // The decision moved to an agent who lacks the skill, with a reason added: refused by the rule,
    // and the added key named too.
    const decision = await alter(
      ws,
      'AssignmentMade',
      envelopeChanged((env) => {
        (env.data as Record<string, unknown>).agentId = 'nobody';
        env.reason = 'manual';
      }),
    );
    const found = await violations(ws);
    const at = found.filter((v) => v.includes(decision));
    expect(at, found.join('\n')).toContain(
      `fact ${decision}: AssignmentMade holds what no writer writes: envelope key reason`,
    );
    expect(at[0], found.join('\n')).toMatch(new RegExp(`^decision ${decision}: .*rule 1 gives c1->a1`));
  });

  it('says a meta removed or not an object, and reads a field given twice as the other readers do (the last)', async () => {
    const ws = await log();
    const bare = await alter(
      ws,
      'AgentRegistered',
      envelopeChanged((env) => {
        delete (env as Record<string, unknown>).meta;
      }),
    );
    const twice = await alter(ws, 'ContactQueued', (f) => [...f, 'type', 'ContactQueued']);
    const found = await violations(ws);
    expect(
      found.find((v) => v.startsWith(`fact ${bare}:`)),
      found.join('\n'),
    ).toMatch(/no envelope key meta/);
    expect(
      found.find((v) => v.startsWith(`fact ${twice}:`)),
      found.join('\n'),
    ).toMatch(/entry field type given twice/);
  });
});
