/**
 * The archiver appends ForgetContacts commands for finished contacts past CONTACT_RETENTION; the
 * projector applies them. Until it has applied those appended, another pass appends no more: the
 * finished contacts they are for are still there, and a pass every ARCHIVE_EVERY_MS (or one after
 * another through an archive backlog) would pile up commands for the same contacts while the
 * projector is down or behind.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

describe('ForgetContacts while the projector is behind', () => {
  const suite = suiteRedis();

  it('appends none while those appended before are not applied, then goes on once they are', async () => {
    const ws = `forget-pending-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const send = async (...commands: Command[]) => {
      for (const command of commands) await appendCommand(suite.redis, { workspace: ws, command });
      await projectPending(suite.redis, ws);
    };
    await ensureGroup(suite.redis, ws);
    await send(
      { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'ana', state: 'available' },
      { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0 },
      { type: 'QueueContact', contactId: 'c2', skills: ['B'], priority: 0 },
    );
    await dispatchPending(suite.redis, ws);
    await send({ type: 'CompleteContact', contactId: 'c1' }, { type: 'AbandonContact', contactId: 'c2' });
    expect(await suite.redis.zcard(k.finished)).toBe(2);

    const forgets = async () =>
      ((await suite.redis.xrange(k.commands, '-', '+')) as StreamEntry[]).filter((e) =>
        e[1].includes('ForgetContacts'),
      ).length;
    const archiver = new Archiver(
      suite.redis,
      new DiskArchive('/nonexistent-archive'),
      pino({ level: 'silent' }),
      {
        retention: { ageMs: 86_400_000 },
        segmentEntries: 100,
        everyMs: 10,
        contactRetentionMs: 0,
      },
    );
    // Passes for a while, the projector not running: one command for the two contacts, not one a pass.
    const passes = async (ms: number) => {
      const until = Date.now() + ms;
      await archiver.run(ws, () => Date.now() < until);
    };
    await passes(300);
    expect(await forgets()).toBe(1);

    // Applied: the contacts are forgotten; one more finishes, and the next passes forget it once.
    await projectPending(suite.redis, ws);
    expect(await suite.redis.zcard(k.finished)).toBe(0);
    await send({ type: 'QueueContact', contactId: 'c3', skills: ['B'], priority: 0 });
    await send({ type: 'AbandonContact', contactId: 'c3' });
    await sleep(5);
    await passes(300);
    expect(await forgets()).toBe(2);
    await projectPending(suite.redis, ws);
    expect(await suite.redis.zcard(k.finished)).toBe(0);
  });
});
