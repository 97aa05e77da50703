/**
 * A soak of the archive at CI size: 10,000 commands (SOAK_COMMANDS=1000000 for the full size,
 * documented in docs/ARCHIVE.md) through the real append, projector and dispatcher steps, with a
 * tiny retention (the newest 1,000 entries), the archiver draining after each round and finished
 * contacts forgotten at once (CONTACT_RETENTION 0). The streams stay bounded in Redis (length and
 * MEMORY USAGE), and so does Redis as a whole: used_memory at the end is within 1.2× of its value
 * at a fifth of the run (200,000 commands at full size). The archive holds the rest: a replay from
 * the first position returns every event once and in order across archive and stream, and the
 * auditor and the rebuild over archive and stream find nothing wrong.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { forgetFinishedContacts } from '../../src/archive/forgetting.ts';
import { readLogAfter } from '../../src/archive/log-reader.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { rebuildWorkspace } from '../../src/cli/rebuild/rebuild.ts';
import { defaultDispatcherOptions, dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { comparePositions } from '../../src/domain/values.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

const TOTAL = Number(process.env.SOAK_COMMANDS ?? 10_000);
const KEEP = 1000;
const AGENTS = 50;

describe('the archive under a long run', () => {
  const suite = suiteRedis();
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(
    `keeps Redis bounded over ${TOTAL.toLocaleString('en-US')} commands and the log whole`,
    async () => {
      const ws = `archive-soak-${Date.now().toString(36)}`;
      const k = workspaceKeys(ws);
      const r = suite.redis;
      dir = await mkdtemp(path.join(tmpdir(), 'sb-archive-soak-'));
      const store = new DiskArchive(dir);
      const archiver = new Archiver(r, store, pino({ level: 'silent' }), {
        retention: { count: KEEP },
        segmentEntries: 10_000,
        everyMs: 1000,
      });
      const projector = { ...defaultProjectorOptions, batch: 1000, outcomesKept: KEEP };
      let commands = 0;
      const send = async (batch: Command[]) => {
        commands += batch.length;
        await Promise.all(batch.map((command) => appendCommand(r, { workspace: ws, command })));
        await projectPending(r, ws, [], projector);
        await dispatchPending(r, ws, defaultDispatcherOptions);
      };
      await ensureGroup(r, ws);
      const agents = Array.from({ length: AGENTS }, (_, i) => `agent-${i}`);
      await send(
        agents.map((agentId) => ({ type: 'RegisterAgent', agentId, skills: ['English'], capacity: 1 })),
      );
      await send(agents.map((agentId) => ({ type: 'ChangeAgentState', agentId, state: 'available' })));

      const memory = async () => ({
        commands,
        usedMemory: Number(/used_memory:(\d+)/.exec(await r.info('memory'))?.[1]),
        // MEMORY USAGE is the admin's: Switchboard's user may not run it.
        streamBytes:
          Number(await suite.admin.memory('USAGE', k.commands)) +
          Number(await suite.admin.memory('USAGE', k.events)) +
          Number(await suite.admin.memory('USAGE', k.outcomes)),
        lengths: [await r.xlen(k.commands), await r.xlen(k.events)],
        // Not the log: the documents, whose finished contacts are forgotten as the run goes.
        contactsBytes: Number(await suite.admin.memory('USAGE', k.contacts, 'SAMPLES', '0')),
      });
      const points: Awaited<ReturnType<typeof memory>>[] = [];
      const started = performance.now();
      for (let round = 0, contact = 0; commands < TOTAL; round++) {
        const ids = agents.map(() => `c-${++contact}`);
        await send(
          ids.map((contactId) => ({ type: 'QueueContact', contactId, skills: ['English'], priority: 1 })),
        );
        await send(ids.map((contactId) => ({ type: 'CompleteContact', contactId })));
        await archiver.drain(ws);
        // Finished contacts forgotten at once: the commands the archiver role would append.
        const forgets = await forgetFinishedContacts(r, ws, 0);
        commands += forgets;
        if (forgets > 0) await projectPending(r, ws, [], projector);
        if (round % Math.max(1, Math.floor(TOTAL / 100 / 10)) === 0) points.push(await memory());
      }
      points.push(await memory());
      const seconds = (performance.now() - started) / 1000;

      // Bounded: each stream keeps its newest KEEP entries (plus what one round appends).
      for (const p of points) for (const len of p.lengths) expect(len).toBeLessThanOrEqual(KEEP + 3 * AGENTS);
      const settled = points.slice(Math.floor(points.length / 4));
      const most = Math.max(...settled.map((p) => p.streamBytes));
      const least = Math.min(...settled.map((p) => p.streamBytes));
      expect(most).toBeLessThan(least * 2);
      // Redis as a whole: the end within 1.2x of a fifth of the way (200,000 of 1,000,000).
      const fifth = points.find((p) => p.commands >= TOTAL / 5)!;
      const last = points[points.length - 1]!;
      expect(last.usedMemory, JSON.stringify({ fifth, last })).toBeLessThanOrEqual(fifth.usedMemory * 1.2);
      expect(await r.hlen(k.contacts)).toBeLessThanOrEqual(AGENTS);

      // Replay from the first position: every event once, in order, across archive and stream.
      let replayed = 0;
      let previous = '0-0';
      for await (const page of readLogAfter(r, store, ws, 'events', '0-0'))
        for (const [position] of page) {
          if (comparePositions(position, previous) <= 0) throw new Error(`${position} after ${previous}`);
          previous = position;
          replayed++;
        }

      const archiveBytes = { commands: 0, events: 0 };
      for (const stream of ['commands', 'events'] as const)
        for (const name of await store.list(ws, stream))
          archiveBytes[stream] += (await stat(path.join(dir, ws, stream, name))).size;
      const report = await auditWorkspace(r, ws, { archive: store });
      const events = report.events;
      expect(report.violations).toEqual([]);
      expect(report).toMatchObject({ ok: true, commands, pendingCommands: 0, state: 'compared' });
      expect(report.decisionsChecked).toBeGreaterThan(TOTAL / 3);
      expect(replayed).toBe(events);
      const rebuilt = await rebuildWorkspace(r, ws, { archive: store });
      expect(rebuilt.differences).toEqual([]);
      console.log(
        JSON.stringify({
          commands,
          events,
          seconds: Number(seconds.toFixed(1)),
          archiveBytes,
          // The events archived (all but the newest KEEP), and the commands.
          archiveBytesPerEvent: Math.round(archiveBytes.events / (events - KEEP)),
          archiveBytesPerCommand: Math.round(archiveBytes.commands / (commands - KEEP)),
          auditSeconds: Number(report.seconds.toFixed(2)),
          rebuildSeconds: Number(rebuilt.seconds.toFixed(2)),
          memory: points.filter((_, i) => i % Math.ceil(points.length / 6) === 0 || i === points.length - 1),
        }),
      );
    },
    Math.max(55_000, TOTAL * 5),
  );
});
