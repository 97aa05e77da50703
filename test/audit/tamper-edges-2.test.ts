/**
 * The Idempotency-Key records, changed without any command: what a repeated request is answered
 * (the first command's position and id, and its outcome: status and body) comes from them
 * (src/adapters/redis/lua/includes/idempotency.lua), not from the log. The auditor holds each
 * record to the log: the last command carrying its key, and that command's outcome.
 */
import { describe, expect, it } from 'vitest';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { suiteRedis } from '../support/redis.ts';

describe('Idempotency-Key records changed without a command', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  let n = 0;

  interface Keyed {
    readonly key: string;
    readonly position: string;
    readonly commandId: string;
    readonly type: string;
  }

  /** A real log (about 300 events; every third command sent with an Idempotency-Key). */
  async function log(): Promise<{ ws: string; keyed: Keyed[] }> {
    const ws = `tamper-idem-${run}-${++n}`;
    await writeLog(suite.redis, ws, { events: 300, agents: 8, seed: n });
    expect((await auditWorkspace(suite.redis, ws, { idle: true })).violations).toEqual([]);
    const commands = (await suite.redis.xrange(workspaceKeys(ws).commands, '-', '+')) as StreamEntry[];
    const keyed = commands.flatMap(([position, f]) => {
      const at = f.indexOf('idempotencyKey');
      return at < 0
        ? []
        : [{ key: f[at + 1]!, position, commandId: f[f.indexOf('commandId') + 1]!, type: f[1]! }];
    });
    return { ws, keyed };
  }

  const violations = async (ws: string) =>
    (await auditWorkspace(suite.redis, ws)).violations.map((v) => `${v.kind}: ${v.message}`);

  it("reports a repeat's recorded answer that is not its command's outcome", async () => {
    const { ws, keyed } = await log();
    const k = workspaceKeys(ws);
    // A contact queued (201) long enough ago that the outcome stream may no longer hold it.
    const queued = keyed.find((c) => c.type === 'QueueContact')!;
    const text = (await suite.redis.hget(k.idempotencyOutcomes, queued.key))!;
    const outcome = JSON.parse(text) as { status: number; body: Record<string, unknown> };
    expect(outcome.status).toBe(201);
    await suite.redis.hset(
      k.idempotencyOutcomes,
      queued.key,
      JSON.stringify({ status: 409, body: { title: 'Contact already exists' } }),
    );
    // The last keyed command: its outcome is in the outcome stream, and its body is held to it.
    const last = keyed.at(-1)!;
    const lastOutcome = JSON.parse((await suite.redis.hget(k.idempotencyOutcomes, last.key))!) as {
      status: number;
      body: Record<string, unknown>;
    };
    await suite.redis.hset(
      k.idempotencyOutcomes,
      last.key,
      JSON.stringify({ ...lastOutcome, body: { ...lastOutcome.body, position: '1-0' } }),
    );
    const found = await violations(ws);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          new RegExp(
            `^state: Idempotency-Key "${queued.key}": the answer recorded for a repeat has status 409, the outcome of command ${queued.commandId} at ${queued.position} has 201$`,
          ),
        ),
        expect.stringMatching(
          new RegExp(
            `^state: Idempotency-Key "${last.key}": the answer recorded for a repeat is not the outcome of command ${last.commandId} at ${last.position}: position: log "1-0", model "${last.position}"$`,
          ),
        ),
      ]),
    );
    expect(found).toHaveLength(2);
  });

  it('reports a record naming another command than the last one the log has with its key', async () => {
    const { ws, keyed } = await log();
    const k = workspaceKeys(ws);
    const [a, b] = [keyed[2]!, keyed[5]!];
    const record = JSON.parse((await suite.redis.hget(k.idempotency, a.key))!) as Record<string, unknown>;
    expect(record).toMatchObject({ position: a.position, commandId: a.commandId });
    // A repeat of a's request would be told it was b, and answered b's outcome.
    await suite.redis.hset(
      k.idempotency,
      a.key,
      JSON.stringify({ ...record, position: b.position, commandId: b.commandId }),
    );
    // A record of a key no command carries.
    await suite.redis.hset(
      k.idempotency,
      'never-sent',
      JSON.stringify({ ...record, position: b.position, commandId: b.commandId }),
    );
    const found = await violations(ws);
    expect(found).toHaveLength(2);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          new RegExp(
            `^state: Idempotency-Key "${a.key}": its record names command ${b.commandId} at ${b.position}, the log's last command with the key is ${a.commandId} at ${a.position}`,
          ),
        ),
        expect.stringMatching(
          /^state: Idempotency-Key "never-sent": its record names command \S+ at \S+, no command in the log carries the key/,
        ),
      ]),
    );
  });
});
