/**
 * The auditor on logs made by real commands through the append step, the projector and the
 * dispatcher (Lua on a real redis-server): no violation, every decision re-checked, the documents
 * and routing index compared; and the same verdict from the pure replay over the streams held in
 * memory.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { readRoutingIndex } from '../../src/adapters/redis/routing-index.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { auditEntries } from '../../src/audit/report.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import { defaultProjectorOptions, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

describe('the auditor on a real log', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);

  it('finds nothing wrong in a log of commands, rejections, assignments and completions', async () => {
    const ws = `audit-${run}-1`;
    const made = await writeLog(suite.redis, ws, {
      events: 3000,
      agents: 30,
      seed: 7,
      dispatch: { batch: 3 },
    });
    const report = await auditWorkspace(suite.redis, ws, { idle: true, pageSize: 500 });
    expect(report.violations).toEqual([]);
    expect(report).toMatchObject({ ok: true, state: 'compared', pendingCommands: 0, violationCount: 0 });
    expect(report.events).toBe(made.events);
    expect(report.commands).toBe(made.commands);
    expect(report.assignments).toBeGreaterThan(500);
    expect(report.decisionsChecked).toBe(report.assignments);
    expect(report.rejections).toBeGreaterThan(10);
    // Commands that set an agent to the state it is in have no event: they were replayed too.
    expect(report.facts + report.rejections).toBeLessThan(report.commands);
    // In pages of the default 5,000 (one page of events, replayed with a turn of the event loop
    // every 1,000 so the reads ahead go on meanwhile): the same report.
    const whole = await auditWorkspace(suite.redis, ws, { idle: true });
    expect({ ...whole, seconds: 0, eventsPerS: 0 }).toEqual({ ...report, seconds: 0, eventsPerS: 0 });

    // The same log held in memory, through the pure replay.
    const k = workspaceKeys(ws);
    const all = async (key: string) => (await suite.redis.xrange(key, '-', '+')) as StreamEntry[];
    const docs = async (key: string) => Object.entries(await suite.redis.hgetall(key));
    const pure = auditEntries(
      ws,
      {
        commands: await all(k.commands),
        events: await all(k.events),
        outcomes: await all(k.outcomes),
        checkpoint: (await suite.redis.hget(k.meta, 'applied')) ?? undefined,
        documents: {
          agents: await docs(k.agents),
          contacts: await docs(k.contacts),
          index: await readRoutingIndex(suite.redis, ws),
        },
      },
      { idle: true },
    );
    expect(pure.violations).toEqual([]);
    expect({ ...pure, seconds: 0, eventsPerS: 0, replay: null }).toEqual({
      ...report,
      seconds: 0,
      eventsPerS: 0,
      replay: null,
    });
  });

  it('replays entries the projector refuses (unknown type, wrong shape) as the rejections they became', async () => {
    const ws = `audit-${run}-2`;
    const k = workspaceKeys(ws);
    await writeLog(suite.redis, ws, { events: 200, agents: 5, seed: 3 });
    const raw = async (type: string, command: string) =>
      suite.redis.xadd(
        k.commands,
        '*',
        'type',
        type,
        'commandId',
        `raw-${type}-${command.length}`,
        'command',
        command,
      );
    await raw('FrobnicateAgent', '{"agentId":"agent-1"}');
    await raw('QueueContact', '{"contactId":"bad","skills":["b","a"],"priority":1}');
    await raw('QueueContact', 'not json');
    await raw('ChangeAgentState', '{"agentId":"agent-1","state":"sleeping"}');
    await projectPending(suite.redis, ws);
    await dispatchPending(suite.redis, ws);
    const report = await auditWorkspace(suite.redis, ws, { idle: true });
    expect(report.violations).toEqual([]);
    expect(report.rejected.filter((r) => r.commandId.startsWith('raw-')).map((r) => r.status)).toEqual([
      422, 422, 422, 422,
    ]);
  });

  it('audits a workspace while commands are appended, projected and dispatched', async () => {
    const ws = `audit-${run}-3`;
    let writing = true;
    const written = writeLog(suite.redis, ws, { events: 4000, agents: 20, seed: 5, perRound: 10 }).finally(
      () => {
        writing = false;
      },
    );
    const reports = [];
    while (writing) {
      // Each audit reads one consistent cut: what was applied and decided by then.
      reports.push(await auditWorkspace(suite.redis, ws, { pageSize: 200 }));
    }
    await written;
    expect(reports.length).toBeGreaterThan(1);
    for (const r of reports) expect(r.violations).toEqual([]);
    expect(reports.some((r) => r.events > 0 && r.assignments > 0)).toBe(true);
    // Documents are compared only at a cut that held while they were read: once it is quiet.
    const quiet = await auditWorkspace(suite.redis, ws, { idle: true });
    expect(quiet.violations).toEqual([]);
    expect(quiet.state).toBe('compared');
  });

  it('audits a live workspace whose outcome stream is trimmed past what it read, with nothing to report', async () => {
    const ws = `audit-${run}-4`;
    const k = workspaceKeys(ws);
    await writeLog(suite.redis, ws, { events: 1200, agents: 12, seed: 6 });
    expect(await suite.redis.xlen(k.outcomes)).toBeGreaterThan(200);
    // While the audit replays (small pages), the workspace moves on: one more command, applied
    // by a projector whose outcome window has passed (two minutes in production, 1 ms here), so
    // the outcomes the audit has not read yet are trimmed.
    let moved: Promise<unknown> | undefined;
    const r = await auditWorkspace(suite.redis, ws, {
      pageSize: 20,
      onProgress: (p) => {
        if (!moved && p.phase === 'events' && p.events >= 100)
          moved = (async () => {
            await appendCommand(suite.redis, {
              workspace: ws,
              command: { type: 'RegisterAgent', agentId: 'late', skills: ['Late'], capacity: 1 },
            });
            await projectPending(suite.redis, ws, [], { ...defaultProjectorOptions, outcomesKeptMs: 1 });
          })();
      },
    });
    await moved;
    expect(await suite.redis.xlen(k.outcomes)).toBeLessThan(10);
    expect(r.violations).toEqual([]);
    expect((await auditWorkspace(suite.redis, ws, { idle: true })).violations).toEqual([]);
  });
});
