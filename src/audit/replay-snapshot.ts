import { createHash } from 'node:crypto';
import type { StreamEntry } from '../adapters/redis/event-log.ts';
import { entryLine } from '../archive/segment.ts';
import { type Agent, type Contact, lastExcluded, type Settings } from '../domain/model.ts';
import { type AuditOptions, Auditor } from './auditor.ts';

/**
 * The auditor's replay of a workspace, frozen right after one event (docs/ARCHIVE.md,
 * "Snapshots"): the state the domain model keeps (ReplayState's agents, contacts, seq, finished
 * contacts and settings), the command positions written into documents (agentPositions,
 * contactMeta), and where the two streams were read to. Restored, it is an Auditor that replays
 * on from there exactly as one that replayed from the beginning would have (for the state; the
 * audit's own ledgers, such as idempotency keys and outcomes, start empty).
 *
 * Taken only where no command is half-met (`Auditor.owing` undefined): every command up to
 * `commandPosition` is replayed, and none of its events is after `position`.
 *
 * Bytes: two lines of JSON. The header names the format, the workspace, the cursors and the
 * sha256 of the body line; the body holds the maps as arrays in their insertion order.
 */
export const SNAPSHOT_FORMAT = 'switchboard-snapshot/1';

export interface SnapshotHeader {
  readonly format: string;
  readonly workspace: string;
  /** The last event replayed: the snapshot is the state right after it. */
  readonly position: string;
  /** Events in the log up to and including `position`. */
  readonly events: number;
  /** The last command replayed (null: none). */
  readonly commandPosition: string | null;
  /** Commands replayed. */
  readonly commands: number;
  readonly sha256: string;
  /**
   * The sha256 of the event at `position` as the log held it (its segment line): a reader holds
   * the snapshot to the log's event there, not to its position only (absent in snapshots written
   * before it: those are held to the position).
   */
  readonly eventSha256?: string;
}

interface SnapshotBody {
  readonly seq: number;
  /** The last arrival tick (absent in snapshots written before priority aging). */
  readonly tick?: number;
  readonly settings: Settings;
  readonly agents: readonly Agent[];
  readonly contacts: readonly Contact[];
  readonly finished: readonly (readonly [string, number])[];
  readonly agentPositions: readonly (readonly [string, string])[];
  /** [id, position, queuedBy, assignedIn | null] */
  readonly contactMeta: readonly (readonly [string, string, string, string | null])[];
}

export interface ReplaySnapshot {
  readonly header: SnapshotHeader;
  readonly body: SnapshotBody;
}

/** The sha256 of an event's line as a segment holds it (SnapshotHeader `eventSha256`). */
export function eventSha256(e: StreamEntry): string {
  return createHash('sha256').update(entryLine(e)).digest('hex');
}

/**
 * The auditor's state as snapshot bytes; `eventHash`, the eventSha256 of its last event (the one at the
 * snapshot's position). Throws when a command is half-met.
 */
export function encodeSnapshot(a: Auditor, eventHash?: string): { header: SnapshotHeader; bytes: Buffer } {
  if (a.owing !== undefined) throw new Error(`no snapshot half-way through command ${a.owing}'s events`);
  if (a.lastEvent === undefined) throw new Error('no snapshot before the first event');
  const s = a.state;
  const body: SnapshotBody = {
    seq: s.seq,
    ...(s.tick !== undefined ? { tick: s.tick } : {}),
    settings: s.settings,
    agents: [...s.agents.values()],
    contacts: [...s.contacts.values()],
    finished: [...s.finished],
    agentPositions: [...a.agentPositions],
    contactMeta: [...a.contactMeta].map(([id, m]) => [id, m.position, m.queuedBy, m.assignedIn ?? null]),
  };
  const text = JSON.stringify(body);
  const header: SnapshotHeader = {
    format: SNAPSHOT_FORMAT,
    workspace: a.workspace,
    position: a.lastEvent,
    events: a.events,
    commandPosition: a.lastCommandReplayed ?? null,
    commands: a.commands,
    sha256: createHash('sha256').update(text).digest('hex'),
    ...(eventHash !== undefined ? { eventSha256: eventHash } : {}),
  };
  return { header, bytes: Buffer.from(`${JSON.stringify(header)}\n${text}\n`) };
}

/** The snapshot in the bytes, or why they are not one (damaged, another format, another workspace). */
export function decodeSnapshot(bytes: Buffer, workspace: string): ReplaySnapshot | string {
  const text = bytes.toString('utf8');
  const nl = text.indexOf('\n');
  if (nl < 0 || !text.endsWith('\n')) return 'not two lines (cut short?)';
  let header: SnapshotHeader;
  try {
    header = JSON.parse(text.slice(0, nl)) as SnapshotHeader;
  } catch {
    return 'its header is not JSON';
  }
  if (header?.format !== SNAPSHOT_FORMAT) return `format ${String(header?.format)}, not ${SNAPSHOT_FORMAT}`;
  if (header.workspace !== workspace) return `the snapshot of workspace ${String(header.workspace)}`;
  const bodyText = text.slice(nl + 1, -1);
  if (createHash('sha256').update(bodyText).digest('hex') !== header.sha256)
    return 'its body does not have the sha256 of its header';
  try {
    return { header, body: JSON.parse(bodyText) as SnapshotBody };
  } catch {
    return 'its body is not JSON';
  }
}

/**
 * An auditor that carries on from the snapshot: the state rebuilt through ReplayState's writer
 * (`putAgent`, `putContact`, ...: the routing groups are built as a replay builds them), the maps
 * in their order. Feed it commands after `header.commandPosition` and events after
 * `header.position`.
 */
export function restoreAuditor(snap: ReplaySnapshot, opts: AuditOptions = {}): Auditor {
  const { header: h, body: b } = snap;
  const a = new Auditor(h.workspace, opts);
  const s = a.state;
  s.setSettings(b.settings);
  for (const agent of b.agents) s.putAgent(agent);
  // A snapshot taken before the bound holds every agent that turned a contact down: the last ones.
  for (const contact of b.contacts) {
    const excluded = lastExcluded(contact.excluded);
    s.putContact(excluded === contact.excluded ? contact : { ...contact, excluded });
  }
  s.setSeq(b.seq, b.tick);
  for (const [id, ms] of b.finished) s.finish(id, ms);
  for (const [id, position] of b.agentPositions) a.agentPositions.set(id, position);
  for (const [id, position, queuedBy, assignedIn] of b.contactMeta)
    a.contactMeta.set(id, { position, queuedBy, assignedIn: assignedIn ?? undefined, checked: 0 });
  a.events = h.events;
  a.commands = h.commands;
  a.lastEvent = h.position;
  a.lastCommandReplayed = h.commandPosition ?? undefined;
  return a;
}
