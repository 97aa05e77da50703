/**
 * Entries in the command stream that Switchboard did not write (foreign fields, huge values, no
 * type, no command): each becomes one CommandRejected or applies as the command it carries, the
 * stream goes on, and the auditor finds the workspace right.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { readEvents } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { appliedPosition, readContact } from '../../src/adapters/redis/projection-reads.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

describe('foreign command entries', () => {
  const suite = suiteRedis();

  async function foreign(attributes: boolean): Promise<void> {
    const ws = `foreign-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    await appendCommand(suite.redis, {
      workspace: ws,
      command: { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 1 },
    });
    const queue = JSON.stringify({ contactId: 'c1', skills: ['A'], priority: 0 });
    await suite.redis.xadd(k.commands, '*', 'commandId', 'f1', 'junk', 'x'.repeat(1_000_000));
    await suite.redis.xadd(k.commands, '*', 'commandId', 'f2', 'type', 'QueueContact');
    await suite.redis.xadd(k.commands, '*', 'commandId', 'f3', 'command', queue);
    await suite.redis.xadd(
      k.commands,
      '*',
      'commandId',
      'f4',
      'type',
      'Teleport'.repeat(100_000),
      'command',
      '{}',
    );
    await suite.redis.xadd(
      k.commands,
      '*',
      'commandId',
      'f5',
      'type',
      'QueueContact',
      'command',
      `[${'1,'.repeat(100_000)}1]`,
    );
    if (attributes)
      await suite.redis.xadd(
        k.commands,
        '*',
        'commandId',
        'f6',
        'type',
        'QueueContact',
        'command',
        queue,
        'attributes',
        'not json',
      );
    const last = await appendCommand(suite.redis, {
      workspace: ws,
      command: { type: 'QueueContact', contactId: 'c2', skills: ['A'], priority: 0 },
    });
    await projectPending(suite.redis, ws);
    expect(await appliedPosition(suite.redis, ws)).toBe(last.position);
    // Every fact on the event stream is JSON, and every document reads.
    const events = (await readEvents(suite.redis, ws, { limit: 100 })).events;
    expect(events.filter((e) => e.type === 'CommandRejected').length).toBeGreaterThanOrEqual(5);
    const raw = (await suite.redis.xrange(k.events, '-', '+')) as [string, string[]][];
    const unreadable = raw.filter(([, f]) => {
      try {
        JSON.parse(f[f.indexOf('event') + 1] ?? '');
        return false;
      } catch {
        return true;
      }
    });
    expect(
      unreadable.map(([, f]) => f[1]),
      'facts that are not JSON',
    ).toEqual([]);
    await expect(readContact(suite.redis, ws, 'c2')).resolves.toMatchObject({ id: 'c2' });
    await readContact(suite.redis, ws, 'c1').catch((err: Error) =>
      expect.fail(`contact c1 unreadable: ${err.message}`),
    );
    const report = await auditWorkspace(suite.redis, ws, { idle: true });
    expect(
      report.violations.map((v) =>
        JSON.stringify(v)
          .replace(/(Teleport)+/g, 'Teleport…')
          .slice(0, 400),
      ),
    ).toEqual([]);
  }

  it('an entry with foreign fields, no type or no command is rejected alone; the state stays right', async () => {
    await foreign(false);
  });

  // Its text is spliced raw into the contact's document and the ContactQueued fact: not JSON, the
  // fact was not JSON and the contact could not be read; the step refuses it as malformed.
  it('a QueueContact entry whose attributes field is not JSON is rejected, not applied', async () => {
    await foreign(true);
  });
});
