/**
 * The projector's count of applied commands (`projectorApplied` on /status and /metrics) moves
 * as a step answers: an API request whose command a step appended and applied (stepNow) is
 * answered from that step's reply, and a client that reads /status once answered must find its
 * command counted. Before, the count moved only once the whole call had ended (the step's log
 * lines read, any further step run), after the answers it had released: /status read right
 * after 31 answers said 1 on a Redis Cluster.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { stepAppend } from '../../src/adapters/redis/command-log.ts';
import type { Command } from '../../src/domain/commands.ts';
import {
  defaultProjectorOptions,
  ensureGroup,
  type PendingAppend,
  Projector,
} from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

describe("the projector's count of applied commands", () => {
  const suite = suiteRedis();

  it('has counted the commands of a step by the time their appends are answered', async () => {
    const ws = `step-count-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    // At info, a refused command's line reads its entry before the step's call ends.
    // One step for the three whatever the step's time budget (step-budget.test.ts): with none,
    // the count is the step's whole.
    const projector = new Projector(suite.redis, pino({ level: 'info' }, { write: () => {} }), {
      ...defaultProjectorOptions,
      stepBudgetMs: 0,
    });
    const commands: Command[] = [
      { type: 'QueueContact', contactId: 'c1', skills: ['s'], priority: 0 },
      { type: 'QueueContact', contactId: 'c2', skills: ['s'], priority: 0 },
      { type: 'QueueContact', contactId: 'c1', skills: ['s'], priority: 0 }, // refused: c1 exists
    ];
    const appends: PendingAppend[] = [];
    const answered = commands.map(
      (command) =>
        new Promise<unknown[]>((resolve, reject) => {
          appends.push({ append: stepAppend({ workspace: ws, command }), resolve, reject });
        }),
    );
    // What the count says where a request's answer resumes (as the API's command path does).
    const countedAtAnswer = answered.map((a) => a.then(() => projector.applied));
    const n = await projector.stepNow(ws, appends);
    expect(n).toBe(3);
    expect(await Promise.all(countedAtAnswer)).toEqual([3, 3, 3]);
    expect(projector.applied).toBe(3);
  });
});
