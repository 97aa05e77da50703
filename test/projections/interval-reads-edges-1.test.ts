/**
 * Under a backlog each interval step read a whole batch (1000 events, and their contacts' queues)
 * and applied only up to its writes' bound (about 130 events at 1000 queues), so the next step
 * read most of them again: each event was read from the log about 4.8 times, and each contact's
 * queue as often. A step now goes on from what the one before it read and did not apply (while
 * the checkpoint is still the one that step left), reading only what is new.
 */
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { type EventHistory, streamHistory } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { IntervalProjection } from '../../src/projections/intervals.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

describe("the interval projection's reads under a backlog", () => {
  const suite = suiteRedis();

  /** `n` contacts queued to `queues` queues, projected: n events for the interval projection. */
  async function burst(ws: string, n: number, queues: number): Promise<string> {
    await ensureGroup(suite.redis, ws);
    const commands = Array.from({ length: n }, (_, i) => ({
      type: 'QueueContact' as const,
      contactId: randomUUID(),
      skills: ['s', `t${i % queues}`],
      priority: 0,
    }));
    for (let i = 0; i < commands.length; i += 500)
      await Promise.all(
        commands.slice(i, i + 500).map((command) => appendCommand(suite.redis, { workspace: ws, command })),
      );
    await projectPending(suite.redis, ws, [], defaultProjectorOptions);
    const [newest] = await suite.redis.xrevrange(workspaceKeys(ws).events, '+', '-', 'COUNT', 1);
    return newest![0];
  }

  /** A history that counts the entries it returns. */
  function counting(): { history: EventHistory; read: () => number } {
    let read = 0;
    const stream = streamHistory(suite.redis);
    return {
      history: async (w, after, limit) => {
        const entries = await stream(w, after, limit);
        read += entries.length;
        return entries;
      },
      read: () => read,
    };
  }

  it('reads each of 10,000 events over 1000 queues about once, and each contact about once', async () => {
    const ws = `iv-reads-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const last = await burst(ws, 10_000, 1000);
    const events = await suite.redis.xlen(k.events);
    const c = counting();
    const p = new IntervalProjection(suite.redis, pino({ level: 'silent' }), c.history);
    // The contacts' queues asked for, counted on the client (SLOWLOG keeps 32 arguments of a command).
    let contactsAsked = 0;
    const hmget = suite.redis.hmget.bind(suite.redis) as (...args: unknown[]) => Promise<unknown>;
    const hooked = suite.redis as unknown as Record<string, unknown>;
    hooked.hmget = (...args: unknown[]) => {
      if (args[0] === k.intervalContacts) contactsAsked += args.flat().length - 1;
      return hmget(...args);
    };
    let result: number;
    try {
      result = await p.applyPending(ws);
    } finally {
      delete hooked.hmget;
    }
    expect(result).toBe(events);
    expect(await suite.redis.hget(k.intervals, 'checkpoint')).toBe(last);
    expect(await suite.redis.hlen(k.intervalContacts)).toBe(10_000);
    const perEvent = c.read() / events;
    const perContact = contactsAsked / 10_000;
    expect(perEvent, `log entries read per event applied: ${perEvent}`).toBeLessThan(1.3);
    expect(perContact, `contacts' queues read per contact: ${perContact}`).toBeLessThan(1.3);
  }, 60_000);

  it('counts every event once when another holder applies between its steps', async () => {
    const ws = `iv-reads-race-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const last = await burst(ws, 3000, 300);
    const events = await suite.redis.xlen(k.events);
    const log = pino({ level: 'silent' });
    const a = new IntervalProjection(suite.redis, log);
    const b = new IntervalProjection(suite.redis, log);
    // A is cut at its writes and keeps the rest; B applies some; A must read again from B's checkpoint.
    let applied = 0;
    for (let i = 0; applied < events; i++) {
      const n = await (i % 3 === 2 ? b : a).step(ws);
      if (n > 0) applied += n;
      if (n === 0) break;
    }
    expect(applied).toBe(events);
    expect(await suite.redis.hget(k.intervals, 'checkpoint')).toBe(last);
    let queued = 0;
    for (const start of await suite.redis.zrange(k.intervalIndex, 0, -1))
      queued += Number(await suite.redis.hget(`${k.intervalPrefix}${start}`, 'queued'));
    expect(queued).toBe(3000);
    expect(await suite.redis.hlen(k.intervalContacts)).toBe(3000);
  }, 60_000);
});
