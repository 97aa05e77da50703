/**
 * The time a step decides at (Redis's TIME, read once as it begins) and the positions of what it
 * appends. An automatic stream id (`XADD *`) took the time of the XADD itself on Redis 7.0, a
 * little after the step's TIME, and takes the time the step began from Redis 7.2 on (its time
 * snapshot), a little before it: there a decision's `assignedAt` could be a millisecond after the
 * position of its `AssignmentMade` (the auditor's `fact` check refuses that), and a timer fired at
 * its due time could be appended a millisecond before it (its command then stale to the
 * projector: an offer that never expires). The dispatch step and the clock append at the step's
 * own time (`<ms>-*`), so every event of a step sits at the millisecond the step decided at, on
 * every version; after the stream's last entry when that is later (a clock that went back).
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { defaultDispatcherOptions, dispatchPending, fireTimers } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

type Entry = [string, string[]];
const ms = (position: string) => Number(position.split('-')[0]);

describe('the positions a step appends at', () => {
  const suite = suiteRedis();

  async function append(ws: string, commands: Command[]): Promise<void> {
    for (let i = 0; i < commands.length; i += 500)
      await Promise.all(
        commands.slice(i, i + 500).map((command) => appendCommand(suite.redis, { workspace: ws, command })),
      );
    await projectPending(suite.redis, ws, [], defaultProjectorOptions);
  }

  it("every AssignmentMade of a dispatch step is at the millisecond of its assignedAt, the step's own", async () => {
    const ws = `step-time-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    const commands: Command[] = [];
    for (let i = 0; i < 600; i++)
      commands.push({ type: 'RegisterAgent', agentId: `a${i}`, skills: [`s${i % 8}`], capacity: 1 });
    for (let i = 0; i < 600; i++)
      commands.push({ type: 'ChangeAgentState', agentId: `a${i}`, state: 'available' });
    for (let i = 0; i < 600; i++)
      commands.push({ type: 'QueueContact', contactId: `c${i}`, skills: [`s${i % 8}`], priority: 0 });
    await append(ws, commands);
    // Steps of 2 ms (the budget): many decisions of a step are made a millisecond or more after it began.
    expect(await dispatchPending(suite.redis, ws, defaultDispatcherOptions)).toBe(600);
    const events = (await suite.redis.xrange(workspaceKeys(ws).events, '-', '+')) as Entry[];
    const made = events.filter(([, f]) => f[1] === 'AssignmentMade');
    expect(made).toHaveLength(600);
    const off = made
      .map(([id, f]) => ({ id, at: Date.parse((JSON.parse(f[3]!) as { at: string }).at) }))
      .filter(({ id, at }) => ms(id) !== at);
    expect(off.slice(0, 3), `${off.length} of 600 not at their decision's millisecond`).toEqual([]);
    const audit = await auditWorkspace(suite.redis, ws, { idle: true });
    expect(audit.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
  }, 60_000);

  it("the commands a clock step appends are at the step's millisecond, none before a timer's due time", async () => {
    const ws = `step-time-clock-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const [s, us] = await suite.redis.time();
    const now = Number(s) * 1000 + Math.floor(Number(us) / 1000);
    // 256 timers (one clock step's most) due over the last second, for contacts nobody knows: the
    // step appends a command for each.
    const args: (string | number)[] = [];
    for (let i = 0; i < 256; i++) args.push(now - 1000 + i * 3, `m|x${i}|0`);
    await suite.redis.zadd(k.timers, ...args);
    const { fired } = await fireTimers(suite.redis, ws);
    expect(fired).toBe(256);
    const appended = (await suite.redis.xrange(k.commands, '-', '+')) as Entry[];
    expect(appended).toHaveLength(256);
    const times = new Set(appended.map(([id]) => ms(id)));
    expect([...times], 'the milliseconds of one step').toHaveLength(1);
    for (const [id, f] of appended) {
      const due = Number(String(f[3]).split(':').at(-1));
      expect(ms(id), `${f[3]} at ${id}`).toBeGreaterThanOrEqual(due);
    }
  });
});
