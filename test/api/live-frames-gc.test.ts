/**
 * What the live feed makes once per event (its text, its frame, each filter's selection of a
 * batch) goes with the event once every subscriber has been handed it, in the young generation's
 * own collections: nothing of a handed-out batch is promoted. Kept in WeakMaps keyed by the events
 * and batches, it was: V8's young-generation collection holds a long-lived WeakMap's values as
 * live whatever their keys, and a selection holds the events that key the frames.
 */
import { getHeapSpaceStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { eventFrame, sharedSelection } from '../../src/adapters/http/frames.ts';
import { LiveEvent } from '../../src/adapters/redis/event-log.ts';
import { gc } from '../support/gc.ts';

/** Bytes in the old generation (its regular and large-object spaces). */
const oldBytes = (): number =>
  getHeapSpaceStatistics()
    .filter((s) => s.space_name === 'old_space' || s.space_name === 'large_object_space')
    .reduce((sum, s) => sum + s.space_used_size, 0);

/** `batches` batches of 10 events handed out as the tail does: framed, and selected by two filters. */
function handOut(batches: number): void {
  for (let b = 0; b < batches; b++) {
    const batch = Array.from({ length: 10 }, (_, i) => {
      const type = i % 2 === 0 ? 'AssignmentMade' : 'ContactQueued';
      const data = { contactId: `c-${b}-${i}`, agentId: `a-${i}`, note: 'x'.repeat(200) };
      return new LiveEvent([
        `${b + 1}-${i}`,
        ['type', type, 'event', JSON.stringify({ type, workspace: 'w', at: 'now', data, meta: {} })],
      ]);
    });
    sharedSelection(batch, 'all', () => true);
    sharedSelection(batch, 'AssignmentMade', (e) => e.type === 'AssignmentMade');
    for (const e of batch) eventFrame(e);
  }
}

describe('the live feed frames', () => {
  it('leave nothing of a handed-out batch to the old generation', () => {
    // Whatever the module keeps for good is made, and promoted, first.
    handOut(100);
    gc({ type: 'major', execution: 'sync' });
    gc({ type: 'major', execution: 'sync' });
    const before = oldBytes();
    // 20,000 events of about 1 KB each, every one dropped once handed out.
    handOut(2000);
    gc({ type: 'minor', execution: 'sync' });
    gc({ type: 'minor', execution: 'sync' });
    const promoted = oldBytes() - before;
    expect(promoted, `${promoted} bytes promoted`).toBeLessThan(4 * 2 ** 20);
  });
});
