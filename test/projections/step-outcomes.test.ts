/**
 * A projector step given commands to append (the projector role in the API's process: the tick's
 * commands go to Redis in the step that applies them) answers each with its outcome when it also
 * applied it, so the request is answered from the step's own reply rather than a read of the
 * outcome stream: the same text the outcome entry holds. A command the step appended but did not
 * reach (past its batch) has no outcome in the answer, and a repeat of an Idempotency-Key answers
 * as before (in the same step too).
 */
import { describe, expect, it } from 'vitest';
import { type StepAppend, stepAppend } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { Command } from '../../src/domain/commands.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

describe("the projector step's answers to the commands it appends", () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);

  /** One projector step chain appending `appends` (batch `batch`); the step's answers. */
  async function stepWith(ws: string, appends: StepAppend[], batch = 200): Promise<unknown[][]> {
    let answers: unknown[][] = [];
    await projectPending(suite.redis, ws, [], { ...defaultProjectorOptions, batch }, undefined, {
      entries: appends,
      onAppended: (a) => {
        answers = a.map((x) => [...x]);
      },
    });
    return answers;
  }

  /** The outcome entries' texts by command id. */
  async function outcomeTexts(ws: string): Promise<Map<string, string>> {
    const entries = (await suite.redis.xrange(workspaceKeys(ws).outcomes, '-', '+')) as StreamEntry[];
    const out = new Map<string, string>();
    for (const [, f] of entries) out.set(f[f.indexOf('commandId') + 1]!, f[f.indexOf('outcome') + 1]!);
    return out;
  }

  const cmd = (workspace: string, command: Command, idempotencyKey?: string) =>
    stepAppend({ workspace, command, ...(idempotencyKey ? { idempotencyKey, fingerprint: 'f' } : {}) });

  it('answers each command it applied with the outcome its entry holds, refusals included', async () => {
    const ws = `so-${run}-a`;
    await ensureGroup(suite.redis, ws);
    const appends = [
      cmd(ws, { type: 'RegisterAgent', agentId: 'a1', skills: ['k'], capacity: 1 }),
      cmd(ws, { type: 'QueueContact', contactId: 'c1', skills: ['k'], priority: 0 }),
      cmd(ws, { type: 'RegisterAgent', agentId: 'a1', skills: ['k'], capacity: 1 }),
    ];
    const answers = await stepWith(ws, appends);
    const texts = await outcomeTexts(ws);
    expect(answers).toHaveLength(3);
    for (const [i, a] of appends.entries()) {
      expect(answers[i]![1]).toBe(a.commandId);
      expect(answers[i]![2]).toBe(0);
      expect(answers[i]![4], `command ${i}`).toBe(texts.get(a.commandId));
    }
    const statuses = answers.map((a) => (JSON.parse(a[4] as string) as { status: number }).status);
    expect(statuses).toEqual([201, 201, 409]);
  });

  it('leaves the outcome out for a command past the step, and answers a repeated key as before', async () => {
    const ws = `so-${run}-b`;
    await ensureGroup(suite.redis, ws);
    const first = cmd(ws, { type: 'RegisterAgent', agentId: 'a1', skills: ['k'], capacity: 1 }, 'key-1');
    const appends = [
      first,
      cmd(ws, { type: 'QueueContact', contactId: 'c1', skills: ['k'], priority: 0 }),
      cmd(ws, { type: 'QueueContact', contactId: 'c2', skills: ['k'], priority: 0 }),
    ];
    // A batch of 2: the first step applies two; the third waits for the next step of the chain.
    const answers = await stepWith(ws, appends, 2);
    const texts = await outcomeTexts(ws);
    expect(answers.map((a) => a[4])).toEqual([
      texts.get(appends[0]!.commandId),
      texts.get(appends[1]!.commandId),
      '',
    ]);
    expect(texts.get(appends[2]!.commandId)).toBeDefined();

    // The key again: nothing appended, the first command's id and its recorded outcome.
    const again = await stepWith(ws, [
      cmd(ws, { type: 'RegisterAgent', agentId: 'a1', skills: ['k'], capacity: 1 }, 'key-1'),
    ]);
    expect(again[0]![1]).toBe(first.commandId);
    expect(again[0]![2]).toBe(1);
    expect(again[0]![4]).toBe(texts.get(first.commandId));
  });

  it('answers both requests of one key in one step with the outcome of the one command appended', async () => {
    // Two requests with one Idempotency-Key in the same tick (a client's retry racing its first
    // try): one command appended, and each request answered from the step, the first as the second.
    const ws = `so-${run}-c`;
    await ensureGroup(suite.redis, ws);
    const command: Command = { type: 'QueueContact', contactId: 'c1', skills: ['k'], priority: 0 };
    const first = cmd(ws, command, 'key-2');
    const answers = await stepWith(ws, [first, cmd(ws, command, 'key-2')]);
    const texts = await outcomeTexts(ws);
    expect(texts.size).toBe(1);
    expect(answers.map((a) => a[1])).toEqual([first.commandId, first.commandId]);
    expect(answers.map((a) => a[2])).toEqual([0, 1]);
    expect(answers[0]![4], 'the first request').toBe(texts.get(first.commandId));
    expect(answers[1]![4], 'the second request').toBe(texts.get(first.commandId));
  });
});
