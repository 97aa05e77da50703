/**
 * The auditor holds the live interval projection (src/projections/intervals.ts) to the log: after
 * replaying, it counts the events into 15-minute intervals as the log gives them and compares the
 * tallies in Redis for the intervals the projection's checkpoint covers whole. A real log (about
 * 600 events: queued, assigned, completed, abandoned contacts), projected live, audits clean with
 * its interval compared; a tally changed by HINCRBY (the workspace's, or a queue's) is an `interval`
 * violation naming the interval and the field, by the function and by the command (exit 1); an
 * interval the log never counted is one too; and a projection behind the log is not held to
 * events it has not read (its current interval is left out, nothing reported); dropped, it is not
 * compared, and rebuilt from the log it agrees again.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { INTERVAL_MS, intervalStart } from '../../src/domain/intervals.ts';
import { dropIntervals, IntervalProjection } from '../../src/projections/intervals.ts';
import { projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { auditCli as cli } from '../support/tamper.ts';

describe('the auditor and the live interval projection', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  let n = 0;

  /** A real log, and its live interval projection caught up; the interval hashes' keys. */
  async function projected(): Promise<{ ws: string; hashes: string[] }> {
    const ws = `intervals-audit-${run}-${++n}`;
    await writeLog(suite.redis, ws, { events: 600, agents: 12, seed: n });
    const projection = new IntervalProjection(suite.redis, pino({ level: 'silent' }));
    expect(await projection.applyPending(ws)).toBeGreaterThan(0);
    const k = workspaceKeys(ws);
    const starts = await suite.redis.zrange(k.intervalIndex, 0, -1);
    expect(starts.length).toBeGreaterThan(0);
    return { ws, hashes: starts.map((s) => `${k.intervalPrefix}${s}`) };
  }

  it('passes a projection that agrees with the log, and reports a tally changed in Redis', async () => {
    const { ws, hashes } = await projected();
    const clean = await auditWorkspace(suite.redis, ws);
    expect(clean.violations).toEqual([]);
    expect(clean.intervals).toMatch(new RegExp(`^compared ${hashes.length} intervals? \\(the projection at`));

    // One more queued contact in the workspace's tally of the last interval.
    const hash = hashes.at(-1)!;
    const queued = Number(await suite.redis.hget(hash, 'queued'));
    expect(queued).toBeGreaterThan(0);
    await suite.redis.hincrby(hash, 'queued', 1);
    const from = new Date(Number(hash.slice(hash.lastIndexOf(':') + 1))).toISOString();
    const report = await auditWorkspace(suite.redis, ws);
    expect(report.violations).toEqual([
      expect.objectContaining({
        kind: 'interval',
        stream: 'state',
        message: expect.stringMatching(
          new RegExp(
            `^interval ${from}: the live projection .* differs from the log: queued: live ${queued + 1}, log ${queued}$`,
          ),
        ),
      }),
    ]);

    const r = await cli(['--workspace', ws, '--redis-url', suite.server.url, '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.summary!.violations.map((v) => v.kind)).toEqual(['interval']);
  });

  it("reports a queue's tally changed, and an interval the log never counted", async () => {
    const { ws, hashes } = await projected();
    const k = workspaceKeys(ws);
    const hash = hashes.at(-1)!;
    const waitField = Object.keys(await suite.redis.hgetall(hash)).find((f) => f.startsWith('waitSum '))!;
    expect(waitField).toBeDefined();
    await suite.redis.hincrby(hash, waitField, 250);
    // A whole interval an hour before the log began.
    const start = Number(hash.slice(hash.lastIndexOf(':') + 1)) - 4 * INTERVAL_MS;
    await suite.redis.hset(`${k.intervalPrefix}${start}`, 'abandoned', 3);
    await suite.redis.zadd(k.intervalIndex, start, String(start));

    const report = await auditWorkspace(suite.redis, ws);
    expect(report.violations.map((v) => v.message)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^interval ${new Date(start).toISOString()}: .* differs from the log: abandoned: live 3, log 0$`,
        ),
      ),
      expect.stringMatching(/: waitSum voice \["[^"]+".*\]: live \d+, log \d+$/),
    ]);
    expect(report.violationsByKind).toEqual({ interval: 2 });
  });

  it('holds a projection behind the log only to the intervals it has read whole', async () => {
    const { ws } = await projected();
    const k = workspaceKeys(ws);
    // Events after the projection's checkpoint; and the projection's tallies of the interval its
    // checkpoint is in changed: it has not read that interval whole, so nothing is reported.
    const checkpoint = (await suite.redis.hget(k.intervals, 'checkpoint'))!;
    const current = intervalStart(Number(checkpoint.split('-')[0]));
    for (const command of [
      { type: 'QueueContact' as const, contactId: 'late-1', skills: ['Nobody'], priority: 0 },
      { type: 'QueueContact' as const, contactId: 'late-2', skills: ['Nobody'], priority: 0 },
    ])
      await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws);
    await suite.redis.hincrby(`${k.intervalPrefix}${current}`, 'queued', 1);
    await suite.redis.zadd(k.intervalIndex, current, String(current));
    const behind = await auditWorkspace(suite.redis, ws);
    expect(behind.violations).toEqual([]);
    expect(behind.intervals).toMatch(/^compared \d+ intervals? /);

    // Caught up, the interval is compared again: the change made by hand is found, the late
    // contacts counted by both.
    await new IntervalProjection(suite.redis, pino({ level: 'silent' })).applyPending(ws);
    const caughtUp = await auditWorkspace(suite.redis, ws);
    expect(caughtUp.violations).toEqual([
      expect.objectContaining({
        kind: 'interval',
        message: expect.stringMatching(/queued: live (\d+), log \d+$/),
      }),
    ]);

    // Dropped, there is nothing to compare; rebuilt from the whole log, it agrees again.
    await dropIntervals(suite.redis, ws);
    const none = await auditWorkspace(suite.redis, ws);
    expect(none).toMatchObject({
      violationCount: 0,
      intervals: 'not compared (no live interval projection)',
    });
    await new IntervalProjection(suite.redis, pino({ level: 'silent' })).applyPending(ws);
    const rebuilt = await auditWorkspace(suite.redis, ws);
    expect(rebuilt.violations).toEqual([]);
    expect(rebuilt.intervals).toMatch(/^compared [1-9]\d* intervals? /);
  });
});
