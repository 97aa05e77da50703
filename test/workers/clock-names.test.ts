/**
 * The clock step names the commands it appended: with `named`, fireTimers returns the command id
 * of every timer it fired (`timer:<member>:<due ms>`), exactly those appended to the command
 * stream, over more than one step's batch; a timer it cannot read is removed and not named. The
 * dispatcher's debug line 'timers fired' gives these ids (before, it named the timers read due
 * just before the step, which another timer falling due in between made inexact).
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { CLOCK_BATCH, fireTimers } from '../../src/dispatcher/dispatcher.ts';
import { suiteRedis } from '../support/redis.ts';

describe('the clock step', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);

  it('returns the command ids of the timers it fired, as appended, over more than one batch', async () => {
    const ws = `clock-names-${run}`;
    const k = workspaceKeys(ws);
    const now = 1_700_000_000_000;
    const due: [number, string][] = [];
    for (let i = 0; i < CLOCK_BATCH + 40; i++) due.push([now - 1000 + i, `o|c${i}|1`]);
    due.push(
      [now - 5, 'w|agent-1|2'],
      [now, 'm|c-max|1'],
      [now - 3, 'r|c-step|4|2'],
      [now - 2, 'x|unreadable|1'],
    );
    const later: [number, string][] = [
      [now + 1, 'o|later|1'],
      [now + 60_000, 'w|agent-2|1'],
    ];
    for (const [at, member] of [...due, ...later]) await suite.redis.zadd(k.timers, at, member);

    const r = await fireTimers(suite.redis, ws, now, { named: true });
    const appended = (await suite.redis.xrange(k.commands, '-', '+')) as [string, string[]][];
    const idsAppended = appended.map(([, f]) => f[f.indexOf('commandId') + 1]);
    expect(r.fired).toBe(due.length - 1);
    expect(r.commandIds).toEqual(idsAppended);
    expect(new Set(r.commandIds)).toEqual(
      new Set(due.filter(([, m]) => !m.startsWith('x|')).map(([at, m]) => `timer:${m}:${at}`)),
    );
    expect(r.nextDue).toBe(now + 1);
    // Every due timer is gone, the unreadable one too; the later ones wait.
    expect(await suite.redis.zrange(k.timers, 0, -1)).toEqual(later.map(([, m]) => m));

    // Unnamed (the dispatcher below debug): the same step, no ids returned.
    const next = await fireTimers(suite.redis, ws, now + 1);
    expect(next).toEqual({ fired: 1, nextDue: now + 60_000, commandIds: [] });
  });
});
