/**
 * Finished contacts' documents are forgotten once older than CONTACT_RETENTION: the archiver
 * appends ForgetContacts commands, the projector removes at most 500 documents per command, oldest
 * first (ties by id), and says which in a ContactsForgotten fact; a backlog of them is applied a
 * command a step, so no step removes more than 500. The model decides the same
 * commands the same way, so the auditor and the rebuild find nothing wrong, and an id forgotten
 * can be used again.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { readEvents } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { forgetFinishedContacts } from '../../src/archive/forgetting.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { rebuildWorkspace } from '../../src/cli/rebuild/rebuild.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { contactsToForget } from '../../src/domain/model.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

describe('finished contacts are forgotten after CONTACT_RETENTION', () => {
  const suite = suiteRedis();

  async function send(ws: string, ...commands: Command[]): Promise<void> {
    for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
    await projectPending(suite.redis, ws);
  }

  async function expectClean(ws: string): Promise<void> {
    const audit = await auditWorkspace(suite.redis, ws);
    expect(audit.violations, JSON.stringify(audit.violations.slice(0, 3))).toEqual([]);
    const rebuilt = await rebuildWorkspace(suite.redis, ws);
    expect(rebuilt.differences, JSON.stringify(rebuilt.differences.slice(0, 3))).toEqual([]);
  }

  it('forgets completed and abandoned contacts past the retention, keeps the rest, and lets ids be used again', async () => {
    const ws = `forget-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    await send(
      ws,
      { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 2 },
      { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
      { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0 },
      { type: 'QueueContact', contactId: 'c2', skills: ['A'], priority: 0 },
      { type: 'QueueContact', contactId: 'c3', skills: ['B'], priority: 0 },
    );
    await dispatchPending(suite.redis, ws);
    await send(ws, { type: 'CompleteContact', contactId: 'c1' }, { type: 'AbandonContact', contactId: 'c3' });
    expect(await suite.redis.zrange(k.finished, 0, -1)).toEqual(expect.arrayContaining(['c1', 'c3']));

    // Not old enough yet: nothing appended.
    expect(await forgetFinishedContacts(suite.redis, ws, 60_000)).toBe(0);
    await sleep(30);
    expect(await forgetFinishedContacts(suite.redis, ws, 10)).toBe(1);
    await projectPending(suite.redis, ws);

    expect(await suite.redis.hkeys(k.contacts)).toEqual(['c2']);
    expect(await suite.redis.zcard(k.finished)).toBe(0);
    const { events } = await readEvents(suite.redis, ws, {
      limit: 1000,
      types: new Set(['ContactsForgotten']),
    });
    expect(events).toHaveLength(1);
    expect((events[0]!.data.contactIds as string[]).sort()).toEqual(['c1', 'c3']);
    expect(typeof events[0]!.data.before).toBe('string');

    // A second command finds nothing: no fact, nothing changed.
    await send(ws, { type: 'ForgetContacts', keepMs: 0, max: 500 });
    expect(await suite.redis.hkeys(k.contacts)).toEqual(['c2']);

    // The id is free again: a new contact, routed like any other.
    await send(ws, { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0 });
    expect(JSON.parse((await suite.redis.hget(k.contacts, 'c1'))!).state).toBe('queued');
    await dispatchPending(suite.redis, ws);
    expect(JSON.parse((await suite.redis.hget(k.contacts, 'c1'))!).state).toBe('assigned');
    await expectClean(ws);
  });

  it('removes at most 500 per command, oldest first and ties by id, as the model orders them', async () => {
    const ws = `forget-many-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    const n = 1_234;
    const queue: Command[] = [];
    for (let i = 0; i < n; i++)
      queue.push({ type: 'QueueContact', contactId: `c${(i * 7919) % n}`, skills: ['A'], priority: 0 });
    await send(ws, ...queue);
    // Abandoned in a few batches: many share a finish millisecond, so ties are ordered by id.
    const abandon: Command[] = [];
    for (let i = 0; i < n; i++) abandon.push({ type: 'AbandonContact', contactId: `c${i}` });
    for (let i = 0; i < n; i += 400) {
      for (const c of abandon.slice(i, i + 400))
        await appendCommand(suite.redis, { workspace: ws, command: c });
      await projectPending(suite.redis, ws);
    }
    await sleep(5);
    expect(await forgetFinishedContacts(suite.redis, ws, 0)).toBe(3);
    // A command a step: no step removes more than 500 documents (the next step follows at once).
    const steps: number[] = [];
    await projectPending(suite.redis, ws, [], defaultProjectorOptions, async (applied) => {
      steps.push(applied);
    });
    expect(steps).toEqual([1, 1, 1]);
    const { events } = await readEvents(suite.redis, ws, {
      limit: 1000,
      types: new Set(['ContactsForgotten']),
    });
    expect(events.map((e) => (e.data.contactIds as string[]).length)).toEqual([500, 500, 234]);

    // The order is the model's: by finish time, then id.
    const finishedAt = new Map<string, number>();
    const abandoned = await readEvents(suite.redis, ws, {
      limit: 1000,
      types: new Set(['ContactAbandoned']),
    });
    let after: string | undefined;
    for (;;) {
      const page = await readEvents(suite.redis, ws, {
        limit: 1000,
        types: new Set(['ContactAbandoned']),
        ...(after ? { after } : {}),
      });
      for (const e of page.events)
        finishedAt.set(e.data.contactId as string, Date.parse(e.data.abandonedAt as string));
      if (page.events.length < 1000) break;
      after = page.events[page.events.length - 1]!.position;
    }
    expect(abandoned.events.length).toBeGreaterThan(0);
    const want = contactsToForget(finishedAt, Number.MAX_SAFE_INTEGER, 500);
    expect(events[0]!.data.contactIds).toEqual(want);
    expect(await suite.redis.hlen(k.contacts)).toBe(0);
    await expectClean(ws);
  });
});
