/**
 * Crash safety of the work lifecycle's timers. Real processes (an API, a projector, dispatchers:
 * the dispatcher role runs the clock that turns due timers into commands) on one Redis, with
 * offers (`offerTimeoutMs` 300 ms), wrap-ups (`wrapUpMs` 200 ms) and `missedOfferPresence`
 * available. A load (test/support/offer-load.ts) queues contacts and answers each offer seen on a
 * WebSocket after a short random delay: most accepted (then completed, which starts a wrap-up),
 * some rejected, some ignored (they expire).
 *
 * 1. The dispatcher process is SIGKILLed twice mid-run, each time while offers and wrap-ups are
 *    outstanding (their timers in `sb:{ws}:timers`), and restarted: the timers it did not fire
 *    fire once the new one runs. At rest (no timer left, nothing routable queued): every offer is
 *    resolved exactly once before the contact's next offer, no offer is expired by two
 *    ExpireOffer commands, every timer command is appended once, and the auditor (src/audit)
 *    finds no violation, documents and routing index included.
 * 2. Two dispatcher processes without leases (two clocks on one workspace) while offers expire:
 *    no timer command is appended twice (each `timer:` commandId distinct, each timer member
 *    fired once), and the auditor is clean.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { waitProjectorSettled } from '../support/audit.ts';
import { Fleet } from '../support/fleet.ts';
import {
  lateAnswer,
  OfferLoad,
  offerLedger,
  outstandingTimers,
  putSettings,
  timerCommands,
} from '../support/offer-load.ts';
import type { SwitchboardProcess } from '../support/processes.ts';
import { sleep, waitFor } from '../support/wait.ts';

/** Counts the timers a dispatcher process says its clock fired (its debug lines 'timers fired'). */
function timersFiredBy(p: SwitchboardProcess): { count: number } {
  const out = { count: 0 };
  let partial = '';
  p.child.stdout?.on('data', (buf: Buffer) => {
    const lines = (partial + buf.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.includes('timers fired')) continue;
      out.count += Number((JSON.parse(line) as { fired?: number }).fired ?? 0);
    }
  });
  return out;
}

const SETTINGS = { offerTimeoutMs: 300, wrapUpMs: 200, missedOfferPresence: 'available' };

