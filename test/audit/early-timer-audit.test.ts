/**
 * A timer the clock took out of sb:{ws}:timers and appended as a command positioned BEFORE its
 * due time (a clock running fast: here the clock step's own "now" argument, which only tests
 * give; the step otherwise reads TIME, and its XADD takes a position at or after that time: on
 * Redis 7.0 both read the clock as they run, and from 7.2 both take the script's start time,
 * redis/redis#10300 and #12556). The projector applies such a command as stale (the
 * handlers and the model require the command's position to be at or after the due time), so the
 * timer is lost for good: the contact never expires. The auditor and the rebuild must not count
 * that command as the timer "already fired".
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { rebuildWorkspace } from '../../src/cli/rebuild/rebuild.ts';
import { dispatchPending, fireTimers } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

describe('a timer command positioned before its due time', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);

  it('does not account for the timer: the auditor and the rebuild report it lost', async () => {
    const ws = `early-${run}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    const commands: Command[] = [
      {
        type: 'ChangeSettings',
        offerTimeoutMs: 0,
        wrapUpMs: 0,
        missedOfferPresence: 'away',
        maxWaitMs: null,
      },
      { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0, maxWaitMs: 60_000 },
    ];
    for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws);
    await dispatchPending(suite.redis, ws);
    const [member, due] = (await suite.redis.zrange(k.timers, 0, 0, 'WITHSCORES')) as string[];
    expect(member).toBe('m|c1|1');

    // The clock fires it a minute early: taken out, its command appended now.
    expect((await fireTimers(suite.redis, ws, Number(due) + 1)).fired).toBe(1);
    const [cmd] = (await suite.redis.xrevrange(k.commands, '+', '-', 'COUNT', 1)) as [string, string[]][];
    expect(Number(cmd![0].split('-')[0])).toBeLessThan(Number(due));

    // Pending: the command will be applied as stale; the timer is lost already.
    const pending = await auditWorkspace(suite.redis, ws);
    expect(pending.violations.map((v) => `${v.kind}: ${v.message}`)).toEqual([
      expect.stringMatching(/^timer: timers: m\|c1\|1 \(due .*\) missing/),
    ]);
    const rebuiltPending = await rebuildWorkspace(suite.redis, ws);
    expect(rebuiltPending.differences).toEqual([
      expect.objectContaining({ kind: 'timer', member: 'm|c1|1', live: null, rebuilt: due }),
    ]);

    // Applied: stale (nothing changes), and c1 would wait for ever.
    await projectPending(suite.redis, ws);
    expect(JSON.parse((await suite.redis.hget(k.contacts, 'c1'))!).state).toBe('queued');
    const applied = await auditWorkspace(suite.redis, ws);
    expect(applied.violations.map((v) => `${v.kind}: ${v.message}`)).toEqual([
      expect.stringMatching(/^timer: timers: m\|c1\|1 \(due .*\) missing/),
    ]);
    const rebuilt = await rebuildWorkspace(suite.redis, ws);
    expect(rebuilt.differences).toEqual([
      expect.objectContaining({ kind: 'timer', member: 'm|c1|1', live: null, rebuilt: due }),
    ]);
  });
});
