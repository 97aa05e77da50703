/**
 * The pure replay (`auditEntries`) on a real log held in memory and changed there: events that
 * belong to no command, facts far ahead of their place, a decision without its basis, a decision
 * whose basis is behind what precedes it, and the violation cap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { auditEntries } from '../../src/audit/report.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

type Envelope = { type: string; data: Record<string, unknown>; meta: Record<string, unknown> };

describe('the replay over a log in memory', () => {
  let server: TestRedis;
  let redis: RedisClient;
  const ws = `pure-${Date.now().toString(36)}`;
  let commands: StreamEntry[];
  let events: StreamEntry[];

  beforeAll(async () => {
    server = await startTestRedis();
    redis = server.client();
    await writeLog(redis, ws, { events: 1500, agents: 100, seed: 11 });
    const k = workspaceKeys(ws);
    commands = (await redis.xrange(k.commands, '-', '+')) as StreamEntry[];
    events = (await redis.xrange(k.events, '-', '+')) as StreamEntry[];
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  const env = (e: StreamEntry) => JSON.parse(e[1][3]!) as Envelope;
  const withEnvelope = (e: StreamEntry, change: (x: Envelope) => void): StreamEntry => {
    const x = env(e);
    change(x);
    return [e[0], ['type', x.type, 'event', JSON.stringify(x)]];
  };
  const audit = (changed: StreamEntry[], opts = {}) => auditEntries(ws, { commands, events: changed }, opts);
  const kinds = (r: ReturnType<typeof audit>) => r.violations.map((v) => [v.kind, v.position]);

  it('passes the log as it is', () => {
    const r = audit(events, { idle: true });
    expect(r.violations).toEqual([]);
    expect(r.decisionsChecked).toBe(r.assignments);
  });

  it('names an event of a command that does not exist, and replays on', () => {
    const i = events.findIndex((e) => env(e).type === 'ContactQueued');
    const bogus = withEnvelope(events[i]!, (x) => {
      x.meta.commandId = 'no-such-command';
    });
    const r = audit(events.map((e, j) => (j === i ? bogus : e)));
    // The real fact is gone, so its command is missing it too.
    expect(kinds(r)).toEqual([
      ['event', events[i]![0]],
      ['missing', expect.any(String)],
    ]);
    expect(r.violations[0]!.message).toMatch(/not in the command stream/);
  });

  it('finds a fact far ahead of its place, and names every command passed over', () => {
    // The log opens with 100 registrations: without the facts of the first 80, the next fact is
    // 80 commands ahead of the replay.
    expect(events.slice(0, 100).every((e) => env(e).type === 'AgentRegistered')).toBe(true);
    const r = audit(events.slice(80));
    expect(kinds(r)).toEqual(commands.slice(0, 80).map(([p]) => ['missing', p]));
    expect(r.violations[0]!.message).toMatch(/RegisterAgent agent-1 .*: no AgentRegistered in the event log/);
  });

  it('cannot re-check a decision without basedOn, or based on less than the facts before it', () => {
    const i = events.findIndex((e) => env(e).type === 'AssignmentMade');
    const j = events.findIndex((e, n) => n > i + 5 && env(e).type === 'AssignmentMade');
    const changed = events.map((e, n) =>
      n === i
        ? withEnvelope(e, (x) => {
            delete x.meta.basedOn;
          })
        : n === j
          ? withEnvelope(e, (x) => {
              x.meta.basedOn = commands[0]![0];
            })
          : e,
    );
    const r = audit(changed);
    expect(kinds(r)).toEqual([
      ['unverifiable', events[i]![0]],
      ['unverifiable', events[j]![0]],
    ]);
    expect(r.violations[0]!.message).toMatch(/no meta.basedOn \(rule 1 at this place in the log: \S+->\S+\)/);
    expect(r.violations[1]!.message).toMatch(/yet the events of the command at .* precede it/);
  });

  it('counts every violation and keeps the first few', () => {
    const changed = events.map((e) =>
      env(e).type === 'ContactCompleted'
        ? withEnvelope(e, (x) => {
            x.data.handledMs = -1;
          })
        : e,
    );
    const r = audit(changed, { keep: 3 });
    expect(r.violations).toHaveLength(3);
    expect(r.violationCount).toBe(changed.filter((e) => env(e).type === 'ContactCompleted').length);
    expect(r.violationsByKind).toEqual({ fact: r.violationCount });
  });
});