/** The auditor on a workspace at rest: no violation, nothing pending, only late answers rejected. */
async function auditClean(redis: RedisClient, ws: string, timerCount: number) {
  const audit = await auditWorkspace(redis, ws, { idle: true });
  const violations = audit.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`);
  expect(violations, `${ws}: violations found by the auditor (${audit.violationCount} in all)`).toEqual([]);
  expect(audit.pendingCommands, `${ws}: commands appended after the checkpoint`).toBe(0);
  expect(audit.state, `${ws}: documents and routing index`).toBe('compared');
  const unexpected = audit.rejected.filter((r) => !lateAnswer(r)).map((r) => JSON.stringify(r));
  expect(unexpected, `${ws}: commands rejected other than late answers to offers`).toEqual([]);
  // Every command a client sent carried a key; the clock's timer commands carry none.
  expect(audit.commandsWithoutIdempotencyKey, `${ws}: commands without a key other than timers`).toBe(
    timerCount,
  );
  return audit;
}

describe('lifecycle timers through SIGKILLed dispatchers', () => {
  let fleet: Fleet;
  const ws = `lcrash-${randomUUID().slice(0, 8)}`;
  const k = workspaceKeys(ws);

  beforeAll(async () => {
    fleet = await Fleet.start({
      api: 1,
      projector: 1,
      dispatcher: 1,
      env: { WORKSPACES: ws, LEASE_TTL_MS: '1000' },
    });
  }, 60_000);

  afterAll(async () => {
    if (!fleet) return;
    const running = fleet.all.length;
    const codes = await fleet.stop();
    expect(codes, 'every process still running stops cleanly on SIGTERM').toEqual(Array(running).fill(0));
  }, 60_000);

  it('resolves every offer once and fires every timer once across two dispatcher kills', async () => {
    const redis = fleet.client;
    const started = Date.now();
    await putSettings(fleet.api[0]!.url!, ws, SETTINGS);
    const load = new OfferLoad({
      apiUrls: [fleet.api[0]!.url!],
      ws,
      agents: 20,
      contacts: 320,
      ratePerS: 25,
      deadlineMs: 20_000,
      acceptShare: 0.7,
      rejectShare: 0.15,
      answerDelayMs: [20, 150],
      completeDelayMs: [50, 250],
    });
    await load.prepare();

    // Each kill waits (a little) for offers and wrap-ups to be outstanding, SIGKILLs the
    // dispatcher, and restarts it 700 ms later: the timers due meanwhile wait for the new clock.
    const kills: {
      atMs: number;
      timers: Record<string, number>;
      overdueAtRestart: number;
      restartMs: number;
      overdueFiredMs: number;
    }[] = [];
    const kill = async () => {
      const timers = await waitFor(
        'offers and wrap-ups outstanding',
        async () => {
          const t = await outstandingTimers(redis, ws);
          return (t.o ?? 0) > 0 && (t.w ?? 0) > 0 ? t : undefined;
        },
        { timeoutMs: 3_000, everyMs: 10 },
      ).catch(() => outstandingTimers(redis, ws));
      const victim = fleet.dispatcher[0]!;
      victim.kill('SIGKILL');
      await victim.exited;
      const at = Date.now();
      await sleep(700);
      // Timers that came due while no clock ran (offers not answered, wrap-ups).
      const overdueAtRestart = await redis.zcount(k.timers, '-inf', String(Date.now()));
      const restartAt = Date.now();
      await fleet.restart([victim]);
      const restartMs = Date.now() - restartAt;
      // The new clock fires the timers that came due while no dispatcher ran.
      await waitFor(
        'the timers due at the kill to fire after the restart',
        async () => {
          const due = await redis.zcount(k.timers, '-inf', String(at));
          return due === 0;
        },
        { timeoutMs: 15_000, everyMs: 20 },
      );
      kills.push({
        atMs: at - started,
        timers,
        overdueAtRestart,
        restartMs,
        overdueFiredMs: Date.now() - at,
      });
    };
    // The kills follow the load's progress, not the clock: a quarter and three fifths of the
    // contacts queued, so a slow restart still leaves load (and timers) for the second.
    const queuedAtLeast = (n: number) =>
      waitFor(`${n} contacts queued`, () => load.queued >= n, { timeoutMs: 30_000, everyMs: 20 });
    const killing = (async () => {
      await queuedAtLeast(80);
      await kill();
      await queuedAtLeast(192);
      await kill();
    })();

    await load.run();
    await killing;
    await load.quiesce(redis, 30_000);
    load.stop();
    await waitProjectorSettled(redis, ws);

    expect(kills).toHaveLength(2);
    for (const kl of kills) {
      expect(kl.timers.o ?? 0, 'offers outstanding at the kill').toBeGreaterThan(0);
      expect(kl.timers.w ?? 0, 'wrap-ups outstanding at the kill').toBeGreaterThan(0);
    }
    expect(
      kills.reduce((n, kl) => n + kl.overdueAtRestart, 0),
      'timers overdue when the dispatcher came back',
    ).toBeGreaterThan(0);
    expect(load.client.failed, 'requests that never got a final answer').toBe(0);
    expect(load.unexpected).toEqual([]);
    expect(load.acknowledged.size).toBe(load.queued);

    const ledger = await offerLedger(redis, ws);
    expect(ledger.problems, 'offers resolved other than exactly once').toEqual([]);
    expect(ledger.withoutOffer).toBe(0);
    expect(ledger.offers).toBe(load.follower.seen.length);
    expect(ledger.resolvedBy.AssignmentAccepted ?? 0).toBe(load.accepted);
    expect(ledger.resolvedBy['AssignmentRejected:rejected'] ?? 0).toBe(load.rejected);
    expect(ledger.resolvedBy.AssignmentExpired ?? 0, 'ignored offers expire').toBeGreaterThanOrEqual(
      load.actions.ignore,
    );

    const timers = await timerCommands(redis, ws);
    expect(timers.duplicateIds, 'timer commands appended twice').toEqual([]);
    expect(timers.duplicateMembers, 'timers fired twice').toEqual([]);
    expect(timers.offersExpiredTwice, 'offers expired by two ExpireOffer commands').toEqual([]);
    expect(timers.byType.ExpireOffer ?? 0).toBeGreaterThanOrEqual(ledger.resolvedBy.AssignmentExpired ?? 0);
    expect(timers.byType.EndWrapUp ?? 0, 'a wrap-up ended for every completion').toBe(load.completed);

    const audit = await auditClean(redis, ws, timers.total);
    // At rest every contact is completed, or still queued with every agent able to take it
    // excluded (the auditor's idle check: no queued contact has an eligible available agent).
    const states: Record<string, number> = {};
    for (const c of audit.replay.contacts.values()) states[c.state] = (states[c.state] ?? 0) + 1;
    expect(Object.keys(states).filter((s) => s !== 'completed' && s !== 'queued')).toEqual([]);
    expect(states.completed).toBe(load.completed);

    console.log(
      JSON.stringify({
        suite: 'lifecycle-crash',
        ...load.summary(),
        kills,
        ledger: { offers: ledger.offers, resolvedBy: ledger.resolvedBy },
        timerCommands: timers.byType,
        contactStates: states,
        commands: audit.commands,
        decisionsChecked: audit.decisionsChecked,
        totalMs: Date.now() - started,
      }),
    );
  }, 90_000);
});

describe('two clocks on one workspace', () => {
  let fleet: Fleet;
  const ws = `lclock-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    fleet = await Fleet.start({
      api: 1,
      projector: 1,
      dispatcher: 2,
      // The dispatchers log each clock step that fired timers ('timers fired', at debug).
      env: { WORKSPACES: ws, DISPATCH_LEASES: 'false', LOG_LEVEL: 'debug' },
      apiEnv: { LOG_LEVEL: 'warn' },
    });
  }, 60_000);

  afterAll(async () => {
    if (!fleet) return;
    const running = fleet.all.length;
    const codes = await fleet.stop();
    expect(codes, 'every process still running stops cleanly on SIGTERM').toEqual(Array(running).fill(0));
  }, 60_000);

  it('appends each timer command once while two dispatchers run the clock', async () => {
    const redis = fleet.client;
    const fired = fleet.dispatcher.map(timersFiredBy);
    await putSettings(fleet.api[0]!.url!, ws, { ...SETTINGS, offerTimeoutMs: 150 });
    // Most offers are ignored: they expire, and the contact goes to the next agent.
    const load = new OfferLoad({
      apiUrls: [fleet.api[0]!.url!],
      ws,
      agents: 12,
      contacts: 120,
      ratePerS: 40,
      deadlineMs: 10_000,
      acceptShare: 0.3,
      rejectShare: 0.1,
      answerDelayMs: [10, 80],
      completeDelayMs: [20, 100],
    });
    await load.prepare();
    await load.run();
    await load.quiesce(redis, 30_000);
    load.stop();
    await waitProjectorSettled(redis, ws);

    expect(load.client.failed).toBe(0);
    expect(load.unexpected).toEqual([]);
    const timers = await timerCommands(redis, ws);
    expect(timers.byType.ExpireOffer ?? 0, 'offers expired').toBeGreaterThan(50);
    expect(timers.duplicateIds, 'timer commands appended twice').toEqual([]);
    expect(timers.duplicateMembers, 'timers fired twice').toEqual([]);
    expect(timers.offersExpiredTwice).toEqual([]);
    // Both clocks fired timers, and together exactly the timer commands in the log.
    const firedBy = fired.map((f) => f.count);
    expect(
      firedBy.every((n) => n > 0),
      `timers fired by each clock: ${firedBy}`,
    ).toBe(true);
    expect(firedBy[0]! + firedBy[1]!).toBe(timers.total);
    const ledger = await offerLedger(redis, ws);
    expect(ledger.problems).toEqual([]);
    const audit = await auditClean(redis, ws, timers.total);
    console.log(
      JSON.stringify({
        suite: 'lifecycle-two-clocks',
        ...load.summary(),
        timersFiredByClock: firedBy,
        ledger: { offers: ledger.offers, resolvedBy: ledger.resolvedBy },
        timerCommands: timers.byType,
        commands: audit.commands,
      }),
    );
  }, 60_000);
});
