/**
 * The outcome stream only serves requests waiting for their command's outcome: it is trimmed by
 * age, so it stays bounded however long the workspace runs, while a repeated Idempotency-Key still
 * gets the first outcome from the copy its record keeps.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { Command } from '../../src/domain/commands.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

describe('outcome retention', () => {
  const suite = suiteRedis();
  const opts = { ...defaultProjectorOptions, outcomesKeptMs: 300 };
  const queue = (id: string): Command => ({
    type: 'QueueContact',
    contactId: id,
    skills: ['A'],
    priority: 0,
  });

  it('outcomes older than the retention leave the stream; an idempotent repeat still answers', async () => {
    const ws = `outcomes-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    const first = await appendCommand(suite.redis, {
      workspace: ws,
      command: queue('kept'),
      idempotencyKey: 'key-1',
    });
    await Promise.all(
      Array.from({ length: 499 }, (_, i) =>
        appendCommand(suite.redis, { workspace: ws, command: queue(`old-${i}`) }),
      ),
    );
    // Applied under the default retention: the three steps it takes may be more than 300 ms apart
    // on a loaded machine, and the last would trim the first's outcomes already.
    await projectPending(suite.redis, ws, [], defaultProjectorOptions);
    expect(await suite.redis.xlen(k.outcomes)).toBe(500);

    await sleep(600);
    await appendCommand(suite.redis, { workspace: ws, command: queue('new') });
    await projectPending(suite.redis, ws, [], opts);
    // Trimming is approximate (whole stream nodes), so some old ones may stay; most are gone,
    // and the newest is there.
    const left = await suite.redis.xlen(k.outcomes);
    expect(left).toBeLessThan(200);
    const [last] = (await suite.redis.xrevrange(k.outcomes, '+', '-', 'COUNT', 1)) as [string, string[]][];
    expect(JSON.parse(last![1][5]!)).toMatchObject({ status: 201, body: { id: 'new' } });

    // The commands and events are untouched: only outcomes are trimmed here.
    expect(await suite.redis.xlen(k.commands)).toBe(501);

    const repeat = await appendCommand(suite.redis, {
      workspace: ws,
      command: queue('kept'),
      idempotencyKey: 'key-1',
    });
    expect(repeat).toMatchObject({ repeated: true, position: first.position });
    expect(repeat.outcome).toMatchObject({ status: 201, body: { id: 'kept', state: 'queued' } });
  });
});
