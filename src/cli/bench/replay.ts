/**
 * `replay`: how fast the event history reads back, from the stream and from the archive, and what
 * the log and the state cost. A log of --events events is made through the Lua steps (as `audit`
 * does); its events are read back in order from the stream with every envelope parsed (what
 * `GET /events` and a resuming WebSocket do); then the archiver moves all but the newest entries to
 * a private archive directory and the same read runs across archive and stream. The state's bytes
 * are measured on a workspace of its own: agents registered, then contacts queued (MEMORY USAGE
 * of every state key, streams excluded).
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { appendCommand } from '../../adapters/redis/command-log.ts';
import { workspaceKeys } from '../../adapters/redis/keys.ts';
import type { RedisClient } from '../../adapters/redis/scripts.ts';
import { Archiver } from '../../archive/archiver.ts';
import { readLogAfter } from '../../archive/log-reader.ts';
import { before } from '../../archive/segment.ts';
import { DiskArchive, workspaceFolder } from '../../archive/store.ts';
import type { Command } from '../../domain/commands.ts';
import { ensureGroup, projectPending } from '../../projections/projector.ts';
import { EXPERTISE, LANGUAGES } from '../sim/random.ts';
import { nowNs, round, seconds } from '../sim/stats.ts';
import { writeLog } from './audit-log.ts';
import { at, type RowMaker, row } from './report.ts';
import { dropWorkspace, type Note } from './workspace.ts';

export interface ReplayOptions {
  readonly events: number;
  readonly agents: number;
  readonly contacts: number;
  readonly seed: number;
}

export interface ReplayFigures {
  readonly events: number;
  /** Events/s read back in order from the stream, each envelope parsed. */
  readonly streamEventsPerS: number;
  /** The same read with all but the newest entries in the archive. */
  readonly archiveEventsPerS: number;
  /** Of the second read, entries that came from archive segments. */
  readonly fromArchive: number;
  /** Archive bytes on disk per million events (commands archived too, in their own segments). */
  readonly archiveBytesPerMillionEvents: number;
  readonly archiveBytesPerMillionCommands: number;
  readonly stateBytesPerQueuedContact: number;
  readonly stateBytesPerAgent: number;
}

async function readAll(redis: RedisClient, archive: DiskArchive | undefined, workspace: string) {
  const started = nowNs();
  let n = 0;
  let last = '';
  for await (const page of readLogAfter(redis, archive, workspace, 'events', '0-0')) {
    for (const [id, fields] of page) {
      // The envelope, as a reader of the history gets it.
      const env = JSON.parse(fields[fields.indexOf('event') + 1] ?? '{}') as { type?: string };
      if (last !== '' && !before(last, id)) throw new Error(`the replay went back at ${id}`);
      if (!env.type) throw new Error(`event ${id} has no type`);
      last = id;
      n++;
    }
  }
  return { n, s: seconds(nowNs() - started) };
}

async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

async function stateBytes(redis: RedisClient, workspace: string): Promise<number> {
  const k = workspaceKeys(workspace);
  const logs = new Set([k.commands, k.events, k.outcomes]);
  let total = 0;
  for (const key of Object.values(k)) {
    if (typeof key !== 'string' || logs.has(key) || key === k.prefix || !key.startsWith(k.prefix)) continue;
    total += Number((await redis.memory('USAGE', key, 'SAMPLES', 0)) ?? 0);
  }
  return total;
}

async function apply(redis: RedisClient, workspace: string, commands: readonly Command[]): Promise<void> {
  for (let i = 0; i < commands.length; i += 2000)
    await Promise.all(
      commands.slice(i, i + 2000).map((command) => appendCommand(redis, { workspace, command })),
    );
  await projectPending(redis, workspace);
}

