/**
 * The auditor holds the lifecycle timers in Redis (sb:{ws}:timers) to the replayed state: every
 * timer the state still needs (an outstanding offer's expiry, a wrap-up's end, a waiting contact's
 * maximum wait, the end of its preference, its next routing step) must be there at the due time
 * the log gives it, or already fired (its command appended after the checkpoint). Every timer is
 * taken out by the step that makes it moot, so one the state does not need is reported too; a
 * preference or step timer fired after its arrival stopped waiting changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { dispatchPending, fireTimers } from '../../src/dispatcher/dispatcher.ts';
import { projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { auditCli } from '../support/tamper.ts';
import { timerNamed, timersLifecycle, timersOf } from '../support/timers.ts';

describe('the auditor on the lifecycle timers', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  let n = 0;

  async function lifecycle(): Promise<string> {
    const ws = `ta-${run}-${++n}`;
    await timersLifecycle(suite.redis, ws);
    return ws;
  }
  const timerViolations = async (ws: string) => {
    const report = await auditWorkspace(suite.redis, ws);
    expect(report.state).toBe('compared');
    return report.violations;
  };

  it('finds nothing in the untouched log, a timer fired and not applied yet included', async () => {
    const ws = await lifecycle();
    const report = await auditWorkspace(suite.redis, ws);
    expect(report.violations).toEqual([]);
    expect(report.state).toBe('compared');
    expect(report.pendingCommands).toBe(1);
  });

  it('says how late the clock appended each timer it fired', async () => {
    const ws = await lifecycle();
    const k = workspaceKeys(ws);
    // The three timers of the lifecycle's first part were fired 80 ms after their commands, past
    // their 60, 30 and 40 ms: each at least 20 ms late (c6's, after the checkpoint, is pending).
    const { timers } = await auditWorkspace(suite.redis, ws);
    expect(timers.fired).toBe(3);
    expect(timers.lagP50Ms).toBeGreaterThanOrEqual(20);
    expect(timers.lagMaxMs).toBeGreaterThanOrEqual(timers.lagP99Ms!);
    expect(timers.latest).toMatch(/^timer:[omw]\|/);
    // As `npm run audit` prints it: a line of its own.
    const printed = await auditCli(['--workspace', ws, '--redis-url', suite.server.url]);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toMatch(
      /\n {2}timers {6}3 fired; appended after their due time by \d+ ms \(median\), \d+ ms \(p99\), at most \d+ ms \(timer:[omw]\|/,
    );
    expect(printed.stdout).toContain('documents, routing index, counters and timers compared');
    // A clock that fired c5's preference two minutes late.
    const [member] = timerNamed(await timersOf(suite.redis, ws), 'f|c5|');
    const due = Date.now() - 120_000;
    await suite.redis.zrem(k.timers, member);
    await suite.redis.xadd(
      k.commands,
      '*',
      'type',
      'EndPreference',
      'commandId',
      `timer:${member}:${due}`,
      'command',
      JSON.stringify({ contactId: 'c5', seq: Number(member.split('|')[2]) }),
    );
    await projectPending(suite.redis, ws);
    const late = await auditWorkspace(suite.redis, ws);
    expect(late.timers.fired).toBe(5);
    expect(late.timers.latest).toBe(`timer:${member}:${due}`);
    expect(late.timers.lagMaxMs).toBeGreaterThanOrEqual(120_000);
  });

  for (const [what, prefix] of [
    ["an outstanding offer's", 'o|c4|'],
    ["a waiting contact's maximum wait", 'm|c5|'],
    ["a preference's end", 'f|c5|'],
    ["a routing step's", 'r|c5|'],
  ] as const)
    it(`reports ${what} timer lost`, async () => {
      const ws = await lifecycle();
      const [member, due] = timerNamed(await timersOf(suite.redis, ws), prefix);
      await suite.redis.zrem(workspaceKeys(ws).timers, member);
      expect(await timerViolations(ws)).toEqual([
        expect.objectContaining({
          kind: 'timer',
          stream: 'state',
          message: expect.stringContaining(`${member} (due ${new Date(Number(due)).toISOString()}) missing`),
        }),
      ]);
    });

  it('reports a due time that is not the one the log gives', async () => {
    const ws = await lifecycle();
    const [member, due] = timerNamed(await timersOf(suite.redis, ws), 'm|c5|');
    await suite.redis.zadd(workspaceKeys(ws).timers, Number(due) + 1000, member);
    expect(await timerViolations(ws)).toEqual([
      expect.objectContaining({ kind: 'timer', message: expect.stringContaining(`${member} due at`) }),
    ]);
  });

  it('reports an offer, wrap-up, maximum-wait, preference or step timer that nothing needs', async () => {
    const ws = await lifecycle();
    const k = workspaceKeys(ws);
    await suite.redis.zadd(k.timers, Date.now() + 60_000, 'o|c4|7', Date.now() + 60_000, 'w|ana|9');
    await suite.redis.zadd(k.timers, Date.now() + 60_000, 'm|c2|1');
    // c1 was completed long ago: timers of its arrival are moot.
    await suite.redis.zadd(k.timers, Date.now() + 60_000, 'f|c1|1', Date.now() + 60_000, 'r|c1|1|1');
    const found = await timerViolations(ws);
    expect(found).toEqual([
      expect.objectContaining({ kind: 'timer', message: expect.stringContaining('o|c4|7') }),
    ]);
    for (const member of ['w|ana|9', 'm|c2|1', 'f|c1|1', 'r|c1|1|1'])
      expect(found[0]!.message).toContain(member);
  });

  it('a preference or step timer fired after its arrival stopped waiting changes nothing', async () => {
    const ws = await lifecycle();
    const k = workspaceKeys(ws);
    // c1 was completed long ago: timers of its arrival are stale (fired as an older step left
    // them, or in flight when it was assigned).
    const past = Date.now() - 1;
    await suite.redis.zadd(k.timers, past, 'f|c1|1', past, 'r|c1|1|1');
    const events = await suite.redis.xlen(k.events);
    expect((await fireTimers(suite.redis, ws)).fired).toBe(2);
    await projectPending(suite.redis, ws);
    await dispatchPending(suite.redis, ws);
    // The two timer commands were applied (and c6's expiry, pending before): only c6's fact.
    const added = (await suite.redis.xrange(k.events, '-', '+')).slice(events).map(([, f]) => f[1]);
    expect(added).toEqual(['ContactExpired']);
    const report = await auditWorkspace(suite.redis, ws);
    expect(report.violations).toEqual([]);
    expect(report.pendingCommands).toBe(0);
  });
});
