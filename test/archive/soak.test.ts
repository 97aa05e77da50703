/**
 * A soak of the archive at CI size: 20,000 commands (SOAK_COMMANDS=1000000 for the full size,
 * documented in docs/ARCHIVE.md) through the real append, projector and dispatcher steps, with a
 * tiny retention (the newest 1,000 entries) and the archiver draining after each round. The
 * streams stay bounded in Redis (length and MEMORY USAGE), the archive holds the rest, and the
 * auditor over archive and stream finds every command and decision right.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { defaultDispatcherOptions, dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

const TOTAL = Number(process.env.SOAK_COMMANDS ?? 20_000);
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
        streamBytes:
          Number(await r.memory('USAGE', k.commands)) +
          Number(await r.memory('USAGE', k.events)) +
          Number(await r.memory('USAGE', k.outcomes)),
        lengths: [await r.xlen(k.commands), await r.xlen(k.events)],
        // Not the log: the documents, which keep every contact (completed ones too).
        contactsBytes: Number(await r.memory('USAGE', k.contacts, 'SAMPLES', '0')),
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

      const archiveBytes = { commands: 0, events: 0 };
      for (const stream of ['commands', 'events'] as const)
        for (const name of await store.list(ws, stream))
          archiveBytes[stream] += (await stat(path.join(dir, ws, stream, name))).size;
      const report = await auditWorkspace(r, ws, { archive: store });
      const events = report.events;
      expect(report.violations).toEqual([]);
      expect(report).toMatchObject({ ok: true, commands, pendingCommands: 0, state: 'compared' });
      expect(report.decisionsChecked).toBeGreaterThan(TOTAL / 3);
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
          memory: points.filter((_, i) => i % Math.ceil(points.length / 6) === 0 || i === points.length - 1),
        }),
      );
    },
    Math.max(55_000, TOTAL * 5),
  );
});
