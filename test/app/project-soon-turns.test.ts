/**
 * A tick's commands past one step's worth (TICK_APPENDS with a step budget) were sent a step per
 * turn of the event loop: each further chunk was scheduled from inside the last, so under a
 * sustained load of more than a step's worth a turn the commands queued behind the loop, their
 * appends waiting without bound. Every step of a tick now goes out in the same turn. The steps
 * themselves are recorded here, not run: what is checked is when they are sent.
 */
import { describe, expect, it } from 'vitest';
import { stepAppend } from '../../src/adapters/redis/command-log.ts';
import { projectSoon } from '../../src/app/composition-root.ts';
import type { PendingAppend } from '../../src/projections/projector.ts';

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("a tick's steps", () => {
  it('are all sent in the turn after the tick, a step per 32 commands, in order', async () => {
    const sent: { workspace: string; ids: string[] }[] = [];
    const soon = projectSoon(
      {
        stepNow: async (workspace: string, appends: readonly PendingAppend[] = []) => {
          sent.push({ workspace, ids: appends.map((a) => a.append.commandId) });
          for (const a of appends) a.resolve([]);
          return appends.length;
        },
      },
      { serves: () => true },
      32,
    );
    const ids = Array.from({ length: 100 }, (_, i) => `c${String(i).padStart(3, '0')}`);
    const answered = ids.map((id) =>
      soon.append(
        'w',
        stepAppend({ workspace: 'w', command: { type: 'QueueContact', contactId: id } as never }, id),
      ),
    );
    expect(sent).toEqual([]);
    await turn();
    expect(sent.map((s) => s.ids.length)).toEqual([32, 32, 32, 4]);
    expect(sent.flatMap((s) => s.ids)).toEqual(ids);
    await Promise.all(answered);
  });
});
