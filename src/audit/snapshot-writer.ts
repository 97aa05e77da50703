import type { Logger } from 'pino';
import { workspaceKeys } from '../adapters/redis/keys.ts';
import type { RedisClient } from '../adapters/redis/scripts.ts';
import { parseAnchor } from '../archive/chain.ts';
import { refuseBreaks } from '../archive/log-reader.ts';
import { listSnapshots, type SnapshotTaker, snapshotName } from '../archive/snapshots.ts';
import { type ArchiveStore, SegmentExistsError, workspaceFolder } from '../archive/store.ts';
import { Auditor } from './auditor.ts';
import { encodeSnapshot, eventSha256, restoreAuditor } from './replay-snapshot.ts';
import { latestSnapshot, replayLog } from './state-at.ts';
import { positionBefore } from './violations.ts';

export interface SnapshotWriterOptions {
  /** A snapshot every this many events (SNAPSHOT_EVERY_EVENTS). */
  readonly every: number;
  /** Stream entries per read (default 5000). */
  readonly pageSize?: number;
}

/**
 * Takes the state snapshots of a workspace (docs/ARCHIVE.md, "Snapshots"), called by the
 * archiver after each of its passes (src/archive/snapshots.ts `SnapshotTaker`).
 *
 * A snapshot is due after the `every`-th event, the 2·`every`-th, and so on: taken right after
 * that event, or after the last event of its command if the command has more (never half-way
 * through a command's events). Only archived events get one (up to the archive's mark in Redis,
 * `sb:{ws}:archive` field `events`: durable and trimmed, never to change), so a snapshot is
 * stable for good. When one is due, the replay starts from the latest usable snapshot (or the
 * beginning) and writes every snapshot due up to the archive's end: a pass with nothing due costs
 * a listing and two reads of Redis (the mark and the projector's checkpoint).
 */
export class SnapshotWriter implements SnapshotTaker {
  snapshotsWritten = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly store: ArchiveStore,
    private readonly log: Logger,
    private readonly opts: SnapshotWriterOptions,
  ) {}

  /** Per workspace, the failure logged last (said once while it lasts, not on every pass). */
  private readonly failing = new Map<string, string>();

  async afterPass(workspace: string, running: () => boolean): Promise<void> {
    try {
      await this.take(workspace, running);
      this.failing.delete(workspace);
    } catch (err) {
      const message = (err as Error).message;
      if (this.failing.get(workspace) === message) return;
      this.failing.set(workspace, message);
      this.log.error(
        { workspace, err: message, archiveDir: this.store.where },
        `taking a state snapshot failed; tried again after each pass (said again only if it changes). If err names the archive (a folder not writable, a file system full), make <ARCHIVE_DIR>/${workspaceFolder(workspace)}/snapshots a directory this user can write, with room; GET /state?at= replays from an earlier snapshot meanwhile`,
      );
    }
  }

  /** Writes the snapshots due for the archived events; returns how many. */
  async take(workspace: string, running: () => boolean = () => true): Promise<number> {
    const every = this.opts.every;
    const k = workspaceKeys(workspace);
    const mark = parseAnchor(await this.redis.hget(k.archive, 'events'));
    const checkpoint = await this.redis.hget(k.meta, 'applied');
    if (!mark || checkpoint === null) return 0;
    const names = await listSnapshots(this.store, workspace);
    const due = (events: number) => (Math.floor(events / every) + 1) * every;
    if (mark.total < due(names.at(-1)?.events ?? 0)) return 0;

    const known = new Set(names.map((n) => n.name));
    const snap = await latestSnapshot(
      this.store,
      workspace,
      mark.last,
      (name, why) =>
        this.log.warn(
          { workspace, snapshot: name, why },
          'a state snapshot is damaged or of events Redis lost; using an earlier one',
        ),
      this.redis,
    );
    const a = snap ? restoreAuditor(snap) : new Auditor(workspace);
    let target = due(a.events);
    let written = 0;
    await replayLog(this.redis, this.store, a, {
      commandsUpTo: checkpoint,
      pageSize: this.opts.pageSize ?? 5000,
      // A snapshot is kept for good: never one of a replay over a hole in the archive.
      onBreak: refuseBreaks(this.store, workspace),
      stop: (e) => !running() || mark.total < target || positionBefore(mark.last, e[0]),
      after: async (e) => {
        if (a.events < target || a.owing !== undefined) return;
        const { header, bytes } = encodeSnapshot(a, eventSha256(e));
        const name = snapshotName(header.events, header.position);
        target = due(a.events);
        if (known.has(name)) return;
        try {
          await this.store.putSnapshot(workspace, name, bytes);
        } catch (err) {
          if (err instanceof SegmentExistsError) return; // another archiver wrote it (a lease lost)
          throw err;
        }
        written++;
        this.snapshotsWritten++;
        this.log.info(
          { workspace, snapshot: name, events: header.events, bytes: bytes.length },
          'wrote a state snapshot',
        );
      },
    });
    return written;
  }
}