/** Bytes of state per registered agent and per queued contact, on a workspace of its own. */
async function stateSize(redis: RedisClient, workspace: string, o: ReplayOptions) {
  await ensureGroup(redis, workspace);
  const empty = await stateBytes(redis, workspace);
  await apply(
    redis,
    workspace,
    Array.from({ length: o.agents }, (_, i) => ({
      type: 'RegisterAgent' as const,
      agentId: `agent-${i + 1}`,
      skills: [LANGUAGES[i % LANGUAGES.length]!, EXPERTISE[i % EXPERTISE.length]!].sort(),
      capacity: 1,
    })),
  );
  const agents = await stateBytes(redis, workspace);
  await apply(
    redis,
    workspace,
    Array.from({ length: o.contacts }, (_, i) => ({
      type: 'QueueContact' as const,
      contactId: `contact-${i + 1}`,
      skills: [LANGUAGES[i % LANGUAGES.length]!, EXPERTISE[(i >> 1) % EXPERTISE.length]!].sort(),
      priority: i % 3,
    })),
  );
  const contacts = await stateBytes(redis, workspace);
  await dropWorkspace(redis, workspace);
  return { perAgent: (agents - empty) / o.agents, perContact: (contacts - agents) / o.contacts };
}

export async function replayWorkload(
  redis: RedisClient,
  workspace: string,
  o: ReplayOptions,
  note: Note,
): Promise<ReplayFigures> {
  note(`writing a log of ${o.events} events through the Lua steps`);
  const made = await writeLog(redis, workspace, { events: o.events, agents: o.agents, seed: o.seed });
  note('reading the events back from the stream');
  const fromStream = await readAll(redis, undefined, workspace);
  const dir = await mkdtemp(path.join(tmpdir(), 'sb-bench-archive-'));
  try {
    const archive = new DiskArchive(dir);
    note(`archiving all but the newest entries to ${dir}`);
    const archiver = new Archiver(redis, archive, pino({ level: 'silent' }), {
      retention: { count: 1000 },
      segmentEntries: 10_000,
      everyMs: 10,
    });
    await archiver.drain(workspace);
    const k = workspaceKeys(workspace);
    const [eventsLeft, commandsLeft] = await Promise.all([redis.xlen(k.events), redis.xlen(k.commands)]);
    note('reading the events back across archive and stream');
    const reader = await readAll(redis, archive, workspace);
    if (reader.n !== fromStream.n)
      throw new Error(`the archive and stream gave ${reader.n} events, the stream alone ${fromStream.n}`);
    const eventBytes = await bytesUnder(path.join(dir, workspaceFolder(workspace), 'events')).catch(() => 0);
    const commandBytes = await bytesUnder(path.join(dir, workspaceFolder(workspace), 'commands')).catch(
      () => 0,
    );
    note('measuring the state of agents and queued contacts');
    const size = await stateSize(redis, `${workspace}-state`, o);
    const archivedEvents = made.events - eventsLeft;
    const archivedCommands = made.commands - commandsLeft;
    return {
      events: fromStream.n,
      streamEventsPerS: Math.round(fromStream.n / fromStream.s),
      archiveEventsPerS: Math.round(reader.n / reader.s),
      fromArchive: archivedEvents,
      archiveBytesPerMillionEvents: Math.round((eventBytes / Math.max(1, archivedEvents)) * 1e6),
      archiveBytesPerMillionCommands: Math.round((commandBytes / Math.max(1, archivedCommands)) * 1e6),
      stateBytesPerQueuedContact: round(size.perContact, 1) ?? 0,
      stateBytesPerAgent: round(size.perAgent, 1) ?? 0,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The rows of a replay run in `npm run bench -- all`: each read against BENCH.md's 50,000 events/s, the state against 600 B. */
export const replayRows: RowMaker = (run) => {
  const f = run.figures;
  const events = at(f, 'events')?.toLocaleString('en-US');
  return [
    row(`replay from the stream, ${events} events`, at(f, 'streamEventsPerS'), 'events/s', undefined, {
      on: 'figure',
      op: '>=',
      value: 50_000,
    }),
    row(
      `replay across archive and stream, ${events} events`,
      at(f, 'archiveEventsPerS'),
      'events/s',
      { name: 'from the stream', value: at(f, 'streamEventsPerS'), unit: 'events/s' },
      { on: 'figure', op: '>=', value: 50_000 },
    ),
    row('state per queued contact', at(f, 'stateBytesPerQueuedContact'), 'bytes', undefined, {
      on: 'figure',
      op: '<',
      value: 600,
    }),
    row('archive per million events', at(f, 'archiveBytesPerMillionEvents'), 'bytes'),
  ];
};
