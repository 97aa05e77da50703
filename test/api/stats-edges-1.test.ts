/**
 * GET /stats/intervals read from the log (docs/API.md, "Historical intervals"): a contact queued and
 * assigned more than 2 hours before `from` (so before what the log's reading learns from), then
 * transferred and abandoned in the range. The log's reading does not know its queue, nor so its
 * channel: it counts it in the workspace's figures only, never under a queue of a channel it
 * guessed (it put a chat contact under `voice ["T"]`). The live projection, which knows the whole
 * log, counts it under its own queues, `chat [...]`.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi, type Json } from '../support/api.ts';
import { intervalsCaughtUp } from '../support/intervals.ts';

const WS = 'iv-old-chat';
const api = inProcessApi([WS]);

type Figures = { transferred: number; abandoned: number };

async function read(source: 'live' | 'log', from: number, to: number) {
  const q = `from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}${source === 'log' ? '&source=log' : ''}`;
  const r = await api.call('GET', `/v1/workspaces/${WS}/stats/intervals?${q}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.source).toBe(source);
  const all: Figures = { transferred: 0, abandoned: 0 };
  const queues: Record<string, Figures> = {};
  for (const i of r.body.intervals as (Figures & { queues: Record<string, Figures> })[]) {
    all.transferred += i.transferred;
    all.abandoned += i.abandoned;
    for (const [name, f] of Object.entries(i.queues)) {
      queues[name] ??= { transferred: 0, abandoned: 0 };
      queues[name].transferred += f.transferred;
      queues[name].abandoned += f.abandoned;
    }
  }
  return { all, queues };
}

describe('GET /stats/intervals: a contact older than the log reading looks back', () => {
  it('is counted in the workspace only by the log, under its own channel by the live projection', async () => {
    const now = Date.now();
    const at = (ms: number) => ({ id: `${ms}-0`, iso: new Date(ms).toISOString() });
    const queued = at(now - 4 * 3600_000);
    const assigned = at(now - 4 * 3600_000 + 1000);
    const transferred = at(now - 30 * 60_000);
    const abandoned = at(now - 20 * 60_000);
    const events: [typeof queued, string, Json][] = [
      [
        queued,
        'ContactQueued',
        { id: 'c1', skills: ['S'], channel: 'chat', priority: 0, queuedAt: queued.iso },
      ],
      [
        assigned,
        'AssignmentMade',
        {
          contactId: 'c1',
          agentId: 'a1',
          skills: ['S'],
          channel: 'chat',
          waitedMs: 1000,
          assignedAt: assigned.iso,
        },
      ],
      [
        transferred,
        'ContactTransferred',
        { contactId: 'c1', fromAgentId: 'a1', skills: ['T'], priority: 0, transferredAt: transferred.iso },
      ],
      [abandoned, 'ContactAbandoned', { contactId: 'c1', abandonedAt: abandoned.iso, waitedMs: 0 }],
    ];
    const redis = api.running.redis;
    for (const [{ id }, type, data] of events)
      await redis.xadd(
        workspaceKeys(WS).events,
        id,
        'type',
        type,
        'event',
        JSON.stringify({ type, workspace: WS, data }),
      );

    const from = now - 3600_000;
    const log = await read('log', from, now + 60_000);
    expect(log.all).toEqual({ transferred: 1, abandoned: 1 });
    // Its queue (and channel) is not known to the log's reading: no queue of any channel has it.
    expect(log.queues).toEqual({});

    await intervalsCaughtUp(redis, WS);
    const live = await read('live', from, now + 60_000);
    expect(live.all).toEqual({ transferred: 1, abandoned: 1 });
    expect(live.queues).toEqual({
      'chat ["S"]': { transferred: 1, abandoned: 0 },
      'chat ["T"]': { transferred: 0, abandoned: 1 },
    });
  });
});
