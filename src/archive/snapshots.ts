import { positionBefore } from '../domain/values.ts';
import type { ArchiveStore } from './store.ts';

/**
 * State snapshots in the archive (docs/ARCHIVE.md, "Snapshots"): the replayed state of a
 * workspace right after one archived event, so a question about the state at a position replays
 * from the latest snapshot at or before it instead of from the beginning of the log.
 *
 * What a snapshot holds and how it is made is the auditor's business (src/audit/replay-snapshot.ts
 * and snapshot-writer.ts); here are its name in the store and the hook the archiver calls after
 * each pass (the archive may not import the audit: the composition root wires one to the other).
 *
 * A name is `<events, 12 digits>-<position>.snapshot`: the number of events in the log up to and
 * including the snapshot's position (so names sort in log order), then that position.
 */
export interface SnapshotName {
  readonly name: string;
  /** Events in the log up to and including `position`. */
  readonly events: number;
  /** The event-stream position the snapshot is the state right after. */
  readonly position: string;
}

const NAME = /^(\d{12})-(\d{1,20}-\d{1,20})\.snapshot$/;

export function snapshotName(events: number, position: string): string {
  return `${String(events).padStart(12, '0')}-${position}.snapshot`;
}

export function parseSnapshotName(name: string): SnapshotName | undefined {
  const m = NAME.exec(name);
  return m ? { name, events: Number(m[1]), position: m[2]! } : undefined;
}

/** A workspace's snapshots in log order (names that are not snapshots' are left out). */
export async function listSnapshots(store: ArchiveStore, workspace: string): Promise<SnapshotName[]> {
  const names = (await store.listSnapshots(workspace)).map(parseSnapshotName).filter((n) => n !== undefined);
  return names.sort((a, b) => a.events - b.events || (positionBefore(a.position, b.position) ? -1 : 1));
}

/** What the archiver calls after each archiving pass of a workspace (src/audit/snapshot-writer.ts). */
export interface SnapshotTaker {
  /** Takes the snapshots that are due for the archived part of the log; never throws. */
  afterPass(workspace: string, running: () => boolean): Promise<void>;
}
