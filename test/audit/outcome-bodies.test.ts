/**
 * The outcome stream's bodies, the answers clients got: each is held to the replay. A success's
 * body is the view of the document its command is about, as the command left it; a rejection's is
 * its problem (the CommandRejected event's status, title, detail and command id). Bodies changed
 * in a real log are reported at their outcome, by the function and by the command.
 */
import { describe, expect, it } from 'vitest';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { suiteRedis } from '../support/redis.ts';
import { auditCli } from '../support/tamper.ts';

describe('outcome bodies', () => {
  const suite = suiteRedis();

  it('reports an answer that is not the replayed document or the rejection the log gives', async () => {
    const ws = `bodies-${Date.now().toString(36)}`;
    await writeLog(suite.redis, ws, { events: 600, agents: 12, seed: 5 });
    const k = workspaceKeys(ws);
    expect((await auditWorkspace(suite.redis, ws)).violationCount).toBe(0);

    const outcomes = (await suite.redis.xrange(k.outcomes, '-', '+')) as StreamEntry[];
    const parsed = outcomes.map(([id, f]) => ({
      id,
      fields: f,
      outcome: JSON.parse(f[f.indexOf('outcome') + 1]!) as { status: number; body: Record<string, unknown> },
    }));
    const last = (ok: (o: (typeof parsed)[number]) => boolean) => [...parsed].reverse().find(ok);
    const agent = last((o) => o.outcome.status === 200 && 'presence' in o.outcome.body)!;
    const contact = last((o) => o.outcome.status === 201 && 'queuedAt' in o.outcome.body)!;
    const refused = last((o) => o.outcome.status >= 400)!;
    expect([agent, contact, refused].every(Boolean)).toBe(true);

    const changed = new Map<string, (b: Record<string, unknown>) => void>([
      [
        agent.id,
        (b) => {
          b.state = b.state === 'busy' ? 'available' : 'busy';
        },
      ],
      [
        contact.id,
        (b) => {
          b.priority = Number(b.priority) + 1;
        },
      ],
      [
        refused.id,
        (b) => {
          b.detail = `${String(b.detail)} (changed)`;
        },
      ],
    ]);
    // The stream rewritten with the same ids, three bodies changed.
    await suite.redis.del(k.outcomes);
    for (const o of parsed) {
      const change = changed.get(o.id);
      const fields = [...o.fields];
      if (change) {
        change(o.outcome.body);
        fields[fields.indexOf('outcome') + 1] = JSON.stringify(o.outcome);
      }
      await suite.redis.xadd(k.outcomes, o.id, ...fields);
    }

    const report = await auditWorkspace(suite.redis, ws);
    const found = report.violations.map((v) => [v.kind, v.stream, v.position, v.message]);
    expect(found).toHaveLength(3);
    expect(found).toContainEqual([
      'outcome',
      'outcomes',
      agent.id,
      expect.stringMatching(/body differs: state: log/),
    ]);
    expect(found).toContainEqual([
      'outcome',
      'outcomes',
      contact.id,
      expect.stringMatching(/body differs: priority: log/),
    ]);
    expect(found).toContainEqual([
      'outcome',
      'outcomes',
      refused.id,
      expect.stringMatching(/problem body differs: detail: log .*\(changed\)/),
    ]);

    const cli = await auditCli(['--workspace', ws, '--redis-url', suite.server.url, '--json']);
    expect(cli.code).toBe(1);
    expect(cli.summary!.violationCount).toBe(3);
  });
});
